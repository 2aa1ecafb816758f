"""`EngineClient`: a front-end's handle on the codec engine (asyncio, one ZMQ DEALER socket).

`await decode(tokens)` / `await encode(clip)` send a job and await its result; cancelling the awaiting task
tells the engine to drop the job. The engine's heartbeats say it is alive and healthy; when none has come for
`heartbeat_timeout` seconds the engine is taken for dead: every waiting job fails at once (`EngineUnavailable`,
a 503 to clients), `alive` turns False (so `/ready` is 503), and new jobs are refused until heartbeats
come back (a restarted engine binds the same endpoint; ZMQ reconnects by itself).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from contextlib import suppress

import numpy as np
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry

from app.codec.interface import TOKEN_DTYPE, Geometry
from app.engine import messages as m
from app.engine.errors import CodecFailed, EngineStopping, EngineUnavailable, InvalidInput, JobTimedOut
from app.engine.messages import ErrorKind, JobKind
from app.observability.metrics import SnapshotCollector

logger = logging.getLogger(__name__)

HELLO_INTERVAL = 1.0


class EngineClient:
    def __init__(self, endpoint: str, *, heartbeat_timeout: float = 2.0, job_timeout: float | None = None) -> None:
        self.endpoint = endpoint
        self.heartbeat_timeout = heartbeat_timeout
        self.job_timeout = job_timeout
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._tasks: list[asyncio.Task] = []
        self._beat: m.Heartbeat | None = None
        self._last_heard = 0.0
        self._alive = False
        self._first_beat = asyncio.Event()
        self._beat_event = asyncio.Event()
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        self.metrics_registry.register(SnapshotCollector(lambda: self._beat.metrics if self._beat else []))

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self, timeout: float) -> None:
        """Connect and wait for the engine's first heartbeat (`EngineUnavailable` after `timeout` seconds)."""
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        sock.connect(self.endpoint)
        self._sock = sock
        self._tasks = [
            asyncio.create_task(self._receive(), name="engine-client-receive"),
            asyncio.create_task(self._watch(), name="engine-client-watch"),
        ]
        try:
            await asyncio.wait_for(self._first_beat.wait(), timeout)
        except TimeoutError:
            await self.close()
            raise EngineUnavailable(f"the codec engine at {self.endpoint} did not answer in {timeout:g} s") from None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        self._fail_pending(EngineUnavailable("the service is shutting down"))
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None
        self._ctx.term()

    # -- what the service reads ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def healthy(self) -> bool:
        return self._alive and self._beat is not None and self._beat.healthy

    @property
    def has_encoder(self) -> bool:
        return self._beat is not None and self._beat.has_encoder

    @property
    def geometry(self) -> Geometry:
        """The loaded codec's sample rate and samples per token, as its engine reports them."""
        if self._beat is None:
            raise EngineUnavailable("the codec engine has not answered yet")
        return self._beat.geometry

    # -- jobs ----------------------------------------------------------------------------------------
    async def decode(
        self, tokens: np.ndarray, *, stream: int = 0, final: bool = False, slack: float = 0.0
    ) -> np.ndarray:
        """Audio (float32, `geometry.samples_per_token` per token) for one window of token ids (`TOKEN_DTYPE`).

        `stream` (> 0) numbers the stream it belongs to and `final` marks its last window, so the engine can
        batch a stream's next window with the others (`BATCH_WAIT_FRACTION`); `slack` is the seconds until its
        listener runs out of audio (`PlaybackClock.slack`): the engine serves the most urgent windows first."""
        array = np.asarray(tokens, dtype=TOKEN_DTYPE)
        return await self._job(JobKind.DECODE, array, stream=stream, final=final, slack=slack)

    async def encode(self, clip_16k: np.ndarray) -> np.ndarray:
        """Speech token ids for one 16 kHz mono clip."""
        return await self._job(JobKind.ENCODE, np.asarray(clip_16k, dtype=np.float32))

    async def _job(
        self, kind: JobKind, array: np.ndarray, *, stream: int = 0, final: bool = False, slack: float = 0.0
    ) -> np.ndarray:
        if not self._alive or self._sock is None:
            raise EngineUnavailable("the codec engine is not running; try again shortly")
        self._next_id += 1
        job_id = self._next_id
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[job_id] = fut
        dtype, buf = m.array_frame(array)
        try:
            await self._sock.send_multipart([m.encode(m.Submit(job_id, kind, dtype, stream, final, slack)), buf], copy=False)
            return await (asyncio.wait_for(fut, self.job_timeout) if self.job_timeout else fut)
        except TimeoutError:
            self._cancel(job_id)
            raise JobTimedOut(f"audio {kind} did not finish within {self.job_timeout:g} s") from None
        except asyncio.CancelledError:
            self._cancel(job_id)
            raise
        finally:
            self._pending.pop(job_id, None)

    def _cancel(self, job_id: int) -> None:
        if self._sock is not None and self._alive:
            with suppress(zmq.ZMQError):
                self._sock.send_multipart([m.encode(m.Cancel(job_id))], flags=zmq.NOBLOCK)

    # -- background tasks ----------------------------------------------------------------------------
    async def _receive(self) -> None:
        assert self._sock is not None
        while True:
            frames = await self._sock.recv_multipart(copy=False)
            try:
                msg = m.decode_to_frontend(frames[0].buffer)
            except Exception:
                logger.warning("engine client: dropped a malformed message from the engine")
                continue
            self._last_heard = time.monotonic()
            if isinstance(msg, m.Heartbeat):
                self._on_heartbeat(msg)
                continue
            fut = self._pending.get(msg.id)
            if fut is None or fut.done():
                continue  # cancelled or timed out meanwhile
            if msg.error is None:
                fut.set_result(m.frame_array(msg.dtype, frames[1].buffer))
            elif msg.error_kind is ErrorKind.INVALID:
                fut.set_exception(InvalidInput(f"the codec rejected the input: {msg.error}"))
            elif msg.error_kind is ErrorKind.STOPPING:
                fut.set_exception(EngineStopping(msg.error))
            else:
                fut.set_exception(CodecFailed(msg.error))

    def _on_heartbeat(self, beat: m.Heartbeat) -> None:
        previous = self._beat
        self._beat = beat
        if previous is not None and previous.epoch != beat.epoch:
            logger.warning("codec engine restarted (epoch %s -> %s)", previous.epoch, beat.epoch)
            # jobs sent to the old engine will never be answered
            self._fail_pending(EngineUnavailable("the codec engine restarted; the request was lost"))
        if not self._alive:
            logger.info("codec engine %s is up on %s", beat.epoch, beat.device)
        self._alive = True
        self._first_beat.set()
        self._beat_event.set()

    async def refresh(self, timeout: float = 0.5) -> None:
        """Ask the engine for a heartbeat now and wait for it (fresh counters for `/metrics`); no-op if down."""
        if not self._alive or self._sock is None:
            return
        self._beat_event.clear()
        with suppress(zmq.ZMQError):
            await self._sock.send_multipart([m.encode(m.Hello(os.getpid()))])
        with suppress(TimeoutError):
            await asyncio.wait_for(self._beat_event.wait(), timeout)

    async def _watch(self) -> None:
        assert self._sock is not None
        hello = m.encode(m.Hello(os.getpid()))
        last_hello = 0.0
        while True:
            now = time.monotonic()
            if self._alive and now - self._last_heard > self.heartbeat_timeout:
                self._alive = False
                logger.error("codec engine: no heartbeat for %.1f s; failing %d jobs", now - self._last_heard,
                             len(self._pending))
                self._fail_pending(EngineUnavailable("the codec engine stopped answering"))
            if now - last_hello >= HELLO_INTERVAL:
                with suppress(zmq.ZMQError):
                    await self._sock.send_multipart([hello])
                last_hello = now
            await asyncio.sleep(min(0.1, self.heartbeat_timeout / 4))

    def _fail_pending(self, exc: Exception) -> None:
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
