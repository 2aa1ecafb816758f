"""The HTTP speech context shared through the store (issue 34, item 6): a `context.id` begun on one app (one
worker, one replica) continues on another sharing the store, on a real SQLite file and the real PostgreSQL
server; a next request that reaches another app while the first is still generating waits for it; tenants never
share a context; a context from before the latest sentence is never reused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from app.prompts import context_prompt, speech_prompt
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.voices.test_saved_voices import parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve


async def say(client: httpx.AsyncClient, url: str, key: str, text: str, fake: FakeVLLM, cid: str = "conv") -> str:
    body = {"input": text, "voice": "idayu", "stream": False, "response_format": "pcm", "context": {"id": cid}}
    resp = await client.post(f"{url}/v1/audio/speech", json=body, headers=bearer(key))
    assert resp.status_code == 200, resp.text
    return next(r.prompt for r in reversed(fake.requests) if text in r.prompt)


async def test_a_context_continues_on_another_app_and_never_goes_back(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    settings = settings_for(voice_store_url=store_url, api_key=ADMIN)
    with serve(settings, parts()) as a, serve(settings, parts()) as b:
        key, other = new_key(a, "brand-a")["key"], new_key(a, "brand-b")["key"]
        await asyncio.sleep(2.5)  # b reads the new keys
        async with httpx.AsyncClient(timeout=60) as client:
            first = await say(client, a, key, "First sentence.", fake)
            second = await say(client, b, key, "Second sentence.", fake)  # the other app: a's context
            assert second == context_prompt("idayu", "First sentence.", fake.expected_tokens(first), "Second sentence.")
            assert await say(client, b, other, "Other tenant.", fake) == speech_prompt("idayu", "Other tenant.")
            third = await say(client, a, key, "Third sentence.", fake)  # back on a: b's, not a's own older one
            assert third == context_prompt("idayu", "Second sentence.", fake.expected_tokens(second), "Third sentence.")


async def test_a_next_request_on_another_app_waits_for_the_one_still_generating(
    settings_for: Callable[..., Settings], fake: FakeVLLM, store_url: str
) -> None:
    fake.rate = 60  # tokens/s: the first request generates for about 2 s
    settings = settings_for(voice_store_url=store_url, api_key=ADMIN)
    with serve(settings, parts()) as a, serve(settings, parts()) as b:
        key = new_key(a, "brand-a")["key"]
        await asyncio.sleep(2.5)
        async with httpx.AsyncClient(timeout=60) as client:
            first = asyncio.create_task(say(client, a, key, "First sentence.", fake))
            await asyncio.sleep(0.5)  # claimed and generating on a
            second = await say(client, b, key, "Second sentence.", fake)
            first_prompt = await first
        assert second == context_prompt(
            "idayu", "First sentence.", fake.expected_tokens(first_prompt), "Second sentence."
        )
