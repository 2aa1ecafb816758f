"""SIGTERM to a real `tts-api` process under load (issue 32, item 2): nothing in flight is lost.

The fake vLLM streams 120 tokens per request at 40 tokens/s (3 s a request); the real tiny codec decodes them in
the engine process. Real clients on real sockets: a streamed pcm request, a complete WAV, SSE, our WebSocket and
ElevenLabs' mid-context, and one of ours with no context in flight. Then SIGTERM, and every one must finish with
all its audio, while /ready says 503 at once, a request within the grace is served, and new work after the
grace gets 503 `shutting_down` with Retry-After.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.sync.client import ClientConnection, connect
from websockets.uri import parse_uri

from tools.fake_vllm import FakeVLLM
from tools.harness import tts_api_process, wait_until

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()
TOKENS = 120
PCM = TOKENS * 960  # bytes of 16-bit audio at 24 kHz for every request's tokens
GRACE = 2.0  # DRAIN_GRACE_SECONDS
DEADLINE = 40.0  # SHUTDOWN_GRACE_SECONDS

pytestmark = pytest.mark.skipif(
    not (CODEC_DIR / "pytorch_model.bin").exists(), reason=f"no tiny codec at {CODEC_DIR} (make models builds it)"
)


@pytest.fixture
def slow_fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=TOKENS, rate=40) as server:
        yield server


def drain_env(fake: FakeVLLM, **extra: str) -> dict[str, str]:
    return {
        "TTS_API": fake.url,
        "CODEC_MODEL": str(CODEC_DIR),
        "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": "1",
        "TEXT_NORMALIZER": "none",
        "LOG_LEVEL": "info",
        "DRAIN_GRACE_SECONDS": str(GRACE),
        "SHUTDOWN_GRACE_SECONDS": str(DEADLINE),
    } | extra


# -- clients: each returns (result, audio bytes), "complete" only with every byte -------------------------


def http_stream(url: str, body: dict, started: threading.Event) -> tuple[str, int]:
    got, text = 0, b""
    with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=60) as r:
        if r.status_code != 200:
            return f"status {r.status_code}", 0
        for piece in r.iter_bytes():
            started.set()
            got += len(piece)
            text += piece if body.get("stream_format") == "sse" else b""
    if body.get("stream_format") != "sse":
        return "complete", got
    events = [json.loads(line[6:]) for line in text.decode().splitlines() if line.startswith("data: ")]
    audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
    return ("complete" if events[-1]["type"] == "speech.audio.done" else f"sse ended {events[-1]}"), audio


def ours(url: str, started: threading.Event, close_at: Callable[[], bool] | None) -> tuple[str, int]:
    """Our protocol: config, one sentence, then (when `close_at()` first says so) close; None: no text at all.
    The audio it returns is what was received less what `done` says was generated: 0 when nothing was lost."""
    got, last, tokens = 0, "", 0
    with connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream", open_timeout=30) as ws:
        ws.send(json.dumps({"type": "config", "response_format": "pcm"}))
        if close_at is not None:
            ws.send(json.dumps({"type": "text", "text": "A reply that is spoken while the server drains."}))
        closed = False
        for message in _messages(ws, tick=0.1):
            if close_at is not None and not closed and close_at():
                ws.send(json.dumps({"type": "close"}))  # the sentence's last word is spoken now
                closed = True
            if message is None:
                continue
            started.set()
            if isinstance(message, bytes):
                got += len(message)
            else:
                event = json.loads(message)
                last, tokens = event["type"], event.get("usage", {}).get("output_tokens", tokens)
        # every token the backend sent for its segments (the segmenter may make two of the sentence), as audio
        return f"{last} {ws.close_code}", (got - tokens * 960) if tokens else -1


def elevenlabs(url: str, started: threading.Event) -> tuple[str, int]:
    """ElevenLabs' stream-input: one flushed sentence and no end of input: the drain ends the context."""
    query = "model_id=eleven_turbo_v2_5&output_format=pcm_24000"
    path = f"/v1/text-to-speech/jenny/stream-input?{query}"
    got, final = 0, False
    with connect(url.replace("http://", "ws://") + path, open_timeout=30) as ws:
        ws.send(json.dumps({"text": " "}))
        ws.send(json.dumps({"text": "Another reply, spoken while the server drains. ", "flush": True}))
        for message in _messages(ws):
            event = json.loads(message or "{}")
            if event.get("audio"):
                started.set()
                got += len(base64.b64decode(event["audio"]))
            final = final or event.get("isFinal") is True
        return f"{'final' if final else 'no final'} {ws.close_code}", got


