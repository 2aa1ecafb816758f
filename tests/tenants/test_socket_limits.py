"""Both WebSockets (ours and ElevenLabs') count toward a key's and its tenant's limits (issue 34, item 3): each
open context is a stream (a lease, given back when its last message is sent) and a request per minute; text
counts against the characters per minute as it arrives. A refusal is an error message in the protocol's shape
and then a 1013 close, decided when the context opens or the text arrives: what was accepted before it is still
spoken to the end, and recorded as usage."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import websockets

from app.prompts import speech_prompt
from app.settings import Settings
from tests.tenants.helpers import ADMIN, bearer, new_key
from tests.tenants.test_limits import BODY
from tests.tenants.test_usage import BYTES_PER_MS, usage, wait_for_requests
from tests.voices.test_saved_voices import parts
from tools.fake_vllm import FakeVLLM
from tools.harness import serve

SENTENCE = "Terima kasih kerana menghubungi kami."  # 37 characters
ELEVEN = "/v1/text-to-speech/jenny/multi-stream-input?model_id=eleven_turbo_v2_5&output_format=pcm_24000"


def ws_url(url: str, path: str = "/v1/audio/speech/stream") -> str:
    return url.replace("http://", "ws://") + path


async def drain(ws: websockets.ClientConnection) -> tuple[list[dict], int, int | None]:
    """Every message until the server closes: the JSON ones, the binary audio's bytes, and the close code."""
    events, audio = [], 0
    try:
        async for m in ws:
            if isinstance(m, bytes):
                audio += len(m)
            else:
                events.append(json.loads(m))
    except websockets.ConnectionClosedError:
        pass
    return events, audio, ws.close_code


async def refused_config(url: str, key: str) -> tuple[list[dict], int | None]:
    async with websockets.connect(ws_url(url), additional_headers=bearer(key)) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
        events, _, code = await asyncio.wait_for(drain(ws), 30)
    return events, code


async def test_our_websocket_holds_a_stream_while_its_context_runs(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.rate = 40  # tokens/s: the first socket's segment runs for seconds
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        key = new_key(url, "brand-a", max_streams=1)["key"]
        async with websockets.connect(ws_url(url), additional_headers=bearer(key)) as first:
            await first.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
            await first.send(json.dumps({"type": "text", "text": SENTENCE, "flush": True}))
            assert json.loads(await first.recv())["type"] == "session.started"
            events, code = await refused_config(url, key)  # a second socket: its context is a second stream
            assert code == 1013 and [e["type"] for e in events] == ["error"]
            assert events[0]["error"]["code"] == "rate_limit_exceeded" and "1 streams at once" in events[0]["error"]["message"]
            resp = httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(key), timeout=30)
            assert resp.status_code == 429  # HTTP and WebSockets share the key's streams
            fake.rate = 0
            await first.send(json.dumps({"type": "close"}))
            events, audio, code = await asyncio.wait_for(drain(first), 30)
            assert code == 1000 and events[-1]["type"] == "done" and audio > 0
        deadline = time.monotonic() + 5
        while (resp := httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(key), timeout=30)).status_code != 200:
            assert time.monotonic() < deadline, resp.text  # the context's lease given back when it ended
            await asyncio.sleep(0.1)


