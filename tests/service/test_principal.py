"""The Principal reaches everything that asks who is calling, on a served app: admission's share, the open
WebSockets, a saved voice's `created_from`, the HTTP context ids and the request log lines.

The app runs with a stand-in authenticator (`Components.authenticator`, the seam a key table plugs into): two
keys of two tenants with their own limits, while the settings set no limit per client at all, so that whatever
limit or address shows comes from the Principal."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
import websockets

from app.main import Components
from app.prompts import context_prompt, speech_prompt
from app.service.principal import UNAUTHENTICATED, CallerLimits, Principal
from app.settings import Settings
from tests.voices.test_saved_voices import TRANSCRIPT, wav_bytes
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

KEY_A, KEY_B = "secret-key-a", "secret-key-b"
FORWARDED = "203.0.113.9"  # where key B's principal says its calls come from (as if a proxy were trusted)
BODY = {"input": "Hello there.", "voice": "jenny", "stream": False}


class TwoTenants:
    """Key A: one request slot and one WebSocket at a time. Key B: no limits, and its calls come from FORWARDED."""

    def identify(self, key: object, client: str | None) -> Principal:
        if key == KEY_A:
            return Principal("id-a", "tenant-a", CallerLimits(requests=1, sockets=1), client)
        if key == KEY_B:
            return Principal("id-b", "tenant-b", CallerLimits(requests=0, sockets=0), FORWARDED)
        return Principal(UNAUTHENTICATED, "", CallerLimits(requests=0, sockets=0), client, authenticated=False)


@pytest.fixture(scope="module")
def url(module_settings_for: Callable[..., Settings]) -> Iterator[str]:
    settings = module_settings_for(max_requests_per_client=0, max_sockets_per_client=0)
    parts = Components(codec=LocalCodec(), normalizer=PassthroughNormalizer(), authenticator=TwoTenants())
    with serve(settings, parts) as base:
        yield base


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def stream_url(url: str) -> str:
    return url.replace("http://", "ws://") + "/v1/audio/speech/stream"


def test_only_a_key_the_authenticator_knows_reaches_v1(url: str, fake: FakeVLLM) -> None:
    assert httpx.get(f"{url}/v1/models", timeout=10).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers=auth("other"), timeout=10).status_code == 401
    assert httpx.get(f"{url}/v1/models", headers=auth(KEY_A), timeout=10).status_code == 200


def test_the_request_log_line_names_the_key_id_never_the_key(
    url: str, fake: FakeVLLM, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app"):
        assert httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=auth(KEY_A), timeout=30).status_code == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "app.service.speech"]
    assert any(" speech key=id-a model=" in line for line in lines), lines
    assert not any(KEY_A in r.getMessage() for r in caplog.records)


async def test_a_callers_request_share_is_its_principals(url: str, fake: FakeVLLM) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        fake.hold()
        try:
            held = asyncio.ensure_future(client.post("/v1/audio/speech", json=BODY, headers=auth(KEY_A)))
            assert await fake.wait_for_async(lambda: len(fake.requests) == 1)
            refused = await client.post("/v1/audio/speech", json=BODY, headers=auth(KEY_A))
            assert refused.status_code == 429
            assert "limit 1 per client" in refused.json()["error"]["message"]
            other = asyncio.ensure_future(client.post("/v1/audio/speech", json=BODY, headers=auth(KEY_B)))
            assert await fake.wait_for_async(lambda: len(fake.requests) == 2)  # key B: no share, same address
        finally:
            fake.release()
        assert [r.status_code for r in await asyncio.gather(held, other)] == [200, 200]


async def test_a_socket_authorized_by_a_message_serves_that_principal(
    url: str, fake: FakeVLLM, caplog: pytest.LogCaptureFixture
) -> None:
    """A key in the config message makes the socket key A's: its segment takes key A's one request slot."""
    caplog.set_level(logging.INFO, logger="app.api.session")
    async with websockets.connect(stream_url(url)) as ws, httpx.AsyncClient(base_url=url, timeout=30) as client:
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm", "api_key": KEY_A}))
        fake.hold()
        try:
            await ws.send(json.dumps({"type": "text", "text": "Hello there. ", "flush": True}))
            assert await fake.wait_for_async(lambda: len(fake.requests) == 1)
            refused = await client.post("/v1/audio/speech", json=BODY, headers=auth(KEY_A))
            assert refused.status_code == 429 and "per client" in refused.json()["error"]["message"]
        finally:
            fake.release()
        await ws.send(json.dumps({"type": "close"}))
        while True:  # audio frames and the segment's events, then done
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, str) and json.loads(message)["type"] == "done":
                break
    assert any("authorized: key=id-a" in r.getMessage() for r in caplog.records)
    assert not any(KEY_A in r.getMessage() for r in caplog.records)


async def test_a_callers_socket_share_is_its_principals(url: str, fake: FakeVLLM) -> None:
    async with websockets.connect(stream_url(url), additional_headers=auth(KEY_A)):
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(stream_url(url), additional_headers=auth(KEY_A))
        assert refused.value.response.status_code == 429 and b"(limit 1)" in refused.value.response.body
        others = [await websockets.connect(stream_url(url), additional_headers=auth(KEY_B)) for _ in range(3)]
        for ws in others:
            await ws.close()


def test_a_saved_voice_records_its_principals_address(
    url: str, fake: FakeVLLM, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.service.speech")
    data = {"name": "tenant-b-voice", "text": TRANSCRIPT, "consent": "true"}
    files = {"audio": ("clip.wav", wav_bytes(), "audio/wav")}
    resp = httpx.post(f"{url}/v1/audio/voices", data=data, files=files, headers=auth(KEY_B), timeout=30)
    assert resp.status_code == 201, resp.text
    assert resp.json()["consent"]["from"] == FORWARDED
    assert any(f"from {FORWARDED} key=id-b" in r.getMessage() for r in caplog.records)


def test_http_context_ids_belong_to_their_tenant(url: str, fake: FakeVLLM) -> None:
    def say(key: str, text: str, **fields: object) -> str:
        body = {"input": text, "voice": "idayu"} | fields
        assert httpx.post(f"{url}/v1/audio/speech", json=body, headers=auth(key), timeout=30).status_code == 200
        return fake.requests[-1].prompt

    first = say(KEY_A, "First sentence.", context={"id": "conv"})
    assert say(KEY_B, "Other tenant.", context={"id": "conv"}) == speech_prompt("idayu", "Other tenant.")
    second = say(KEY_A, "Second sentence.", context={"id": "conv"})
    assert second == context_prompt("idayu", "First sentence.", fake.expected_tokens(first), "Second sentence.")
