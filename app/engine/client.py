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
does not take the engine for late.
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
from app.engine.messages import ErrorKind, JobKind
from app.observability.metrics import SnapshotCollector

logger = logging.getLogger(__name__)

HELLO_INTERVAL = 1.0
STREAM_TTL = 60.0  # a stream with no job for this long counts as new again (its end was never seen)


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
        self.heartbeat_timeout = heartbeat_timeout
        self.hang_timeout = max(hang_timeout, heartbeat_timeout)
        self.job_timeout = job_timeout
        self._ctx = zmq.asyncio.Context()
        self._sock: zmq.asyncio.Socket | None = None
        self._monitor_sock: zmq.asyncio.Socket | None = None
        self._pending: dict[int, asyncio.Future] = {}
        self._next_id = 0
        self._tasks: list[asyncio.Task] = []
        self._beat: m.Heartbeat | None = None
        self._last_heard = 0.0
        self._alive = False
        self._up = asyncio.Event()  # set while `alive`
        self._down: str | None = None  # "dead" (connection closed) or "hung" (silent past hang_timeout)
        self._reconnected = False  # dead, then connected again: the next heartbeat is the new engine's
        self._streams: dict[int, float] = {}  # streams with a job sent -> when their last one was sent
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
        self._monitor_sock = sock.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        sock.connect(self.endpoint)
        self._sock = sock
        self._tasks = [
            asyncio.create_task(self._receive(), name="engine-client-receive"),
            asyncio.create_task(self._watch(), name="engine-client-watch"),
            asyncio.create_task(self._monitor(self._monitor_sock), name="engine-client-monitor"),
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
        return self._alive

    @property
    def healthy(self) -> bool:
        return self._alive and self._beat is not None and self._beat.healthy

    @property
    def has_encoder(self) -> bool:
        return self._beat is not None and self._beat.has_encoder

    @property
    def has_aligner(self) -> bool:
        """Whether the engine has a forced aligner loaded (ALIGNER_MODEL)."""
        return self._beat is not None and self._beat.has_aligner

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

    async def align(self, audio: np.ndarray, sample_rate: int, text: str) -> AlignResult:
        """Where each character of `text` (a segment's normalized text) is heard in `audio` (float32 mono at
        `sample_rate`): a `[start, end)` sample span per character, at `sample_rate`. Raises `AlignerUnavailable`
        when the engine has no aligner, `InvalidInput` when the audio is too short for the text."""
        if self._beat is not None and not self._beat.has_aligner:
            raise AlignerUnavailable("the codec engine has no aligner (ALIGNER_MODEL is empty)")
        array = np.asarray(audio, dtype=np.float32).reshape(-1)
        spans = await self._job(JobKind.ALIGN, array, sample_rate=sample_rate, text=text)
        return AlignResult(text, sample_rate, spans.reshape(-1, 2))

    async def _job(self, kind: JobKind, array: np.ndarray, **fields: object) -> np.ndarray:
        """One job, sent again (once) to a restarted engine if the engine died with it within `restart_wait`."""
        try:
            return await self._submit(kind, array, **fields)
        except EngineUnavailable as exc:
            if not self._may_resend(exc, kind, fields.get("stream", 0)):
                raise
            lost_at = time.monotonic()
        try:
            await asyncio.wait_for(self._up.wait(), self.restart_wait)
        except TimeoutError:
            raise EngineUnavailable(
                f"the codec engine died and was not back within ENGINE_RESTART_WAIT ({self.restart_wait:g} s)"
            ) from None
        logger.info("codec engine back after %.2f s: a %s job sent to it again", time.monotonic() - lost_at, kind)
        return await self._submit(kind, array, **fields)

    def _may_resend(self, exc: EngineUnavailable, kind: JobKind, stream: object) -> bool:
        """A job the engine died with, or a running stream's next window while it is dead: worth a resend."""
        if self.restart_wait <= 0:
            return False
        return isinstance(exc, EngineLost) or (
            self._down == "dead" and kind is JobKind.DECODE and stream in self._streams
        )

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
        if self._down is not None or self._sock is None or not self._first_beat.is_set():
            raise EngineUnavailable("the codec engine is not running; try again shortly")
        if not self._alive and (kind is not JobKind.DECODE or stream not in self._streams):
            # the engine is late: a new request waits a moment for it; a running stream's next window just waits
            with suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), self.heartbeat_timeout)
            if not self._alive or self._down is not None:
                raise EngineUnavailable("the codec engine is not answering; try again shortly")
        if kind is JobKind.DECODE and stream:
            self._note_stream(stream, final)
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

    def _note_stream(self, stream: int, final: bool) -> None:
        now = time.monotonic()
        if final:
            self._streams.pop(stream, None)
            return
        if stream not in self._streams and len(self._streams) >= 256:
            self._streams = {k: t for k, t in self._streams.items() if now - t < STREAM_TTL}
        self._streams[stream] = now

    def _cancel(self, job_id: int) -> None:
        if self._sock is not None and self._down != "dead":
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
        if self._down == "dead" and not self._reconnected:
            return  # queued before the old engine died
        previous = self._beat
        self._beat = beat
        if previous is not None and previous.epoch != beat.epoch:
            logger.warning("codec engine restarted (epoch %s -> %s)", previous.epoch, beat.epoch)
            # jobs sent to the old engine will never be answered
            self._fail_pending(EngineLost("the codec engine restarted; the request was lost"))
        if not self._alive:
            logger.info("codec engine %s is up on %s", beat.epoch, beat.device)
        self._alive = True
        self._down = None
        self._reconnected = False
        self._up.set()
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
            if self._sock.get(zmq.EVENTS) & zmq.POLLIN:
                self._last_heard = now  # the engine has spoken; this event loop is late to read it
            silent = now - self._last_heard
            if self._alive and silent > self.heartbeat_timeout:
                self._alive = False
                self._up.clear()
                logger.warning("codec engine: no heartbeat for %.1f s; not ready, new requests wait for it", silent)
            if self._down is None and self._beat is not None and silent > self.hang_timeout:
                self._down = "hung"
                logger.error("codec engine: no answer for %.1f s; taken for hung, failing %d jobs", silent,
                             len(self._pending))
                self._fail_pending(EngineUnavailable("the codec engine stopped answering"))
            if now - last_hello >= HELLO_INTERVAL:
                with suppress(zmq.ZMQError):
                    await self._sock.send_multipart([hello])
                last_hello = now
            await asyncio.sleep(min(0.1, self.heartbeat_timeout / 4))

    async def _monitor(self, monitor: zmq.asyncio.Socket) -> None:
        """The connection's events: closed is the engine process gone (SIGSTOP keeps it open), so death."""
        assert self._sock is not None
        while True:
            event = parse_monitor_message(await monitor.recv_multipart())["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._on_disconnect()
            elif event == zmq.EVENT_CONNECTED and self._down == "dead":
                self._reconnected = True
                with suppress(zmq.ZMQError):  # the new engine learns us now, not at the next hello
                    await self._sock.send_multipart([m.encode(m.Hello(os.getpid()))])

    def _on_disconnect(self) -> None:
        if self._beat is None or self._down == "dead":
            return
        self._alive = False
        self._up.clear()
        self._down = "dead"
        self._reconnected = False
        logger.error("codec engine: its connection closed (the process exited); failing %d jobs", len(self._pending))
        self._fail_pending(EngineLost("the codec engine died; the request was lost"))

    def _fail_pending(self, exc: Exception) -> None:
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()
