"""The codec engine in its own process: the service over it, its death mid-stream, its restart, API_WORKERS."""

from __future__ import annotations

import gc
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer, serve_app, tts_api_process, wait_until

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()

pytestmark = pytest.mark.skipif(
    not (CODEC_DIR / "pytorch_model.bin").exists(), reason=f"no tiny codec at {CODEC_DIR} (make models builds it)"
)


def engine_settings(settings_for: Callable[..., Settings], **extra: object) -> Settings:
    return settings_for(codec_model=str(CODEC_DIR), codec_load_encoder=False, codec_threads=1, **extra)


def test_service_decodes_in_the_engine_process(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    with serve_app(engine_settings(settings_for), Components(normalizer=PassthroughNormalizer())) as (url, app):
        host = app.state.engine_host
        assert host.pid is not None and host.pid != os.getpid()
        r = httpx.post(f"{url}/v1/audio/speech", json={"input": "hello there", "response_format": "pcm"}, timeout=60)
        assert r.status_code == 200
        assert len(r.content) == 120 * 480 * 2  # every token of the fake's 120, decoded in the other process
        assert host.restarts == 0


def test_the_start_up_heap_is_frozen_while_serving(
    settings_for: Callable[..., Settings], fake: FakeVLLM, capfd: pytest.CaptureFixture[str]
) -> None:
    """No full garbage collection walks what start-up loaded (a 450 ms stall of every request on the loop with
    the normalizer loaded): the front-end and the engine freeze their start-up heaps (app/observability/heap.py)
    and the front-end gives its objects back to the collector when it stops."""
    with serve_app(engine_settings(settings_for, log_level="info"), Components(normalizer=PassthroughNormalizer())) as (url, _):
        frozen = gc.get_freeze_count()
        r = httpx.post(f"{url}/v1/audio/speech", json={"input": "hello there", "response_format": "pcm"}, timeout=60)
        assert r.status_code == 200 and len(r.content) == 120 * 480 * 2
    assert frozen > 10_000  # torch, numpy, the app: all of them
    assert gc.get_freeze_count() == 0
    engine_says = re.findall(r"codec engine: (\d+) start-up objects frozen", capfd.readouterr().err)
    assert len(engine_says) == 1 and int(engine_says[0]) > 10_000


def decode_jobs(url: str) -> float:
    text = httpx.get(f"{url}/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("tts_codec_jobs_total") and 'kind="decode"' in line)


def test_engine_killed_mid_stream(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    """Without a wait for the restarted engine (ENGINE_RESTART_WAIT=0), every stream ends with an error (never a
    clean end), new requests get 503 until the engine is back (tests/faults/test_contention.py: with the wait)."""
    fake.n_tokens = 400
    fake.rate = 100.0  # 4 s per stream
    settings = engine_settings(settings_for, backend_read_timeout=10.0, engine_restart_wait=0)
    with serve_app(settings, Components(normalizer=PassthroughNormalizer())) as (url, app):
        host = app.state.engine_host
        first_pid = host.pid

        def stream(fmt: str, sse: bool) -> tuple[str, int]:
            body = {"input": f"kill test {fmt} {sse}", "response_format": fmt}
            if sse:
                body["stream_format"] = "sse"
            got = 0
            try:
                with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=30) as r:
                    if r.status_code != 200:
                        return f"http {r.status_code}", got
                    text = b""
                    for piece in r.iter_bytes():
                        got += len(piece)
                        text += piece if sse else b""
                    if sse:
                        return ("sse error" if b'"type":"error"' in text else "sse clean end"), got
                    return "clean end", got
            except httpx.HTTPError as exc:
                return f"broken: {type(exc).__name__}", got

        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(stream, fmt, sse) for fmt, sse in (("pcm", False), ("wav", False), ("pcm", True))]
            wait_until(lambda: sum(r.active for r in fake.requests) == 3 and all(
                r.tokens_sent > 60 for r in fake.requests if r.active), 20, "three streams with audio out")
            os.kill(first_pid, signal.SIGKILL)
            t_kill = time.monotonic()
            results = [f.result(timeout=30) for f in futures]
        assert time.monotonic() - t_kill < 15, "a stream hung after the engine died"
        for outcome, got in results:
            assert got > 0, outcome  # audio had been flowing
            assert outcome in ("sse error",) or outcome.startswith("broken"), outcome

        # until the new engine answers, new requests are refused with 503; then they succeed again
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            r = httpx.post(f"{url}/v1/audio/speech", json={"input": "after", "response_format": "pcm"}, timeout=60)
            if r.status_code == 200:
                break
            assert r.status_code == 503 and r.json()["error"]["code"] in ("engine_unavailable", "not_ready"), r.text
            time.sleep(0.1)
        assert r.status_code == 200 and len(r.content) == 400 * 480 * 2
        assert host.pid != first_pid and host.restarts == 1
        assert httpx.get(f"{url}/ready", timeout=10).status_code == 200
        # nothing left behind: every backend request closed, nothing in flight
        wait_until(lambda: not any(r.active for r in fake.requests), 10, "backend requests to close")


def test_a_hung_engine_is_unavailable_until_it_answers_again(
    settings_for: Callable[..., Settings], fake: FakeVLLM
) -> None:
    """An engine that stops answering (SIGSTOP: no heartbeats) makes requests 503 at once and /ready 503."""
    with serve_app(engine_settings(settings_for), Components(normalizer=PassthroughNormalizer())) as (url, app):
        host = app.state.engine_host
        os.kill(host.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 503, 10, "/ready to say 503")
            t0 = time.monotonic()
            r = httpx.post(f"{url}/v1/audio/speech", json={"input": "while hung"}, timeout=30)
            assert r.status_code == 503 and r.json()["error"]["code"] == "engine_unavailable", r.text
            assert time.monotonic() - t0 < 10  # refused at once, not after the 30 s codec timeout
        finally:
            os.kill(host.pid, signal.SIGCONT)
        wait_until(lambda: httpx.get(f"{url}/ready", timeout=10).status_code == 200, 10, "/ready to say 200 again")
        r = httpx.post(f"{url}/v1/audio/speech", json={"input": "after", "response_format": "pcm"}, timeout=60)
        assert r.status_code == 200 and len(r.content) == 120 * 480 * 2
        assert host.restarts == 0  # it came back by itself: nothing was restarted


def test_api_workers_share_one_engine(tmp_path: Path, fake: FakeVLLM) -> None:
    """`tts-api` with API_WORKERS=2: two front-end processes, one engine process, both serve."""
    env = {
        "TTS_API": fake.url,
        "API_WORKERS": "2",
        "CODEC_MODEL": str(CODEC_DIR),
        "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": "1",
        "DYNAMIC_BATCHING": "true",
        "LOG_LEVEL": "warning",
        "SHUTDOWN_GRACE_SECONDS": "5",
    }
    with tts_api_process(env, cwd=tmp_path) as (url, proc):
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) >= 3, children  # the engine and two front-ends (uvicorn may add its own helper)

        def speak(i: int) -> int:
            r = httpx.post(f"{url}/v1/audio/speech", json={"input": f"worker {i}"}, timeout=60)
            return len(r.content) if r.status_code == 200 else -r.status_code

        with ThreadPoolExecutor(8) as pool:
            sizes = list(pool.map(speak, range(16)))
        assert sizes == [120 * 480 * 2] * 16
        # the engine's counters, whichever front-end answers: all 16 requests' windows went through one engine
        wait_until(lambda: decode_jobs(url) >= 16 * 2, 10, "the engine's counters")
