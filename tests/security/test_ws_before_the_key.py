"""WebSockets before their key (issue 35): an unkeyed handshake learns nothing of the voices and costs no store
query, sockets that never authenticate cannot lock out a keyed client, logs name a saved voice but never its
transcript, and a message field of the wrong type is an error message, never the session's end. Real sockets
against the service served as `tts-api` serves it, with `API_KEY` set."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets
from fastapi import FastAPI

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM

KEY = "sk-beforekey-0123456789"
SAVED = "secret-voice"
MARKER = "zanzibarqux"  # in the saved voice's transcript only: it must never reach a log line
TRANSCRIPT = f"{MARKER.title()} suka makan nasi lemak pada waktu pagi."  # first: a clipped log value shows it
AUTH_TIMEOUT = 8.0  # the flood's sockets stay open while the keyed client tries
FLOOD = 300


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0) as server:
        yield server


def wav_bytes(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV")
    return buf.getvalue()


@pytest.fixture(scope="module")
def served(fake: FakeVLLM) -> Iterator[tuple[str, FastAPI]]:
    """The service with the key, the default socket limits, and one saved voice."""
    settings = limits_settings(fake.url, api_key=KEY, stream_auth_timeout=AUTH_TIMEOUT)
    with serve_like_tts_api(settings) as (base, app):
        data = {"name": SAVED, "text": TRANSCRIPT, "consent": "true"}
        files = {"audio": ("clip.wav", wav_bytes(), "audio/wav")}
        saved = httpx.post(f"{base}/v1/audio/voices", data=data, files=files, headers=bearer(), timeout=60)
        assert saved.status_code == 201, saved.text
        yield base, app


@pytest.fixture
def url(served: tuple[str, FastAPI]) -> str:
    return served[0]


@pytest.fixture
def store_lookups(served: tuple[str, FastAPI], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the voice store is asked for while the test runs."""
    store = served[1].state.service.voices.store
    asked: list[str] = []
    real = store.get

    async def counted(name: str, tenant: str = "default") -> object:
        asked.append(name)
        return await real(name, tenant)

    monkeypatch.setattr(store, "get", counted)
    return asked


def bearer() -> dict[str, str]:
    return {"authorization": f"Bearer {KEY}"}


def eleven(voice: str, endpoint: str = "multi-stream-input") -> str:
    return f"/v1/text-to-speech/{voice}/{endpoint}?output_format=pcm_16000"


def ws_url(url: str, path: str) -> str:
    return url.replace("http://", "ws://") + path


