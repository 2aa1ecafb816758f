"""Auth that cannot fail open or leak (issue 24): malformed keys, the key before the body, WebSocket handshakes,
the in-message key's deadline, and what an unauthenticated client may see. Real sockets against the service."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from app.main import Components
from app.settings import Settings
from tests.conftest import SETTINGS
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, free_port, serve

KEY = "sk-authsec-0123456789"
AUTH_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=60, rate=0) as server:
        yield server


@pytest.fixture(scope="module")
def url(fake: FakeVLLM) -> Iterator[str]:
    settings = Settings(
        _env_file=None, **({"tts_api": fake.url} | SETTINGS), api_key=KEY, stream_auth_timeout=AUTH_TIMEOUT
    )
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as u:
        yield u


def raw_request(url: str, head: bytes, timeout: float = 10.0) -> bytes:
    """Send `head` (request line and headers, no body) on a fresh TCP connection; the server's first answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(head)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head_end = data.find(b"\r\n\r\n")
        length = next(
            (int(line.split(b":", 1)[1]) for line in data[:head_end].split(b"\r\n") if line.lower().startswith(b"content-length:")),
            0,
        )
        while len(data) < head_end + 4 + length:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


MALFORMED = [
    b"Bearer \xe9\xff",  # latin-1 bytes, not UTF-8
    b"Bearer \xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"Bearer " + b"k" * 5000,  # far longer than any key
    b"Bearer " + KEY.encode() + b"\xff",
    b"\xff\xfe",
]


@pytest.mark.parametrize("value", MALFORMED, ids=["latin1", "surrogate", "huge", "key+byte", "no-scheme"])
def test_a_malformed_http_key_is_a_401(url: str, value: bytes) -> None:
    body = b'{"input": "hi"}'
    head = (
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: " + value + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = raw_request(url, head)
    assert status_of(answer) == 401, answer[:300]
    assert b'"invalid_api_key"' in answer


def test_a_body_without_the_key_is_refused_unread(url: str) -> None:
    """200 MB announced, not one byte sent: the 401 comes at once (FastAPI would wait to parse the body first)."""
    head = (
        b"POST /v1/audio/speech HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 200000000\r\n\r\n"
    )
    started = time.monotonic()
    answer = raw_request(url, head, timeout=10)
    assert status_of(answer) == 401, answer[:300]
    assert time.monotonic() - started < 5
    for path in ("/v1/audio/vc", "/v1/audio/normalize"):
        answer = raw_request(url, head.replace(b"/v1/audio/speech", path.encode()), timeout=10)
        assert status_of(answer) == 401, (path, answer[:300])


def test_nothing_under_v1_answers_without_the_key(url: str) -> None:
    """No voice list, model name or route map before auth: every /v1 path, known or not, is the same 401."""
    for path in ("/v1/audio/voices", "/v1/audio/speaker", "/v1/models", "/v1/audio/models", "/v1/nope", "/v1"):
        r = httpx.get(f"{url}{path}", timeout=10)
        assert r.status_code == 401, path
        assert "husein" not in r.text and "TTS-model" not in r.text, path
    for path in ("/openapi.json", "/docs", "/metrics"):
        assert httpx.get(f"{url}{path}", timeout=10).status_code == 401, path
    r = httpx.get(f"{url}/v1/audio/voices", headers={"authorization": f"Bearer {KEY}"}, timeout=10)
    assert r.status_code == 200 and "husein" in r.text


def test_health_and_ready_stay_open_and_say_only_their_status(url: str) -> None:
    assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready", timeout=10).json() == {"status": "ready"}


def ws_handshake(url: str, path: str, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A raw WebSocket upgrade request (any header bytes); the server's answer."""
    lines = [
        f"GET {path} HTTP/1.1".encode(),
        b"Host: x",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        *(name + b": " + value for name, value in headers),
    ]
    return raw_request(url, b"\r\n".join(lines) + b"\r\n\r\n")


WS_PATHS = [
    "/v1/audio/speech/stream",
    "/v1/text-to-speech/husein/stream-input?output_format=pcm_16000",
    "/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000",
]


@pytest.mark.parametrize("path", WS_PATHS)
@pytest.mark.parametrize(
    "header",
    [
        (b"authorization", b"Bearer \xe9\xff"),
        (b"authorization", b"Bearer " + b"k" * 5000),
        (b"xi-api-key", b"\xed\xa0\x80"),
        (b"xi-api-key", b"wrong"),
    ],
    ids=["latin1", "huge", "surrogate", "wrong"],
)
def test_a_bad_key_in_the_handshake_is_refused_before_accept(url: str, path: str, header: tuple[bytes, bytes]) -> None:
    if header[0] == b"xi-api-key" and "speech/stream" in path:
        header = (b"authorization", b"Bearer " + header[1])  # our protocol reads the bearer header
    answer = ws_handshake(url, path, [header])
    assert status_of(answer) == 401, answer[:300]  # not 101: the socket was never accepted
    assert b'"invalid_api_key"' in answer


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


async def closed_within(ws: websockets.ClientConnection, seconds: float) -> tuple[list, float]:
    """Messages received until the server closes (within `seconds`), and when it closed."""
    started = time.monotonic()
    messages = []
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                messages.append(await ws.recv())
    return messages, time.monotonic() - started


@pytest.mark.parametrize("path", WS_PATHS)
async def test_a_silent_unauthenticated_socket_is_closed_after_the_auth_timeout(url: str, path: str) -> None:
    async with websockets.connect(ws_url(url, path)) as ws:
        messages, after = await closed_within(ws, AUTH_TIMEOUT + 4)
    assert ws.close_code == 1008
    assert after >= AUTH_TIMEOUT * 0.8
    assert "invalid_api_key" in json.dumps([json.loads(m) for m in messages])


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000", {"text": " ", "xi_api_key": "\ud800"}),
        ("/v1/text-to-speech/husein/stream-input?output_format=pcm_16000", {"text": " ", "xi_api_key": "\udfff" * 3}),
        ("/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000", {"text": " ", "authorization": "Bearer \ud800x"}),
        ("/v1/text-to-speech/husein/stream-input?output_format=pcm_16000", {"text": " ", "xi_api_key": "k" * 100_000}),
        ("/v1/audio/speech/stream", {"type": "config", "api_key": "\ud800"}),
    ],
    ids=["surrogate", "surrogates", "bearer-surrogate", "huge", "ours-surrogate"],
)
async def test_a_malformed_key_in_a_message_is_a_clean_refusal(url: str, path: str, message: dict) -> None:
    """A lone surrogate (valid JSON: "\\ud800") or a huge key: 1008 with invalid_api_key (our config message:
    an invalid api_key field), never 1011 (an internal error)."""
    async with websockets.connect(ws_url(url, path), max_size=None) as ws:
        await ws.send(json.dumps(message))  # ensure_ascii: the surrogate travels as its JSON escape
        messages, _ = await closed_within(ws, 10)
    assert ws.close_code == 1008, [ws.close_code, ws.close_reason, messages]
    errors = [json.loads(m) for m in messages]
    expected = '"invalid_value"' if "speech/stream" in path else '"invalid_api_key"'
    assert expected in json.dumps(errors) and "api_key" in json.dumps(errors), errors


