"""Two fake vLLMs in `TTS_API`, streams that break mid-way on every path: each one goes on on the other backend
with exactly the speech tokens it had received, and the client gets all its audio, 480 samples per token.

Each fake breaks its first stream after `AFTER` tokens, so a stream breaks on one backend, resumes on the other,
breaks there too and ends on the first: two resends. The fakes check each resumed prompt themselves (a wrong
carried token is a 400, which is never resent) and the tests check the records' chain.
"""

from __future__ import annotations

import base64
import io
import json
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import soundfile as sf
import websockets

from app.main import Components
from app.prompts import speech_prompt
from app.settings import Settings
from tests.faults.conftest import TEXT, assert_nothing_leaked, speech
from tests.faults.test_backend_faults import received_pcm
from tools.fake_vllm import FakeVLLM, expected_tokens, split_resumed
from tools.harness import LocalCodec, PassthroughNormalizer, serve

N = 120  # speech tokens per segment
AFTER = 40  # tokens a fake sends before its first stream breaks
PCM_PER_TOKEN = 480 * 2
LONG = " ".join(f"Sentence number {i} of a longer text, spoken in several segments one after another." for i in range(5))


@pytest.fixture
def fakes() -> Iterator[tuple[FakeVLLM, FakeVLLM]]:
    with FakeVLLM(n_tokens=N) as a, FakeVLLM(n_tokens=N) as b:
        yield a, b


@pytest.fixture
def two_backends(fakes: tuple[FakeVLLM, FakeVLLM]) -> Callable[..., object]:
    """`with two_backends(mode, **settings) as url:` the app with both fakes in TTS_API, each breaking its first
    stream with `mode` (early_close, die, stall, error_event; None: no break)."""

    @contextmanager
    def run(mode: str | None = "early_close", **overrides: object) -> Iterator[str]:
        for f in fakes[:1] if mode == "die" else fakes:  # the first backend gets the first request
            if mode is not None:
                f.set_mode(mode, count=1, after=AFTER)
        values: dict = {
            "tts_api": ",".join(f.url for f in fakes),
            "backend_read_timeout": 5.0,
            "backend_stall_timeout": 0.5,
            "backend_health_interval": 0.2,
            "default_playback_speed": 0.5,
            "default_playback_overlap_speed": 0.1,
            "first_chunk_seconds": 0.2,
            "decode_left_context_seconds": 0.2,
            "voice_store_url": "sqlite://",
        } | overrides
        parts = Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())
        with serve(Settings(_env_file=None, **values), parts) as url:
            yield url
            for f in fakes:
                if f.alive:
                    assert_nothing_leaked(url, f)

    return run


def assert_resumed_exactly(fakes: tuple[FakeVLLM, ...], breaks: int) -> int:
    """Every resumed request carried exactly the tokens sent before it for its generation, and the last one ended
    it with every token; `breaks` resumed requests in all. Returns the number of generations (segments)."""
    chains: list[tuple[list[int], list[int]]] = []  # (the generation's tokens, the tokens sent so far)
    last: dict[tuple[str, object], tuple[list[int], list[int]]] = {}
    resumed = 0
    for rec in sorted((r for f in fakes for r in f.requests), key=lambda r: r.start):
        first_prompt, _ = split_resumed(rec.prompt)
        key = (first_prompt, rec.body.get("seed"))
        if not rec.resumed:  # a new generation (these breaks all come after the first token)
            last[key] = (expected_tokens(first_prompt, N, request_seed=key[1]), [])
            chains.append(last[key])
        sequence, sent = last[key]
        assert rec.resumed == sent, "a resumed prompt must carry exactly the tokens sent before it"
        resumed += bool(rec.resumed)
        sent[:] = sequence[: len(sent) + rec.tokens_sent]
    assert all(len(sent) == N for _, sent in chains)  # every generation ended with all its tokens
    assert resumed == breaks, f"{resumed} resumed requests, expected {breaks}"
    return len(chains)


def metric(url: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(f"{name}{{{want}}}"))


# -- HTTP ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["early_close", "die", "stall", "error_event"])
def test_a_streamed_response_has_every_sample_after_two_breaks(two_backends, fakes, mode: str) -> None:
    with two_backends(mode) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm"), timeout=30)
        assert resp.status_code == 200
        breaks = 1 if mode == "die" else 2  # a dead fake stays dead: the stream ends on the other one
        assert assert_resumed_exactly(fakes, breaks) == 1
        full = fakes[0].expected_tokens(speech_prompt("husein", " ".join(TEXT.split())))
        assert resp.content == received_pcm(fakes[0], len(full)) and len(resp.content) == N * PCM_PER_TOKEN
        assert metric(url, "tts_backend_failovers_total", outcome="resent") == breaks


def test_a_complete_response_and_sse_have_every_sample(two_backends, fakes) -> None:
    with two_backends() as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="wav", stream=False), timeout=30)
        with wave.open(io.BytesIO(resp.content)) as w:
            assert resp.status_code == 200 and w.getnframes() == N * 480
        for f in fakes:
            f.set_mode("early_close", count=1, after=AFTER)
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm", stream_format="sse"), timeout=30)
        events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "speech.audio.done", events[-1]
        audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
        assert len(audio) == N * PCM_PER_TOKEN
        assert assert_resumed_exactly(fakes, 4) == 2