async def raw_handshake(
    url: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes, asyncio.StreamWriter]:
    """A WebSocket upgrade on a fresh connection, left open: the status, the rest of the answer's head and body
    (what arrived with it), and the connection (the caller closes it)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    lines = [
        f"GET {path} HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]  # fmt: skip
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    status = int(head.split(b" ", 2)[1])
    body = b""
    if status != 101:
        fields = [h.split(b":", 1) for h in head.split(b"\r\n") if b":" in h]
        length = next((int(v) for k, v in fields if k.strip().lower() == b"content-length"), 0)
        body = await asyncio.wait_for(reader.readexactly(length), 30)
    return status, body, writer


async def until_closed(ws: websockets.ClientConnection, seconds: float = 30) -> list[dict]:
    """The JSON messages received until the server closes the socket (binary audio frames left out)."""
    messages = []
    with pytest.raises(websockets.ConnectionClosed):
        async with asyncio.timeout(seconds):
            while True:
                message = await ws.recv()
                if isinstance(message, str):
                    messages.append(json.loads(message))
    return messages


async def speak(ws: websockets.ClientConnection, context: str = "c1", **first: object) -> list[dict]:
    """One context spoken on a multi-stream socket: its messages up to its isFinal (none may be an error)."""
    await ws.send(json.dumps({"text": "Hello there. ", "context_id": context, "flush": True, **first}))
    await ws.send(json.dumps({"context_id": context, "close_context": True}))
    messages = []
    async with asyncio.timeout(30):
        while not (messages and messages[-1].get("isFinal")):
            messages.append(json.loads(await ws.recv()))
    assert not [m for m in messages if "error" in m], messages
    assert any(m.get("audio") for m in messages)
    return messages


# -- nothing looked up before the key ----------------------------------------------------------------------------


async def test_an_unkeyed_handshake_gets_the_same_answer_for_every_voice_name(
    url: str, store_lookups: list[str]
) -> None:
    """Saved, built-in, alias and unknown names: the same status, no voice list, no store query (on db0a52d an
    unknown name was a 400 listing every voice, and each handshake queried the store)."""
    answers = []
    for endpoint in ("stream-input", "multi-stream-input"):
        for voice in (SAVED, "husein", "alloy", "no-such-voice", "Bad%20Name"):
            status, body, writer = await raw_handshake(url, eleven(voice, endpoint))
            writer.close()
            answers.append((endpoint, voice, status, body))
    assert {status for *_, status, _ in answers} == {101}, answers
    assert store_lookups == []
    # the HTTP routes answer before any route runs: the same 401 for a saved and an unknown voice
    bodies = {
        httpx.post(f"{url}/v1/text-to-speech/{voice}/with-timestamps", json={"text": "Hi."}, timeout=10).text
        for voice in (SAVED, "no-such-voice")
    }
    assert len(bodies) == 1 and "husein" not in bodies.pop()
    assert store_lookups == []


async def test_the_voice_is_looked_up_once_a_message_brings_the_key(url: str, store_lookups: list[str]) -> None:
    async with websockets.connect(ws_url(url, eleven("no-such-voice"))) as ws:
        await ws.send(json.dumps({"text": " ", "xi_api_key": KEY}))
        messages = await until_closed(ws)
    assert ws.close_code == 1008 and [m["code"] for m in messages] == ["invalid_voice"], messages
    assert store_lookups == ["no-such-voice"]  # asked once the key came; the caller may now see the voice list
    async with websockets.connect(ws_url(url, eleven(SAVED))) as ws:
        await ws.send(json.dumps({"text": " ", "xi_api_key": KEY}))
        await speak(ws)
    with pytest.raises(websockets.InvalidStatus) as refused:  # a key in the headers: the voice checked at once
        await websockets.connect(ws_url(url, eleven("no-such-voice")), additional_headers=bearer())
    error = json.loads(refused.value.response.body)["error"]
    assert refused.value.response.status_code == 400 and error["code"] == "invalid_voice"
    assert "husein" in error["message"]  # with the key, the voices are listed as before


# -- sockets waiting for their key are held apart ------------------------------------------------------------------


async def test_an_unkeyed_flood_leaves_a_keyed_clients_first_try_accepted(url: str) -> None:
    paths = [eleven("husein"), "/v1/audio/speech/stream", eleven(SAVED, "stream-input")]
    flood = await asyncio.gather(*(raw_handshake(url, paths[i % len(paths)]) for i in range(FLOOD)))
    try:
        async with websockets.connect(ws_url(url, eleven(SAVED)), additional_headers={"xi-api-key": KEY}) as ws:
            await speak(ws)
        statuses = [status for status, _, _ in flood]
        assert statuses.count(101) <= 32 and statuses.count(429) >= FLOOD - 32  # MAX_UNAUTHENTICATED_SOCKETS
        refused = next(body for status, body, _ in flood if status == 429)
        assert b"waiting for their API key" in refused and b"husein" not in refused
    finally:
        for _, _, writer in flood:
            writer.close()
        await asyncio.sleep(0.5)  # the server sees them go: their places are free for the next test


@pytest.fixture(scope="module")
def small(fake: FakeVLLM) -> Iterator[str]:
    """Two keyed sockets per address, one waiting for its key."""
    settings = limits_settings(
        fake.url, api_key=KEY, stream_auth_timeout=AUTH_TIMEOUT, max_sockets_per_client=2, max_unauthenticated_sockets=1
    )
    with serve_like_tts_api(settings) as (base, _):
        yield base


async def test_a_socket_waits_for_its_key_apart_then_takes_its_keys_share(small: str) -> None:
    stream = ws_url(small, "/v1/audio/speech/stream")
    config = {"type": "config", "api_key": KEY, "voice": "husein"}
    waiting = await websockets.connect(stream)
    try:
        with pytest.raises(websockets.InvalidStatus) as refused:  # the one place for a socket without its key
            await websockets.connect(stream)
        assert refused.value.response.status_code == 429
        assert b"waiting for their API key" in refused.value.response.body
        await waiting.send(json.dumps(config))
        assert json.loads(await asyncio.wait_for(waiting.recv(), 10))["type"] == "session.started"
        late = await websockets.connect(stream)  # the key moved the first to its key's share: a place is free
        keyed = await websockets.connect(stream, additional_headers=bearer())  # the key's second place
        await late.send(json.dumps(config))  # its key's share is full: the session ends, try again later
        messages = await until_closed(late)
        assert late.close_code == 1013 and "too many WebSockets open" in messages[-1]["error"]["message"]
        await keyed.close()
    finally:
        await waiting.close()


# -- a voice's name in the logs, never its transcript -------------------------------------------------------------


async def test_logs_name_a_saved_voice_but_never_its_transcript(url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app"):
        async with websockets.connect(ws_url(url, eleven(SAVED)), additional_headers={"xi-api-key": KEY}) as ws:
            await speak(ws)
        async with websockets.connect(ws_url(url, eleven(SAVED, "stream-input"))) as ws:  # the key in a message
            await ws.send(json.dumps({"text": " ", "xi_api_key": KEY}))
            await ws.send(json.dumps({"text": "Hello there.", "flush": True}))
            await ws.send(json.dumps({"text": ""}))
            await until_closed(ws)
        async with websockets.connect(ws_url(url, eleven(SAVED))) as ws:  # no key at all
            await ws.send(json.dumps({"text": " "}))
            await until_closed(ws)
        async with websockets.connect(ws_url(url, "/v1/audio/speech/stream")) as ws:
            await ws.send(json.dumps({"type": "config", "api_key": KEY, "voice": SAVED}))
            await ws.send(json.dumps({"type": "text", "text": "Hello there.", "flush": True}))
            await ws.send(json.dumps({"type": "close"}))
            await until_closed(ws)
        await asyncio.sleep(0.2)  # the sessions' last lines
    lines = [r.getMessage() for r in caplog.records]
    assert sum(SAVED in line for line in lines) >= 4, lines  # the voice is named in the sessions' lines
    assert not [line for line in lines if MARKER in line.lower()]


# -- a field of the wrong type is an invalid message, the session goes on ---------------------------------------------

BAD_ELEVEN = {
    "context_id-object": {"context_id": {"a": 1}, "text": "Hi. "},
    "contextId-array": {"contextId": ["c"], "text": "Hi. "},
    "text-number": {"text": 5, "context_id": "c0"},
    "flush-string": {"text": "Hi. ", "context_id": "c0", "flush": "yes"},
    "try_trigger_generation-string": {"text": "Hi. ", "context_id": "c0", "try_trigger_generation": "yes"},
    "close_context-object": {"context_id": "c0", "close_context": {"a": 1}},
    "close_socket-string": {"close_socket": "yes"},
    "voice_settings-array": {"text": "Hi. ", "context_id": "c0", "voice_settings": [1]},
    "generation_config-number": {"text": "Hi. ", "context_id": "c0", "generation_config": 7},
    "pronunciation_dictionary_locators-string": {"text": "Hi. ", "pronunciation_dictionary_locators": "d"},
    "xi_api_key-number": {"text": " ", "xi_api_key": 5},
}


@pytest.mark.parametrize("message", BAD_ELEVEN.values(), ids=BAD_ELEVEN.keys())
async def test_an_elevenlabs_field_of_the_wrong_type_is_an_invalid_message(url: str, message: dict) -> None:
    async with websockets.connect(ws_url(url, eleven("husein")), additional_headers={"xi-api-key": KEY}) as ws:
        await ws.send(json.dumps(message))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error.get("code") == "invalid_message", error
        await speak(ws)  # the session goes on
        await ws.send(json.dumps({"close_socket": True}))
        await until_closed(ws)
    assert ws.close_code == 1000


BAD_OURS = {
    "type-object": {"type": {"a": 1}},
    "text-object": {"type": "text", "text": {"a": 1}},
    "flush-string": {"type": "text", "text": "Hi. ", "flush": "yes"},
}


@pytest.mark.parametrize("message", BAD_OURS.values(), ids=BAD_OURS.keys())
async def test_our_stream_field_of_the_wrong_type_is_an_invalid_message(url: str, message: dict) -> None:
    async with websockets.connect(ws_url(url, "/v1/audio/speech/stream"), additional_headers=bearer()) as ws:
        await ws.send(json.dumps({"type": "config", "voice": "husein"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "session.started"
        await ws.send(json.dumps(message))
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert error["type"] == "error" and error["error"]["param"] in ("type", "text", "flush"), error
        await ws.send(json.dumps({"type": "text", "text": "Hello there.", "flush": True}))
        await ws.send(json.dumps({"type": "close"}))
        messages = await until_closed(ws)
    assert ws.close_code == 1000 and messages[-1]["type"] == "done", messages


def test_a_saved_voice_repr_names_it_and_nothing_it_holds() -> None:
    from app.service.voice_store import SavedVoice

    voice = SavedVoice("acme-agent", "secret words", "Secret Words", (1, 2), 2.0, "ab" * 32, "en", "yes", "Ann",
                       "203.0.113.9", "2026-12-07T00:00:00Z")  # fmt: skip
    assert repr(voice) == "SavedVoice(name='acme-agent')"
