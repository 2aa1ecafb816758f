"""Fair shares: one multi-stream socket cannot open contexts until it fills the pod's request slots (600 took all
256), and one client address cannot open WebSockets without end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
import pytest
import websockets

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0) as server:
        yield server


@pytest.fixture(scope="module")
def http_url(fake: FakeVLLM) -> Iterator[str]:
    settings = limits_settings(fake.url, stream_max_contexts=4, max_sockets_per_client=3, max_requests_per_client=2)
    with serve_like_tts_api(settings) as (base, _):
        yield base


@pytest.fixture
def url(http_url: str) -> str:
    return http_url.replace("http://", "ws://")


def multi(url: str) -> str:
    return f"{url}/v1/text-to-speech/jenny/multi-stream-input?model_id=m&output_format=pcm_24000"


async def test_a_socket_opens_at_most_its_share_of_contexts(url: str) -> None:
    async with websockets.connect(multi(url), additional_headers={"xi-api-key": "k"}) as ws:
        for i in range(6):
            await ws.send(json.dumps({"text": " ", "context_id": f"c{i}"}))
        errors = []
        while len(errors) < 2:
            message = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "error" in message:
                errors.append(message)
        assert [e["contextId"] for e in errors] == ["c4", "c5"]
        assert all(e["code"] == "too_many_contexts" for e in errors)
        # a context closed frees its place
        await ws.send(json.dumps({"context_id": "c0", "close_context": True}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10)) != {"isFinal": True, "contextId": "c0"}:
            pass
        await ws.send(json.dumps({"text": "Hello there. ", "context_id": "c6", "flush": True}))
        audio = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert audio.get("contextId") == "c6" and "error" not in audio, audio
        await ws.send(json.dumps({"close_socket": True}))


async def test_a_client_address_opens_at_most_its_share_of_sockets(url: str) -> None:
    stream = f"{url}/v1/audio/speech/stream"
    held = [await websockets.connect(stream) for _ in range(3)]
    try:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(stream)
        assert refused.value.response.status_code == 429
        assert b"too many WebSockets" in refused.value.response.body
        await held.pop().close()
        await asyncio.sleep(0.2)  # the server sees the close
        held.append(await websockets.connect(stream))  # its place is free again
    finally:
        for ws in held:
            await ws.close()


async def test_a_client_address_holds_at_most_its_share_of_request_slots(http_url: str, fake: FakeVLLM) -> None:
    body = {"input": "Hello there.", "voice": "jenny", "stream": False}
    here = httpx.AsyncClient(base_url=http_url, timeout=30)  # from 127.0.0.1
    there = httpx.AsyncClient(base_url=http_url, timeout=30, transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2"))
    before = len(fake.requests)
    fake.hold()  # requests stay in flight until released
    try:
        held = [asyncio.ensure_future(here.post("/v1/audio/speech", json=body)) for _ in range(2)]
        assert await fake.wait_for_async(lambda: len(fake.requests) >= before + 2)
        refused = await here.post("/v1/audio/speech", json=body)
        assert refused.status_code == 429 and "per client" in refused.json()["error"]["message"]
        other = asyncio.ensure_future(there.post("/v1/audio/speech", json=body))  # another address: its own share
        assert await fake.wait_for_async(lambda: len(fake.requests) >= before + 3)
        fake.release()
        assert [r.status_code for r in await asyncio.gather(*held, other)] == [200, 200, 200]
        assert (await here.post("/v1/audio/speech", json=body)).status_code == 200  # the slots came back
    finally:
        fake.release()
        await here.aclose()
        await there.aclose()