def test_a_long_text_has_every_sample_of_every_segment(two_backends, fakes) -> None:
    with two_backends() as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(input=LONG, response_format="pcm"), timeout=60)
        assert resp.status_code == 200
        segments = assert_resumed_exactly(fakes, 2)
        assert segments >= 3 and len(resp.content) == segments * N * PCM_PER_TOKEN


def wav_clip(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t), rate, format="WAV")
    return buf.getvalue()


async def test_cloned_and_saved_voices_over_http_and_both_websockets(two_backends, fakes) -> None:
    with two_backends() as url:
        data = {"reference_text": "Saya suka makan nasi lemak.", "generate_text": TEXT, "response_format": "pcm"}
        resp = httpx.post(f"{url}/v1/audio/vc", data=data, files={"reference_audio": ("c.wav", wav_clip())}, timeout=30)
        assert resp.status_code == 200 and len(resp.content) == N * PCM_PER_TOKEN
        assert assert_resumed_exactly(fakes, 2) == 1

        saved = {"name": "agent", "text": "Saya suka makan nasi lemak.", "consent": "true", "consent_by": "Aminah"}
        r = httpx.post(f"{url}/v1/audio/voices", data=saved, files={"audio": ("c.wav", wav_clip())}, timeout=30)
        assert r.status_code == 201, r.text
        for f in fakes:
            f.reset()
            f.set_mode("early_close", count=1, after=AFTER)
        audio = await our_websocket(url, "agent")
        assert len(audio) == assert_resumed_exactly(fakes, 2) * N * PCM_PER_TOKEN
        for f in fakes:
            f.reset()
            f.set_mode("early_close", count=1, after=AFTER)
        audio = await elevenlabs_websocket(url, "agent")
        assert len(audio) == assert_resumed_exactly(fakes, 2) * N * PCM_PER_TOKEN


# -- WebSockets -------------------------------------------------------------------------------------------


async def our_websocket(url: str, voice: str, text: str = TEXT) -> bytes:
    async with websockets.connect(f"{url.replace('http://', 'ws://')}/v1/audio/speech/stream") as ws:
        await ws.send(json.dumps({"type": "config", "voice": voice, "response_format": "pcm"}))
        await ws.send(json.dumps({"type": "text", "text": text}))
        await ws.send(json.dumps({"type": "close"}))
        messages = [m async for m in ws]
    events = [json.loads(m)["type"] for m in messages if isinstance(m, str)]
    assert events[-1] == "done" and "error" not in events, events
    return b"".join(m for m in messages if isinstance(m, bytes))


async def elevenlabs_websocket(url: str, voice: str, text: str = TEXT) -> bytes:
    query = "model_id=eleven_turbo_v2_5&output_format=pcm_24000"
    eleven = f"{url.replace('http://', 'ws://')}/v1/text-to-speech/{voice}/multi-stream-input?{query}"
    async with websockets.connect(eleven, additional_headers={"xi-api-key": "k"}) as ws:
        await ws.send(json.dumps({"text": " ", "context_id": "c1"}))
        await ws.send(json.dumps({"text": text, "context_id": "c1", "flush": True}))
        await ws.send(json.dumps({"close_socket": True}))
        replies = [json.loads(m) async for m in ws]
    assert not [r for r in replies if "error" in r], replies
    return b"".join(base64.b64decode(r["audio"]) for r in replies if r.get("audio"))


async def test_both_websockets_with_a_long_text_have_every_sample(two_backends, fakes) -> None:
    with two_backends() as url:
        audio = await our_websocket(url, "husein", LONG)
        segments = assert_resumed_exactly(fakes, 2)
        assert segments >= 3 and len(audio) == segments * N * PCM_PER_TOKEN
        for f in fakes:
            f.reset()
            f.set_mode("early_close", count=1, after=AFTER)
        audio = await elevenlabs_websocket(url, "jenny", LONG)
        segments = assert_resumed_exactly(fakes, 2)
        assert segments >= 3 and len(audio) == segments * N * PCM_PER_TOKEN


def test_a_list_with_a_backend_that_is_down_starts_ready_and_serves_every_request(fakes) -> None:
    """The issue's `TTS_API=http://a:9395,http://b:9396` with a down: it starts, /ready is 200 while one backend
    answers, and the start-up check took the down one out of rotation: no request waits on it."""
    down = "http://127.0.0.1:9309"  # nothing listens there
    settings = Settings(_env_file=None, tts_api=f"{down},{fakes[0].url}", backend_health_interval=60)
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
        for _ in range(3):
            resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm"), timeout=30)
            assert resp.status_code == 200 and len(resp.content) == N * PCM_PER_TOKEN
        assert len(fakes[0].requests) == 3 and not any(r.resumed for r in fakes[0].requests)
        assert metric(url, "tts_backend_failovers_total", outcome="resent") == 0