async def test_a_key_in_the_first_message_keeps_the_socket_past_the_auth_timeout(url: str) -> None:
    """Once the key arrived, the auth deadline no longer applies: text sent later is spoken."""
    async with websockets.connect(ws_url(url, "/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000")) as ws:
        await ws.send(json.dumps({"text": " ", "xi_api_key": KEY}))
        await asyncio.sleep(AUTH_TIMEOUT * 1.5)
        await ws.send(json.dumps({"text": "Hello there.", "context_id": "c1", "flush": True}))
        await ws.send(json.dumps({"context_id": "c1", "close_context": True}))
        got_audio = False
        async with asyncio.timeout(30):
            while True:
                msg = json.loads(await ws.recv())
                assert "error" not in msg, msg
                got_audio = got_audio or bool(msg.get("audio"))
                if msg.get("isFinal"):
                    break
    assert got_audio


def test_a_key_in_the_query_string_is_not_a_key(url: str) -> None:
    """Keys belong in headers or messages (a URL is logged): `?xi_api_key=` authorizes nothing."""
    r = httpx.get(f"{url}/v1/models", params={"api_key": KEY, "xi_api_key": KEY}, timeout=10)
    assert r.status_code == 401


def test_the_cors_preflight_still_passes_the_key_guard(fake: FakeVLLM) -> None:
    """The browser's OPTIONS preflight carries no key; CORS answers it before the key guard."""
    settings = Settings(_env_file=None, tts_api=fake.url, api_key=KEY, cors_origins="https://app.example")
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as u:
        r = httpx.options(
            f"{u}/v1/audio/speech",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
            timeout=10,
        )
        assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.post(f"{u}/v1/audio/speech", json={"input": "hi"}, headers={"origin": "https://app.example"})
        assert r.status_code == 401 and r.headers["access-control-allow-origin"] == "https://app.example"


def test_the_key_guard_is_off_without_a_key(fake: FakeVLLM) -> None:
    settings = Settings(_env_file=None, tts_api=fake.url, port=free_port())
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as u:
        assert httpx.get(f"{u}/v1/models", timeout=10).status_code == 200