async def test_a_socket_idle_between_replies_holds_no_stream_and_each_context_is_a_request(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        key = new_key(url, "brand-a", max_streams=1, requests_per_minute=3)["key"]
        async with websockets.connect(ws_url(url, ELEVEN), additional_headers={"xi-api-key": key}) as ws:
            for cid in ("reply-1", "reply-2"):  # one after the other: one stream at a time
                await ws.send(json.dumps({"text": SENTENCE, "context_id": cid, "flush": True}))
                await ws.send(json.dumps({"context_id": cid, "close_context": True}))
                while not (m := json.loads(await asyncio.wait_for(ws.recv(), 30))).get("isFinal"):
                    assert "error" not in m, m
            await asyncio.sleep(0.5)  # the last context's lease given back: the idle socket holds none
            assert httpx.post(f"{url}/v1/audio/speech", json=BODY, headers=bearer(key), timeout=30).status_code == 200
            await ws.send(json.dumps({"text": SENTENCE, "context_id": "reply-3"}))  # a fourth request this minute
            events, _, code = await asyncio.wait_for(drain(ws), 30)
        assert code == 1013 and events == [{"error": events[0]["error"], "message": events[0]["error"],
                                            "code": "rate_limit_exceeded", "contextId": "reply-3"}]  # fmt: skip
        assert "3 requests per minute" in events[0]["error"]


async def test_a_tenants_streams_refuse_a_new_elevenlabs_context_without_cutting_the_open_one(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.rate = 60
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        a1, a2 = new_key(url, "brand-a")["key"], new_key(url, "brand-a")["key"]  # no limits of their own
        put = httpx.put(f"{url}/v1/admin/tenants/brand-a", json={"max_streams": 2}, headers=bearer(ADMIN))
        assert put.status_code == 200
        async with websockets.connect(ws_url(url), additional_headers=bearer(a2)) as other:
            await other.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
            await other.send(json.dumps({"type": "text", "text": SENTENCE, "flush": True}))
            assert json.loads(await other.recv())["type"] == "session.started"  # the tenant's first stream
            async with websockets.connect(ws_url(url, ELEVEN), additional_headers={"xi-api-key": a1}) as ws:
                await ws.send(json.dumps({"text": SENTENCE, "context_id": "a", "flush": True}))  # its second
                first = json.loads(await asyncio.wait_for(ws.recv(), 30))
                assert first.get("contextId") == "a" and first.get("audio"), first
                await ws.send(json.dumps({"text": SENTENCE, "context_id": "b", "flush": True}))  # a third: refused
                fake.rate = 0
                events, _, code = await asyncio.wait_for(drain(ws), 30)
            await other.send(json.dumps({"type": "close"}))
            await asyncio.wait_for(drain(other), 30)
    errors = [e for e in events if "error" in e]
    assert code == 1013 and len(errors) == 1 and errors[0]["contextId"] == "b"
    assert "this tenant's limit of 2 streams at once" in errors[0]["error"]
    assert events[-1] == {"isFinal": True, "contextId": "a"}  # context a spoken to its end
    assert not [e for e in events if e.get("contextId") == "b" and "error" not in e]
    audio = sum(len(base64.b64decode(e["audio"])) for e in [first, *events] if e.get("audio"))
    assert audio == len(fake.expected_tokens(speech_prompt("jenny", SENTENCE))) * 960  # nothing of a's audio cut


async def test_text_over_the_characters_per_minute_is_refused_as_it_arrives_and_the_rest_is_spoken(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    with serve(settings_for(voice_store_url=f"sqlite:///{tmp_path / 's.db'}", api_key=ADMIN), parts()) as url:
        key = new_key(url, "brand-a", chars_per_minute=len(SENTENCE) + 10)["key"]
        async with websockets.connect(ws_url(url), additional_headers=bearer(key)) as ws:
            await ws.send(json.dumps({"type": "config", "voice": "jenny", "response_format": "pcm"}))
            await ws.send(json.dumps({"type": "text", "text": SENTENCE}))  # taken: within the limit
            await ws.send(json.dumps({"type": "text", "text": " Sila tunggu sebentar."}))  # over it: refused
            await ws.send(json.dumps({"type": "text", "text": " Baik."}))  # after the refusal: not taken
            events, audio, code = await asyncio.wait_for(drain(ws), 30)
        kinds = [e["type"] for e in events]
        assert code == 1013 and kinds.count("error") == 1 and kinds[-1] == "done", kinds
        error = next(e for e in events if e["type"] == "error")
        assert error["error"]["code"] == "rate_limit_exceeded" and "characters per minute" in error["error"]["message"]
        spoken = [e["text"] for e in events if e["type"] == "segment.done"]
        assert spoken == [SENTENCE]  # the accepted text spoken whole, nothing of the refused
        [row] = wait_for_requests(url, key, 1)
        assert row["characters"] == len(SENTENCE) and row["audio_ms"] == round(audio / BYTES_PER_MS)
        by_endpoint = usage(url, key, group_by="endpoint").json()["data"]
        assert [(r["endpoint"], r["requests"]) for r in by_endpoint] == [("websocket", 1)]