def _messages(ws: ClientConnection, tick: float | None = None) -> Iterator[str | bytes | None]:
    """The socket's messages until it closes (its code is read after), None every `tick` s without one."""
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            yield ws.recv(timeout=tick or 60)
        except TimeoutError:
            if tick is None:
                return
            yield None
        except Exception:  # noqa: BLE001 - the socket closed
            return


class Client(threading.Thread):
    def __init__(self, name: str, run: Callable[[threading.Event], tuple[str, int]]) -> None:
        super().__init__(name=name, daemon=True)
        self.run_client = run
        self.started_audio = threading.Event()
        self.result: tuple[str, int] | None = None
        self.ended = 0.0

    def run(self) -> None:
        try:
            self.result = self.run_client(self.started_audio)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion
            self.result = (f"raised {exc!r}", 0)
        self.ended = time.monotonic()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_under_load_finishes_everything_in_flight(slow_fake: FakeVLLM, tmp_path: Path, workers: int) -> None:
    """One front-end, or two under uvicorn's supervisor (which passes the signal to each and waits)."""
    log = tmp_path / "tts-api.log"
    with tts_api_process(drain_env(slow_fake, API_WORKERS=str(workers)), cwd=tmp_path, log=log) as (url, proc):
        signalled: list[float] = []

        def close_after_grace() -> bool:
            return bool(signalled) and time.monotonic() > signalled[0] + GRACE + 0.5

        pcm = {"input": "A streamed reply.", "response_format": "pcm"}
        clients = [
            Client("pcm", lambda s: http_stream(url, pcm, s)),
            Client("sse", lambda s: http_stream(url, pcm | {"stream_format": "sse"}, s)),
            Client("ours", lambda s: ours(url, s, close_after_grace)),
            Client("elevenlabs", lambda s: elevenlabs(url, s)),
            Client("wav", lambda s: http_stream(url, {"input": "A complete reply.", "response_format": "wav"}, s)),
            Client("idle socket", lambda s: ours(url, s, None)),
        ]
        for c in clients:
            c.start()
        streaming = clients[:4]
        wait_until(lambda: all(c.started_audio.is_set() for c in streaming), 60, "audio on every stream")
        wait_until(lambda: slow_fake.active_streams >= 5, 10, "the WAV request at the backend")
        proc.send_signal(signal.SIGTERM)
        signalled.append(time.monotonic())

        # at once (uvicorn's supervisor passes the signal on within its 0.5 s loop)
        wait_until(lambda: httpx.get(f"{url}/ready", timeout=5).status_code == 503, 2, "/ready to say 503")
        assert httpx.get(f"{url}/ready", timeout=5).json()["error"]["code"] == "shutting_down"
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=pcm, timeout=60) as within_grace:  # sent here
            assert within_grace.status_code == 200  # before the balancer knew: served
            assert time.monotonic() < signalled[0] + GRACE, "the box is too slow for this test's grace"
            assert len(within_grace.read()) == PCM

        time.sleep(max(0.0, signalled[0] + GRACE + 1.0 - time.monotonic()))
        refused = httpx.post(f"{url}/v1/audio/speech", json=pcm, timeout=10)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1", refused.text
        assert refused.json()["error"]["code"] == "shutting_down" and refused.json()["error"]["type"] == "api_error"
        with pytest.raises(InvalidStatus) as denied:
            connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream", open_timeout=10)
        assert denied.value.response.status_code == 503

        for c in clients:
            c.join(60)
        results = {c.name: c.result for c in clients}
        assert results == {
            "pcm": ("complete", PCM),
            "sse": ("complete", PCM),
            "ours": ("done 1000", 0),  # its close came while refusing: its last word spoken, then closed as asked
            "elevenlabs": ("final 1012", PCM),  # quiet once its sentence was spoken: ended (isFinal), then 1012
            "wav": ("complete", PCM + 44),
            "idle socket": ("done 1012", -1),  # (no audio: none generated)  # no context in flight: closed at once after the grace
        }, log.read_text(errors="replace")[-3000:]
        idle = clients[-1]
        assert signalled[0] + GRACE <= idle.ended < signalled[0] + GRACE + 5
        proc.wait(DEADLINE)
    assert slow_fake.active_streams == 0
    text = log.read_text(errors="replace")
    assert "drained in" in text and text.index("drained in") < text.index("service stopped")  # the engine stops after


