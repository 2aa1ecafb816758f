"""A busy engine is not a dead one (issue 20): the service over the real engine process, every core busy.

A pause of a few seconds (the engine SIGSTOPped, or the front-end's own event loop blocked) fails nothing: every
request of every kind finishes late with all its audio. Neither does a death (SIGKILL) when the restarted engine
is back within ENGINE_RESTART_WAIT (issue 32): the windows it had are sent to the new one. Past that bound, and
past ENGINE_HANG_TIMEOUT for a hang, the streams caught fail, never with a clean end, and the service comes back.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer, serve_app

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()

pytestmark = pytest.mark.skipif(
    not (CODEC_DIR / "pytorch_model.bin").exists(), reason=f"no tiny codec at {CODEC_DIR} (make models builds it)"
)

N_TOKENS = 200  # per request: 4 s of audio, sent by the fake at 50 tokens/s
PCM_BYTES = N_TOKENS * 480 * 2
HANG_TIMEOUT = 6.0  # the service's ENGINE_HANG_TIMEOUT here (15 s by default)
RESTART_WAIT = 90.0  # the service's ENGINE_RESTART_WAIT here: the tiny codec's engine restarts within it on a loaded box
KINDS = ("pcm", "wav", "sse", "ws")
HOG_SECONDS = 60  # a hog never outlives this, whatever happens to the test


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=N_TOKENS, rate=50.0) as server:
        yield server


@pytest.fixture(scope="module")
def served(fake: FakeVLLM) -> Iterator[tuple[str, FastAPI]]:
    settings = Settings(
        _env_file=None,
        tts_api=fake.url,
        codec_model=str(CODEC_DIR),
        codec_load_encoder=False,
        codec_threads=1,
        backend_read_timeout=30.0,
        first_chunk_seconds=0.2,
        decode_left_context_seconds=0.2,
        engine_hang_timeout=HANG_TIMEOUT,
        engine_restart_wait=RESTART_WAIT,
    )
    with serve_app(settings, Components(normalizer=PassthroughNormalizer())) as served:
        yield served


@pytest.fixture
def hog() -> Iterator[None]:
    """Every core busy for the test (each hog also stops by itself after HOG_SECONDS)."""
    code = f"import time\nend = time.monotonic() + {HOG_SECONDS}\nwhile time.monotonic() < end: pass"
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 2)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/ready", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- one request of each kind; each returns (outcome, bytes of audio), outcome "complete" only for a clean end ----


def speak(url: str, kind: str, started: threading.Event) -> tuple[str, int]:
    if kind == "ws":
        return speak_ws(url, started)
    body: dict = {"input": f"contention {kind} {time.monotonic()}", "voice": "husein", "response_format": "pcm"}
    if kind == "wav":
        body["response_format"] = "wav"
        started.set()  # non-streamed: nothing to see before the end
        try:
            r = httpx.post(f"{url}/v1/audio/speech", json=body, timeout=120)
        except httpx.HTTPError as exc:
            return f"broken: {type(exc).__name__}", 0
        if r.status_code != 200:
            return f"http {r.status_code} {r.json()['error']['code']}", 0
        with wave.open(io.BytesIO(r.content)) as w:
            return "complete", len(w.readframes(N_TOKENS * 480 * 2))  # the header's sizes may be placeholders
    if kind == "sse":
        body["stream_format"] = "sse"
    got, text = 0, b""
    try:
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=120) as r:
            if r.status_code != 200:
                return f"http {r.status_code}", 0
            for piece in r.iter_bytes():
                started.set()
                if kind == "sse":
                    text += piece
                else:
                    got += len(piece)
    except httpx.HTTPError as exc:
        return f"broken: {type(exc).__name__}", got
    if kind == "pcm":
        return "complete", got
    events = [json.loads(line[6:]) for line in text.decode().splitlines() if line.startswith("data: ")]
    audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
    end = events[-1]["type"] if events else "nothing"
    return ("complete" if end == "speech.audio.done" else f"sse {end}"), audio


def speak_ws(url: str, started: threading.Event) -> tuple[str, int]:
    got, last, errors = 0, "nothing", 0
    try:
        with connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "config", "voice": "husein"}))
            ws.send(json.dumps({"type": "text", "text": f"contention websocket {time.monotonic()}"}))
            ws.send(json.dumps({"type": "close"}))
            for message in ws:
                if isinstance(message, bytes):
                    started.set()
                    got += len(message)
                else:
                    last = json.loads(message)["type"]
                    errors += last == "error"  # a failed segment: the session goes on, without its audio
            code = ws.close_code
    except (ConnectionClosed, OSError) as exc:
        return f"broken: {type(exc).__name__}", got
    if errors:
        return "ws error", got
    return ("complete" if last == "done" and code == 1000 else f"ws {last} {code}"), got


def start_streams(url: str, fake: FakeVLLM, pool: ThreadPoolExecutor, per_kind: int = 2) -> list[Future]:
    """`per_kind` requests of every kind, returned once each has audio out (or its tokens flowing)."""
    before = len(fake.requests)
    kinds = [k for k in KINDS for _ in range(per_kind)]
    started = [threading.Event() for _ in kinds]
    futures = [pool.submit(speak, url, kind, ev) for kind, ev in zip(kinds, started, strict=True)]
    wait_until(lambda: all(ev.is_set() for ev in started) and len(fake.requests) - before == len(kinds) and all(
        r.tokens_sent >= 40 for r in fake.requests[before:]), 30, "every request to be mid-stream")
    return futures


def outcomes(futures: list[Future]) -> list[tuple[str, str, int]]:
    kinds = [k for k in KINDS for _ in range(len(futures) // len(KINDS))]
    return [(kind, *f.result(timeout=120)) for kind, f in zip(kinds, futures, strict=True)]


def assert_all_complete(results: list[tuple[str, str, int]]) -> None:
    bad = [(kind, outcome, got) for kind, outcome, got in results if outcome != "complete" or got != PCM_BYTES]
    assert not bad, f"requests that did not finish with all their audio ({PCM_BYTES} bytes each): {bad}"


# -- the cases --------------------------------------------------------------------------------------------------


def test_an_engine_paused_3_s_under_load_fails_nothing(served, fake: FakeVLLM, hog: None) -> None:
    url, app = served
    wait_until(lambda: ready(url), 30, "/ready")
    pid = app.state.engine_host.pid
    with ThreadPoolExecutor(len(KINDS) * 2) as pool:
        futures = start_streams(url, fake, pool)
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(3.0)
        finally:
            os.kill(pid, signal.SIGCONT)
        results = outcomes(futures)
    assert_all_complete(results)
    assert app.state.engine_host.restarts == 0


def test_a_front_end_event_loop_blocked_3_s_under_load_fails_nothing(served, fake: FakeVLLM, hog: None) -> None:
    url, app = served
    wait_until(lambda: ready(url), 30, "/ready")

    async def block() -> dict:  # a handler that blocks its event loop, as a synchronous bug would
        time.sleep(3.0)
        return {}

    if not any(getattr(r, "path", None) == "/test-block-loop" for r in app.router.routes):
        app.router.add_api_route("/test-block-loop", block)
    with ThreadPoolExecutor(len(KINDS) * 2) as pool:
        futures = start_streams(url, fake, pool)
        assert httpx.get(f"{url}/test-block-loop", timeout=30).status_code == 200
        results = outcomes(futures)
    assert_all_complete(results)


def test_an_engine_stopped_past_the_hang_limit_fails_its_streams_and_comes_back(
    served, fake: FakeVLLM, hog: None
) -> None:
    url, app = served
    wait_until(lambda: ready(url), 30, "/ready")
    pid = app.state.engine_host.pid
    with ThreadPoolExecutor(len(KINDS) * 2) as pool:
        futures = start_streams(url, fake, pool, per_kind=1)
        os.kill(pid, signal.SIGSTOP)
        try:
            results = outcomes(futures)  # they fail once the engine is silent for the hang limit
            t0 = time.monotonic()
            r = httpx.post(f"{url}/v1/audio/speech", json={"input": "while hung", "voice": "husein"}, timeout=30)
            assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable", r.text
            assert time.monotonic() - t0 < 2.0  # refused at once
            assert not ready(url)
        finally:
            os.kill(pid, signal.SIGCONT)
    for kind, outcome, _ in results:
        assert outcome != "complete", (kind, outcome)
        assert outcome.startswith(("broken", "http 503", "sse error", "ws error")), (kind, outcome)
    wait_until(lambda: ready(url), 10, "/ready after SIGCONT")
    r = httpx.post(f"{url}/v1/audio/speech", json={"input": "after", "response_format": "pcm"}, timeout=60)
    assert r.status_code == 200 and len(r.content) == PCM_BYTES
    assert app.state.engine_host.restarts == 0  # it came back by itself


def test_a_killed_engine_back_within_the_bound_fails_nothing(served, fake: FakeVLLM, hog: None) -> None:
    url, app = served
    wait_until(lambda: ready(url), 30, "/ready")
    host = app.state.engine_host
    first_pid, restarts = host.pid, host.restarts
    with ThreadPoolExecutor(len(KINDS) * 2) as pool:
        futures = start_streams(url, fake, pool)
        os.kill(first_pid, signal.SIGKILL)
        t_kill = time.monotonic()
        wait_until(lambda: ready(url), RESTART_WAIT, "the restarted engine")
        print(f"engine back {time.monotonic() - t_kill:.2f} s after its SIGKILL")
        results = outcomes(futures)
    assert_all_complete(results)
    assert host.pid != first_pid and host.restarts == restarts + 1


def test_a_killed_engine_not_back_within_the_bound_fails_its_streams_and_is_restarted(
    served, fake: FakeVLLM, hog: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, app = served
    wait_until(lambda: ready(url), 30, "/ready")
    monkeypatch.setattr(app.state.service.engine, "restart_wait", 0.2)  # no engine restarts this fast
    host = app.state.engine_host
    first_pid, restarts = host.pid, host.restarts
    with ThreadPoolExecutor(len(KINDS) * 2) as pool:
        futures = start_streams(url, fake, pool, per_kind=1)
        os.kill(first_pid, signal.SIGKILL)
        t_kill = time.monotonic()
        results = outcomes(futures)
        failed_after = time.monotonic() - t_kill
    for kind, outcome, _ in results:
        assert outcome.startswith(("broken", "http 503", "sse error", "ws error")), (kind, outcome)
    assert failed_after < HANG_TIMEOUT / 2, f"streams took {failed_after:.1f} s to fail: death is seen at once"
    wait_until(lambda: ready(url), 60, "/ready after the restart")
    r = httpx.post(f"{url}/v1/audio/speech", json={"input": "after", "response_format": "pcm"}, timeout=60)
    assert r.status_code == 200 and len(r.content) == PCM_BYTES
    assert host.pid != first_pid and host.restarts == restarts + 1
