"""Test harness: stand-in codec and normalizer, the app on a real loopback port in a thread (or `tts-api` in its own
process), and waits on conditions."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from app.codec.interface import CodecStats, Geometry
from app.main import Components, create_app
from app.settings import Settings

SPT = 480
REPO = Path(__file__).resolve().parents[1]


class LocalCodec:
    """Context-free stand-in codec: each token id maps to its own fixed 480 samples (a short tone).

    With it, a stitched stream must equal the one-shot decode of all tokens exactly.
    """

    geometry = Geometry(24_000, SPT)
    device = "cpu"
    has_encoder = True

    def __init__(self, decode_delay: float = 0.0) -> None:
        self.stats = CodecStats()  # counts nothing
        self.decode_delay = decode_delay
        self.batch_sizes: list[int] = []
        t = np.arange(SPT) / 24000

        def table(ids: np.ndarray) -> np.ndarray:
            freq = 100.0 + (ids.astype(np.float64) % 997) * 3.0
            amp = 0.05 + (ids % 7) * 0.05
            return (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :])).astype(np.float32)

        self._table = table

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        self.batch_sizes.append(len(windows))
        if self.decode_delay:
            time.sleep(self.decode_delay)
        out = []
        for w in windows:
            if len(w) == 0 or w.min() < 0 or w.max() >= 65536:
                raise ValueError("bad window")
            out.append(self._table(np.asarray(w)).reshape(-1))
        return out

    def one_shot(self, tokens: list[int]) -> np.ndarray:
        return self._table(np.asarray(tokens, dtype=np.int64)).reshape(-1)

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        return [(np.abs(c[: len(c) // 320 * 320]).reshape(-1, 320).mean(1) * 1000).astype(np.int64) % 65536 for c in clips]

    @staticmethod
    def resample_to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from scipy.signal import resample_poly

        mono = audio.mean(axis=1) if audio.ndim == 2 else audio
        from math import gcd

        g = gcd(16000, sample_rate)
        return resample_poly(mono, 16000 // g, sample_rate // g).astype(np.float32)


class PassthroughNormalizer:
    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        return " ".join(text.split())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(settings: Settings, components: Components | None = None) -> Iterator[str]:
    """Run the app (lifespan included) on a real loopback port; yields its base URL."""
    with serve_app(settings, components) as (url, _):
        yield url


@contextmanager
def serve_app(
    settings: Settings, components: Components | None = None, *, options: Mapping[str, object] | None = None
) -> Iterator[tuple[str, FastAPI]]:
    """Run the app (lifespan included) on a real loopback port; yields its base URL and the app. `options`: more
    uvicorn options (`app.cli.server_options(settings)`: served exactly as `tts-api` serves it)."""
    port = free_port()
    app = create_app(settings, components)
    config = {**(options or {}), "host": "127.0.0.1", "port": port, "log_level": "warning", "lifespan": "on"}
    server = uvicorn.Server(uvicorn.Config(app, **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while not (server.started and app.state.service is not None):  # models load after the server starts
        if not thread.is_alive() or getattr(app.state, "startup_error", None) is not None:
            raise RuntimeError(f"the app failed to start: {getattr(app.state, 'startup_error', None)!r}")
        if time.monotonic() > deadline:
            raise TimeoutError("the app did not start within 300 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)


@contextmanager
def tts_api_process(
    env: Mapping[str, str],
    *,
    cwd: Path,
    log: Path | None = None,
    ready_timeout: float = 240.0,
    repo: Path = REPO,
    port: int | None = None,
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`tts-api` as users run it (`python -m app.cli`, no env file) in its own process on a free loopback port,
    its environment `env` and PATH, PYTHONPATH (`repo`: this checkout, or another one to compare with), HOST and
    PORT only; yields its URL and the process once `/ready` says 200. At the end: SIGTERM, and (when the body
    did not fail) its exit status checked, 0 or the re-raised SIGTERM uvicorn ends with once drained; killed if
    it has not stopped within 60 s. `log`: its stdout and stderr (the tail is shown if it dies before it is
    ready). `port`: a given one instead of a free one (a restart behind a proxy)."""
    port = port or free_port()
    full = {"PATH": os.environ["PATH"], "PYTHONPATH": str(repo), "HOST": "127.0.0.1", "PORT": str(port), **env}
    out = open(log, "wb") if log is not None else None  # noqa: SIM115  # closed below, after the process
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "--env-file", "/dev/null"], cwd=cwd, env=full,
            stdout=out, stderr=subprocess.STDOUT if out else None,
        )
    finally:
        if out is not None:
            out.close()
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None else ""
            raise AssertionError(f"tts-api exited with {proc.returncode} before it was ready: {tail}")
        try:
            return httpx.get(f"{url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, ready_timeout, "tts-api to be ready")
        yield url, proc
    except BaseException:
        _stop(proc)
        raise
    rc = _stop(proc)
    assert rc in (0, -signal.SIGTERM), f"tts-api exited with {rc} after SIGTERM"


def _stop(proc: subprocess.Popen) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """Poll `predicate` until it is true; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.005)


async def until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """`wait_until` for a coroutine: polls without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.005)