# -- the closing handshake of a socket drained on SIGTERM -------------------------------------------------


class RawSocket:
    """A WebSocket client on a plain socket (websockets' Sans-I/O protocol): it reads and answers only when told,
    as a client on a busy box or behind a proxy does, so that what the server does meanwhile can be seen."""

    def __init__(self, url: str) -> None:
        uri = parse_uri(url)
        self.protocol = ClientProtocol(uri)
        self.sock = socket.create_connection((uri.host, uri.port), timeout=30)
        self.protocol.send_request(self.protocol.connect())
        self.flush()
        self.events: list = []
        while not any(isinstance(e, Response) for e in self.events):
            self.read(30)
        assert self.events.pop(0).status_code == 101

    def flush(self) -> None:
        self.sock.sendall(b"".join(self.protocol.data_to_send()))

    def send(self, obj: dict) -> None:
        self.protocol.send_text(json.dumps(obj).encode())
        self.flush()

    def read(self, timeout: float) -> bool:
        """What the next `recv` brings, into `events` (answers queued, not sent); False at the end of the stream."""
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 16)
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self.events += self.protocol.events_received()
        return bool(data)


def test_a_drained_socket_is_closed_only_after_its_client_answered_the_close(slow_fake: FakeVLLM, tmp_path: Path) -> None:
    """The server ends a socket with a close frame once its context is spoken. A client that reads late (a busy
    box, a proxy between) has that context's audio still unread then: were the server to close the TCP
    connection before the client's close reply, the client's reply (or its keep-alive ping) would meet a closed
    socket, and the reset that answers it loses what the client had not read yet (seen in the chaos run: the
    client got `segment.started`, then nothing but the close). RFC 6455, 7.1.1: the server closes the TCP
    connection after the closing handshake. So SIGTERM waits for it (bounded by the close timeout)."""
    log = tmp_path / "tts-api.log"
    with tts_api_process(drain_env(slow_fake), cwd=tmp_path, log=log) as (url, proc):
        client = RawSocket(url.replace("http://", "ws://") + "/v1/audio/speech/stream")
        client.send({"type": "config", "response_format": "pcm"})
        client.send({"type": "text", "text": "A reply that its client reads late."})
        client.send({"type": "close"})
        wait_until(lambda: slow_fake.active_streams >= 1, 30, "the context's request at the backend")
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: " done: {" in log.read_text(errors="replace"), 60, "the context spoken")
        time.sleep(3.0)  # the client is slow: the server has sent everything and its close frame by now

        while not any(isinstance(e, Frame) and e.opcode is Opcode.CLOSE for e in client.events):
            assert client.read(10), "the server closed the connection before its close frame"
        with pytest.raises(TimeoutError):  # nothing more: the server waits for the client's reply
            client.read(0.5)
        client.flush()  # the client's close reply (queued by its protocol when the close frame came)
        while client.read(10):
            pass  # the server ends the TCP connection now
        proc.wait(30)

    data = [e for e in client.events if isinstance(e, Frame) and e.opcode in (Opcode.TEXT, Opcode.BINARY)]
    events = [json.loads(bytes(f.data))["type"] for f in data if f.opcode is Opcode.TEXT]
    audio = sum(len(f.data) for f in data if f.opcode is Opcode.BINARY)
    done = json.loads(bytes(next(f.data for f in reversed(data) if f.opcode is Opcode.TEXT)))
    assert events[0] == "session.started" and events[-2:] == ["segment.done", "done"], events
    assert audio == done["usage"]["output_tokens"] * 960 > 0
    assert client.protocol.close_rcvd is not None and client.protocol.close_rcvd.code == 1000
    assert "drained in" in log.read_text(errors="replace")
