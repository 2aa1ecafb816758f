"""`EngineClient`: a front-end's handle on the codec engine (asyncio, one ZMQ DEALER socket).

`await decode(tokens)` / `await encode(clip)` / `await align(audio, rate, text)` send a job and await its
result; cancelling the awaiting task tells the engine to drop the job. Slowness and death are told apart (docs/architecture.md, "Liveness, health and
failure"):

- **dead**: the connection to the engine closed (a socket monitor sees it: the engine process exited). New
  jobs are refused until a restarted engine (same endpoint; ZMQ reconnects by itself) sends its first
  heartbeat. The jobs it had, and the next windows of the streams it was decoding, wait up to `restart_wait`
  seconds (ENGINE_RESTART_WAIT) from the death for that heartbeat and are sent to the new engine, once each:
  the streams go on after a pause. Past it (or with 0) they fail with a 503 (`EngineUnavailable`).
- **late**: no message from the engine for `heartbeat_timeout` seconds. `alive` turns False (`/ready` is 503)
  and a new request's first job waits up to `heartbeat_timeout` more for the engine, then is refused; jobs of
  streams already running keep waiting, so a pause of a few seconds fails nothing.
- **hung**: no message for `hang_timeout` seconds: waiting jobs fail with a 503 and new jobs are refused until
  the engine answers again.

Messages already queued on the socket count as heard: a front-end whose own event loop is late to read them
does not take the engine for late. That state lives in `app.engine.link`.
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
from zmq.utils.monitor import parse_monitor_message

from app.align.result import AlignResult
from app.codec.interface import TOKEN_DTYPE, Geometry
from app.engine import messages as m
from app.engine.errors import (
    AlignerUnavailable,
    CodecFailed,
    EngineLost,
    EngineStopping,
    EngineUnavailable,
    InvalidInput,
    JobTimedOut,
)
from app.engine.link import EngineLink, RunningStreams
from app.engine.messages import ErrorKind, JobKind
from app.observability.metrics import SnapshotCollector

logger = logging.getLogger(__name__)

HELLO_INTERVAL = 1.0


class EngineClient:
    def __init__(
        self,
        endpoint: str,
        *,
        heartbeat_timeout: float = 2.0,
        hang_timeout: float = 15.0,
        job_timeout: float | None = None,
        restart_wait: float = 0.0,
    ) -> None:
        self.endpoint = endpoint
        self.restart_wait = restart_wait
        self.job_timeout = job_timeout
        self._link = EngineLink(heartbeat_timeout, hang_timeout)
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._monitor_sock: zmq.asyncio.Socket | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._tasks: list[asyncio.Task] = []
        self._streams = RunningStreams()
        self.metrics_registry = CollectorRegistry(auto_describe=False)
        self.metrics_registry.register(SnapshotCollector(lambda: self._link.beat.metrics if self._link.beat else []))

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self, timeout: float) -> None:
        """Connect and wait for the engine's first heartbeat (`EngineUnavailable` after `timeout` seconds)."""
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        self._monitor_sock = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        sock.connect(self.endpoint)
        self._sock = sock
        self._tasks = [
            asyncio.create_task(self._receive(), name="engine-client-receive"),
            asyncio.create_task(self._watch(), name="engine-client-watch"),
            asyncio.create_task(self._monitor(self._monitor_sock), name="engine-client-monitor"),
        ]
        try:
            await asyncio.wait_for(self._link.first_beat.wait(), timeout)
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
            with suppress(zmq.ZMQError):
                self._sock.disable_monitor()
            if self._monitor_sock is not None:
                self._monitor_sock.close(0)
                self._monitor_sock = None
            self._sock.close(0)
            self._sock = None
        self._ctx.term()

    # -- what the service reads ----------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._link.alive

    @property
    def healthy(self) -> bool:
        return self._link.alive and self._link.beat is not None and self._link.beat.healthy

    @property
    def has_encoder(self) -> bool:
        return self._link.beat is not None and self._link.beat.has_encoder

    @property
    def has_aligner(self) -> bool:
        """Whether the engine has a forced aligner loaded (ALIGNER_MODEL)."""
        return self._link.beat is not None and self._link.beat.has_aligner

    @property
    def geometry(self) -> Geometry:
        """The loaded codec's sample rate and samples per token, as its engine reports them."""
        if self._link.beat is None:
            raise EngineUnavailable("the codec engine has not answered yet")
        return self._link.beat.geometry

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

    async def align(self, audio: np.ndarray, sample_rate: int, text: str) -> AlignResult:
        """Where each character of `text` (a segment's normalized text) is heard in `audio` (float32 mono at
        `sample_rate`): a `[start, end)` sample span per character, at `sample_rate`. Raises `AlignerUnavailable`
        when the engine has no aligner, `InvalidInput` when the audio is too short for the text."""
        if self._link.beat is not None and not self._link.beat.has_aligner:
            raise AlignerUnavailable("the codec engine has no aligner (ALIGNER_MODEL is empty)")
        array = np.asarray(audio, dtype=np.float32).reshape(-1)
        spans = await self._job(JobKind.ALIGN, array, sample_rate=sample_rate, text=text)
        return AlignResult(text, sample_rate, spans.reshape(-1, 2))

    async def _job(self, kind: JobKind, array: np.ndarray, **fields: object) -> np.ndarray:
        """One job, sent again (once) to a restarted engine if the engine died with it within `restart_wait`."""
        try:
            return await self._submit(kind, array, **fields)
        except EngineUnavailable as exc:
            dead, stream = self._link.down == "dead", fields.get("stream", 0)
            if self.restart_wait <= 0 or not self._streams.worth_resending(exc, kind, stream, dead=dead):
                raise
        await self._link.wait_restarted(self.restart_wait, kind)
        return await self._submit(kind, array, **fields)

    async def _submit(
        self,
        kind: JobKind,
        array: np.ndarray,
        *,
        stream: int = 0,
        final: bool = False,
        slack: float = 0.0,
        sample_rate: int = 0,
        text: str = "",
    ) -> np.ndarray:
        link = self._link
        if link.down is not None or self._sock is None or not link.first_beat.is_set():
            raise EngineUnavailable("the codec engine is not running; try again shortly")
        if not link.alive and (kind is not JobKind.DECODE or stream not in self._streams):
            # the engine is late: a new request waits a moment for it; a running stream's next window just waits
            with suppress(TimeoutError):
                await asyncio.wait_for(link.up.wait(), link.heartbeat_timeout)
            if not link.alive or link.down is not None:
                raise EngineUnavailable("the codec engine is not answering; try again shortly")
        if kind is JobKind.DECODE and stream:
            self._streams.note(stream, final)
        self._next_id += 1
        job_id = self._next_id
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[job_id] = fut
        dtype, buf = m.array_frame(array)
        if kind is JobKind.ALIGN:
            header = m.Align(job_id, dtype, sample_rate, text)
        else:
            header = m.Submit(job_id, kind, dtype, stream, final, slack)
        try:
            await self._sock.send_multipart([m.encode(header), buf], copy=False)
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
        if self._sock is not None and self._link.down != "dead":
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
            self._link.last_heard = time.monotonic()
            if isinstance(msg, m.Heartbeat):
                if self._link.on_heartbeat(msg):  # jobs sent to the old engine will never be answered
                    self._fail_pending(EngineLost("the codec engine restarted; the request was lost"))
                continue
            fut = self._pending.get(msg.id)
            if fut is not None and not fut.done():  # else cancelled or timed out meanwhile
                settle(fut, msg, frames)

    async def refresh(self, timeout: float = 0.5) -> None:
        """Ask the engine for a heartbeat now and wait for it (fresh counters for `/metrics`); no-op if down."""
        if not self._link.alive or self._sock is None:
            return
        self._link.beat_event.clear()
        with suppress(zmq.ZMQError):
            await self._sock.send_multipart([m.encode(m.Hello(os.getpid()))])
        with suppress(TimeoutError):
            await asyncio.wait_for(self._link.beat_event.wait(), timeout)

    async def _watch(self) -> None:
        assert self._sock is not None
        hello = m.encode(m.Hello(os.getpid()))
        last_hello = 0.0
        while True:
            now = time.monotonic()
            unread = bool(self._sock.get(zmq.EVENTS) & zmq.POLLIN)
            if self._link.check(now, unread, len(self._pending)):
                self._fail_pending(EngineUnavailable("the codec engine stopped answering"))
            if now - last_hello >= HELLO_INTERVAL:
                with suppress(zmq.ZMQError):
                    await self._sock.send_multipart([hello])
                last_hello = now
            await asyncio.sleep(min(0.1, self._link.heartbeat_timeout / 4))

    async def _monitor(self, monitor: zmq.asyncio.Socket) -> None:
        """The connection's events: closed is the engine process gone (SIGSTOP keeps it open), so death."""
        assert self._sock is not None
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())["event"]
            if event == zmq.EVENT_DISCONNECTED:
                if self._link.on_disconnect(len(self._pending)):
                    self._fail_pending(EngineLost("the codec engine died; the request was lost"))
            elif event == zmq.EVENT_CONNECTED and self._link.down == "dead":
                self._link.reconnected = True
                with suppress(zmq.ZMQError):  # the new engine learns us now, not at the next hello
                    await self._sock.send_multipart([m.encode(m.Hello(os.getpid()))])

    def _fail_pending(self, exc: Exception) -> None:
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()


def settle(fut: asyncio.Future, msg: m.Result, frames: list[zmq.Frame]) -> None:
    """A job's reply: its array, or the error it names (the input rejected, the engine stopping, the codec failing)."""
    if msg.error is None:
        fut.set_result(m.frame_array(msg.dtype, frames[1].buffer))
    elif msg.error_kind is ErrorKind.INVALID:
        fut.set_exception(InvalidInput(f"the codec rejected the input: {msg.error}"))
    elif msg.error_kind is ErrorKind.STOPPING:
        fut.set_exception(EngineStopping(msg.error))
    else:
        fut.set_exception(CodecFailed(msg.error))
