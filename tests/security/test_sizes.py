"""Sizes are checked before work: WebSocket messages, pending text on both protocols, JSON bodies, previous_text,
and every text that reaches the shared normalizer thread (issue 24, "the event loop and shared threads").

The probe to beat: one 108,000-character WebSocket message made `/health` take 21 s."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from app.errors import InvalidRequestError
from app.service.text_input import TextInput
from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer

PROBE = ("Dr. Tan will see you at ten, if that suits you. Is that fine? Yes! " * 1700)[:108_000]


class RecordingNormalizer(PassthroughNormalizer):
    """The pass-through normalizer, recording the length of every text it is given."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        self.lengths.append(len(text))
        return super().normalize(text, malaysian, language)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0) as server:
        yield server


@pytest.fixture(scope="module")
def normalizer() -> RecordingNormalizer:
    return RecordingNormalizer()


@pytest.fixture(scope="module")
def url(fake: FakeVLLM, normalizer: RecordingNormalizer) -> Iterator[str]:
    with serve_like_tts_api(limits_settings(fake.url), normalizer) as (base, _):
        yield base


def ws_url(base: str, protocol: str) -> str:
    base = base.replace("http://", "ws://")
    if protocol == "speech-stream":
        return f"{base}/v1/audio/speech/stream"
    return f"{base}/v1/text-to-speech/jenny/stream-input?model_id=m&output_format=pcm_24000"


def opening(protocol: str) -> str:
    return json.dumps({"type": "config", "voice": "jenny"} if protocol == "speech-stream" else {"text": " "})


def text_message(protocol: str, text: str) -> str:
    return json.dumps({"type": "text", "text": text} if protocol == "speech-stream" else {"text": text})


async def messages_until_closed(ws: websockets.ClientConnection) -> list[dict]:
    out = []
    try:
        async for m in ws:
            if isinstance(m, str):
                out.append(json.loads(m))
    except websockets.ConnectionClosed:
        pass
    return out


@pytest.mark.parametrize("protocol", ["speech-stream", "elevenlabs"])
async def test_a_huge_text_message_is_refused_while_health_answers_at_once(url: str, protocol: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        assert (await client.get("/health")).status_code == 200  # the connection is warm
        async with websockets.connect(ws_url(url, protocol), additional_headers={"xi-api-key": "k"}) as ws:
            await ws.send(opening(protocol))
            await ws.send(text_message(protocol, PROBE))
            started = time.monotonic()
            health = await client.get("/health")
            took = time.monotonic() - started
            messages = await asyncio.wait_for(messages_until_closed(ws), 20)
        assert health.status_code == 200
        assert took < 1.0, f"/health took {took:.2f} s beside a {len(PROBE)}-character message"
    errors = [m for m in messages if "error" in m]
    assert errors, messages
    text = json.dumps(errors[-1])
    assert "too_much_pending_text" in text
    assert ws.close_code == 1008


async def test_a_message_over_the_frame_limit_is_closed_by_the_server(url: str) -> None:
    async with websockets.connect(ws_url(url, "speech-stream"), max_size=None) as ws:
        await ws.send(opening("speech-stream"))
        await ws.send(text_message("speech-stream", "a" * (300 * 1024)))  # over WS_MAX_MESSAGE_BYTES (256 KiB)
        await asyncio.wait_for(messages_until_closed(ws), 20)
    assert ws.close_code == 1009  # message too big


def test_a_json_body_over_the_limit_is_413_before_it_is_parsed(url: str) -> None:
    body = json.dumps({"input": "word " * 400_000, "voice": "jenny"}).encode()  # 2 MB, over MAX_BODY_BYTES
    declared = httpx.post(f"{url}/v1/audio/speech", content=body, headers={"content-type": "application/json"})
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    streamed = httpx.post(f"{url}/v1/audio/speech", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json()["error"]["type"] == "invalid_request_error"
    assert (httpx.get(f"{url}/health")).status_code == 200


def test_a_body_under_the_limit_still_works(url: str) -> None:
    resp = httpx.post(f"{url}/v1/audio/speech", json={"input": "Hello there.", "voice": "jenny"}, timeout=30)
    assert resp.status_code == 200 and resp.content


def test_previous_text_reaches_the_normalizer_only_up_to_the_input_limit(
    url: str, normalizer: RecordingNormalizer
) -> None:
    first = {"input": "Hello there, how are you today?", "voice": "jenny", "context": {"id": "call-1"}}
    assert httpx.post(f"{url}/v1/audio/speech", json=first, timeout=30).status_code == 200
    normalizer.lengths.clear()
    history = "earlier words " * 7_000 + first["input"]  # 98,000 characters of conversation
    second = {"input": "Fine, thanks.", "voice": "jenny", "context": {"id": "call-1", "previous_text": history}}
    resp = httpx.post(f"{url}/v1/audio/speech", json=second, timeout=30)
    assert resp.status_code == 200
    assert normalizer.lengths and max(normalizer.lengths) <= 4096, normalizer.lengths  # MAX_INPUT_CHARS


async def test_a_text_over_the_limit_never_reaches_the_normalizer_thread() -> None:
    """The shared normalizer runs one job at a time: each is bounded, so a short one waits for bounded work."""
    normalizer = RecordingNormalizer()
    text_input = TextInput(normalizer, max_chars=4096)
    try:
        with pytest.raises(InvalidRequestError) as exc:
            await text_input.normalize("a" * 100_000, True, param="context.previous_text")
        assert exc.value.param == "context.previous_text"
        assert await text_input.normalize("short one", True) == "short one"
        assert normalizer.lengths == [len("short one")]
    finally:
        text_input.close()


def test_the_tail_of_a_long_text_starts_at_a_word() -> None:
    text_input = TextInput(PassthroughNormalizer(), max_chars=20)
    try:
        assert text_input.tail("short") == "short"
        tail = text_input.tail("one two three four five six seven")
        assert len(tail) <= 20 and "one two three four five six seven".endswith(tail) and tail.startswith("four")
    finally:
        text_input.close()


@pytest.mark.parametrize(("content_type", "app_may_see"), [("application/json", 2500), ("multipart/form-data", 6000)])
async def test_the_body_limit_stops_what_an_app_reads_at_its_limit(content_type: str, app_may_see: int) -> None:
    """An app that never checks sizes reads no more than the limit (an upload: one message more, for its own
    check); the client gets the middleware's 413."""
    from app.api.limits import BodySizeLimit

    seen: list[int] = []

    async def app(scope, receive, send) -> None:  # reads the whole body, then answers 200
        while (message := await receive())["type"] == "http.request":
            seen.append(len(message["body"]))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    incoming = [{"type": "http.request", "body": b"x" * 1000, "more_body": i < 19} for i in range(20)]

    async def receive() -> dict:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-type", content_type.encode())]}
    await BodySizeLimit(app, max_bytes=2500, max_multipart_bytes=5000)(scope, receive, send)
    assert sum(seen) <= app_may_see
    assert sent[0]["status"] == 413 and len([m for m in sent if m["type"] == "http.response.start"]) == 1
    assert b"payload_too_large" in sent[1]["body"]
