"""The codec engine process: start-up handshake, supervision, restart, and its `main`.

`EngineProcess` (in `tts-api`'s parent process, or in the lifespan of a single-process server) spawns
`engine_main` in a fresh interpreter (spawn: no forked CUDA or torch state), waits for it to say it is ready (or
why it failed: the error is re-raised, never a silent hang), and watches it. When the engine dies it is restarted
at once; front-ends see their connection to it close, fail their in-flight jobs with 503 and report not ready
until the new engine answers. More than `max_restarts` deaths within `restart_window` seconds, or a restart that fails,
call `on_fatal` (tts-api then exits 1, so the orchestrator restarts the whole pod).

The engine exits by itself when its parent goes away (it watches its end of the handshake pipe).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from app.codec.interface import Codec
from app.settings import EngineSettings

logger = logging.getLogger(__name__)


class EngineStartError(RuntimeError):
    """The engine process failed to start (its error, or its exit code)."""


def new_endpoint() -> str:
    """A fresh IPC endpoint in a private temporary directory."""
    return f"ipc://{tempfile.mkdtemp(prefix='tts-engine-')}/engine.sock"


def cap_gpu_memory(device: str, vllm_share: float | None) -> float | None:
    """On a GPU shared with vLLM (the serving unit, compose; GPU_MEM_UTIL its share): keep this process's CUDA
    memory (PyTorch's allocator) to the rest, so that its batches never take what vLLM counts on and vLLM's start
    finds its share free whichever starts first. Returns the fraction set; None (nothing done) on a CPU or
    without GPU_MEM_UTIL. Only runs on a GPU: not exercised by the CPU test suite."""
    if vllm_share is None or not device.startswith("cuda"):
        return None
    import torch

    fraction = round(1.0 - vllm_share, 4)
    torch.cuda.set_per_process_memory_fraction(fraction, torch.device(device))
    logger.info("codec engine: CUDA memory capped at %.0f %% of %s (vLLM has GPU_MEM_UTIL=%s)", fraction * 100,
                device, vllm_share)
    return fraction


def load_codec(settings: EngineSettings) -> Codec:
    from app.codec.runtime import CodecRuntime

    cap_gpu_memory(settings.device, settings.gpu_mem_util)
    codec = CodecRuntime.from_settings(settings)
    codec.warmup()
    return codec


def load_aligner(settings: EngineSettings, device: str) -> Any:
    """The forced aligner of ALIGNER_MODEL on the codec's device (`app.align.model.CTCAligner`); None when off."""
    if not settings.aligner_model:
        return None
    from app.align.model import CTCAligner

    return CTCAligner.from_pretrained(settings.aligner_model, device=device)


def engine_main(settings: EngineSettings, log_level: str, endpoint: str, conn: Connection) -> None:
    """Entry point of the engine process."""
    from app.engine.core import EngineCore
    from app.engine.threads import run_on_fresh_thread
    from app.observability.heap import freeze_startup_heap, thaw_heap
    from app.observability.logs import configure_logging
    from app.observability.metrics import in_memory_values

    in_memory_values()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C: the parent decides when we stop
    configure_logging(log_level)
    try:
        # loaded and warmed up on a thread that ends: only the decode thread keeps an OpenMP team (threads.py)
        codec = run_on_fresh_thread(load_codec, settings, name="codec-load")
        aligner = run_on_fresh_thread(load_aligner, settings, codec.device, name="aligner-load")
        core = EngineCore.from_settings(codec, endpoint, settings, aligner=aligner)
        core.bind()
        freeze_startup_heap("codec engine")  # no full collection stalls the decode thread on the model's objects
    except BaseException:
        conn.send(("failed", traceback.format_exc()))
        raise SystemExit(1) from None
    signal.signal(signal.SIGTERM, lambda *_: core.stop(timeout=0))
    conn.send(("ready", {"pid": os.getpid(), "device": codec.device, "epoch": core.epoch}))
    logger.info("codec engine %s serving on %s (pid %d)", core.epoch, endpoint, os.getpid())
    core.serve(watch_fd=conn.fileno())
    thaw_heap()  # the interpreter's last collection frees the frozen objects too (extension types check at exit)
    logger.info("codec engine stopped")


class EngineProcess:
    """Spawns and supervises the engine process."""

    def __init__(
        self,
        settings: EngineSettings,
        endpoint: str | None = None,
        *,
        log_level: str = "info",
        on_fatal: Callable[[], None] | None = None,
        restart_window: float = 300.0,
    ) -> None:
        self.settings = settings
        self.log_level = log_level
        self.endpoint = endpoint or new_endpoint()
        self.on_fatal = on_fatal
        self.max_restarts = settings.max_restarts
        self.restart_window = restart_window
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self._stopping = threading.Event()
        self._deaths: deque[float] = deque()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Start the engine and wait until it serves (EngineStartError otherwise); then supervise it."""
        self._spawn()
        self._watcher = threading.Thread(target=self._watch, name="engine-supervisor", daemon=True)
        self._watcher.start()

    def _spawn(self) -> None:
        timeout = self.settings.start_timeout
        parent, child = self._ctx.Pipe(duplex=False)
        args = (self.settings, self.log_level, self.endpoint, child)
        proc = self._ctx.Process(target=engine_main, args=args, name="tts-engine")
        proc.start()
        child.close()
        deadline = time.monotonic() + timeout
        try:
            while not parent.poll(0.2):
                if not proc.is_alive():
                    raise EngineStartError(f"the codec engine exited with code {proc.exitcode} while starting")
                if time.monotonic() > deadline:
                    proc.kill()
                    raise EngineStartError(f"the codec engine did not start within {timeout:g} s")
            try:
                status, detail = parent.recv()
            except EOFError:
                proc.join(5)
                raise EngineStartError(f"the codec engine exited with code {proc.exitcode} while starting") from None
            if status != "ready":
                proc.join(10)
                raise EngineStartError(f"the codec engine failed to start:\n{detail}")
        except BaseException:
            parent.close()
            raise
        self._proc, self._conn = proc, parent
        logger.info("codec engine process %d ready on %s (%s)", proc.pid, detail["device"], self.endpoint)

    def _watch(self) -> None:
        while not self._stopping.is_set():
            proc = self._proc
            proc.join()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            self._deaths.append(now)
            while self._deaths and now - self._deaths[0] > self.restart_window:
                self._deaths.popleft()
            logger.error("codec engine process %d died (exit code %s)", proc.pid, proc.exitcode)
            if self._conn is not None:
                self._conn.close()
            if len(self._deaths) > self.max_restarts:
                logger.critical("codec engine died %d times in %.0f s; giving up", len(self._deaths),
                                self.restart_window)
                self._fatal()
                return
            try:
                self._spawn()
                self.restarts += 1
            except EngineStartError:
                logger.exception("codec engine restart failed")
                self._fatal()
                return

    def _fatal(self) -> None:
        if self.on_fatal is not None:
            self.on_fatal()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the engine (SIGTERM, then SIGKILL after `timeout`)."""
        self._stopping.set()
        proc = self._proc
        # one thread reaps the child: the supervisor, blocked in its join, when it runs (two joins race on
        # waitpid, and the loser sees a live process that has already gone)
        watcher = self._watcher
        if watcher is threading.current_thread() or (watcher is not None and not watcher.is_alive()):
            watcher = None
        if proc is not None and proc.is_alive():
            proc.terminate()
            if not _wait_exit(proc, watcher, timeout):
                logger.warning("codec engine did not stop in %.0f s; killing it", timeout)
                proc.kill()
                _wait_exit(proc, watcher, 5)
        if self._conn is not None:
            self._conn.close()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout)
        if self.endpoint.startswith("ipc://"):
            path = self.endpoint.removeprefix("ipc://")
            with contextlib.suppress(OSError):
                os.remove(path)
                os.rmdir(os.path.dirname(path))


def _wait_exit(proc: Any, watcher: threading.Thread | None, timeout: float) -> bool:
    """Whether the engine process has exited within `timeout`, waiting through its supervisor when it runs."""
    if watcher is not None:
        watcher.join(timeout)
        return not watcher.is_alive()
    proc.join(timeout)
    return proc.exitcode is not None
