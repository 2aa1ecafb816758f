"""Backend failover with two real dev vLLMs in `TTS_API` (issue 32's acceptance): one is SIGKILLed while streams
of every kind run on both; every stream completes, with 480 samples for every speech token it received.

Two vLLMs of its own (ports 9301 and 9302, started at once, `--enforce-eager`: no compile warm-up), each stream
capped at `MAX_TOKENS`, so the test stays short. The tokens each generation delivered are recorded where the
synthesis reads them (the pool's stream, resends included), and each stream's audio is checked against them.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import threading
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.test_service import codec_dir, service_settings  # noqa: F401 (a fixture)
from tools import vllm_server as dev
from tools.harness import serve_app

PORTS = (9301, 9302)
MAX_TOKENS = 500  # 10 s of audio per stream: long enough that every stream is running on a busy box when the kill comes
KINDS = ("pcm", "wav", "sse", "ws", "elevenlabs")


@pytest.fixture(scope="module")
def two_vllms() -> Iterator[list[dev.Backend]]:
    with ThreadPoolExecutor(len(PORTS)) as pool:
        backends = list(pool.map(lambda port: dev.start(port=port, extra_args=("--enforce-eager",)), PORTS))
    try:
        yield backends
    finally:
        for port in PORTS:
            dev.stop(port)


def samples(kind: str, url: str, n: int, started: threading.Event) -> tuple[str, int]:
    """One stream of `kind`: ("complete" only for a clean end, samples of audio at 24 kHz)."""
    text = f"failover stream {n} of kind {kind}"
    if kind in ("ws", "elevenlabs"):
        return ws_samples(kind, url, text, started)
    body: dict = {"input": text, "voice": "husein", "response_format": "pcm", "stream": kind != "wav"}
    if kind == "wav":
        body["response_format"] = "wav"
        started.set()
        r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
        if r.status_code != 200:
            return f"http {r.status_code}", 0
        with wave.open(io.BytesIO(r.content)) as w:
            return "complete", len(w.readframes(1 << 30)) // 2
    if kind == "sse":
        body["stream_format"] = "sse"
    got = b""
    try:
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=120) as r:
            for piece in r.iter_bytes():
                started.set()
                got += piece
    except httpx.HTTPError as exc:
        return f"broken: {type(exc).__name__}", 0
    if kind == "pcm":
        return "complete", len(got) // 2
    events = [json.loads(line[6:]) for line in got.decode().splitlines() if line.startswith("data: ")]
    audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
    return ("complete" if events and events[-1]["type"] == "speech.audio.done" else "sse broken"), audio // 2


def ws_samples(kind: str, url: str, text: str, started: threading.Event) -> tuple[str, int]:
    base = url.replace("http://", "ws://")
    audio = 0
    if kind == "ws":
        with connect(f"{base}/v1/audio/speech/stream", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "config", "voice": "husein", "response_format": "pcm"}))
            ws.send(json.dumps({"type": "text", "text": text}))
            ws.send(json.dumps({"type": "close"}))
            events = []
            for message in ws:
                if isinstance(message, bytes):
                    started.set()
                    audio += len(message)
                else:
                    events.append(json.loads(message)["type"])
        return ("complete" if events[-1:] == ["done"] and "error" not in events else f"ws {events}"), audio // 2
    query = "model_id=eleven_turbo_v2_5&output_format=pcm_24000"
    with connect(f"{base}/v1/text-to-speech/husein/multi-stream-input?{query}", open_timeout=30) as ws:
        ws.send(json.dumps({"text": " ", "context_id": "c1"}))
        ws.send(json.dumps({"text": text, "context_id": "c1", "flush": True}))
        ws.send(json.dumps({"close_socket": True}))
        replies = []
        for message in ws:
            reply = json.loads(message)
            replies.append(reply)
            if reply.get("audio"):
                started.set()
                audio += len(base64.b64decode(reply["audio"]))
    errors = [r for r in replies if "error" in r]
    return ("complete" if not errors else f"elevenlabs {errors}"), audio // 2


def test_a_vllm_killed_mid_stream_under_load_loses_no_stream(two_vllms: list[dev.Backend], codec_dir: Path) -> None:  # noqa: F811
    settings = service_settings(
        ",".join(b.url for b in two_vllms), codec_dir, default_max_tokens=MAX_TOKENS, backend_health_interval=0.5,
        codec_load_encoder=False,  # no voice cloning here: the engine starts sooner
    )
    with serve_app(settings) as (url, app):
        pool = app.state.service.backend
        generations: dict[str, list[int]] = {}  # request id -> the speech tokens the synthesis read
        arrivals: dict[str, list[float]] = {}  # request id -> when each batch of them came
        original = pool.stream_speech_tokens

        async def recorded(prompt, params, stats=None, *, request_id=None):
            tokens, times = generations.setdefault(request_id, []), arrivals.setdefault(request_id, [])
            async for ids in original(prompt, params, stats, request_id=request_id):
                tokens.extend(ids)
                times.append(time.monotonic())
                yield ids

        pool.stream_speech_tokens = recorded
        kinds = [k for k in KINDS for _ in range(2)]
        kinds_run: list[str] = []
        results: list[tuple[str, int]] = []
        deadline = time.monotonic() + 150
        with ThreadPoolExecutor(len(kinds)) as ex:
            while True:  # a round of streams of every kind; another when one ended before both backends ran at once
                started = [threading.Event() for _ in kinds]
                futures = [ex.submit(samples, k, url, len(kinds_run) + n, ev)
                           for n, (k, ev) in enumerate(zip(kinds, started, strict=True))]  # fmt: skip
                kinds_run += kinds
                # the kill comes once both backends are generating (the tiny random model ends some streams early,
                # so not every stream need be running then: those that start later run on the backend left; where
                # it ended all of a round's before both ran at once, the round is checked and another one starts)
                while not (sum(ev.is_set() for ev in started) >= len(kinds) // 2 and all(m.streams for m in pool.members)):
                    if all(f.done() for f in futures):
                        break
                    assert time.monotonic() < deadline, (
                        "streams did not run on both backends at once: "
                        f"started {[k for k, ev in zip(kinds, started, strict=True) if ev.is_set()]}, "
                        f"per backend {[(m.url, m.streams) for m in pool.members]}"
                    )
                    time.sleep(0.005)
                else:
                    break
                results += [f.result() for f in futures]
            victim = max(pool.members, key=lambda m: m.streams)
            streams_cut = victim.streams
            backend = next(b for b in two_vllms if b.url == victim.url)
            os.killpg(backend.pid or dev.status(int(victim.url.rsplit(":", 1)[1]))["pid"], signal.SIGKILL)
            t_kill = time.monotonic()
            results += [f.result(timeout=120) for f in futures]
        pauses = sorted(next(t for t in ts if t > t_kill) - max(t for t in ts if t <= t_kill)
                        for ts in arrivals.values() if ts[0] <= t_kill < ts[-1])  # fmt: skip
        print(f"\n{streams_cut} streams cut; the pause across the kill, per stream open then: "
              + ", ".join(f"{p * 1e3:.0f} ms" for p in pauses))
        broken = [(k, r) for k, r in zip(kinds_run, results, strict=True) if r[0] != "complete"]
        assert not broken, f"streams that did not complete: {broken}"
        got = sorted(n for _, n in results)
        expected = sorted(480 * len(tokens) for tokens in generations.values())
        assert got == expected, "every stream: 480 samples per speech token it received"
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        resent = sum(float(line.split()[-1]) for line in metrics.splitlines()
                     if line.startswith('tts_backend_failovers_total{outcome="resent"}'))  # fmt: skip
        assert streams_cut >= 1 and resent >= 1
        assert pool.live == [m.url for m in pool.members if m is not victim]
