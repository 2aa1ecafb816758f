"""`EngineCore`: one codec serving every front-end, over a ZMQ ROUTER socket.

The engine owns the codec (device, CUDA graphs or torch.compile) and its batching worker (`CodecEngine`), so
windows of every request of every front-end process are batched together. One I/O thread owns the sockets:
it reads jobs from the ROUTER socket and hands them to the worker, forwards the worker's results (pushed over an
inproc socket, since ZMQ sockets belong to one thread) back to their front-end, and sends every known front-end a
heartbeat several times a second: liveness, health, queue depths and counters. Audio and token ids travel as raw
array frames, never serialized. With an aligner (ALIGNER_MODEL) it also aligns segments to their text (`Align`).

It runs as the main loop of the engine process (`app.engine.process`), or in a thread of the API process when a
test or benchmark hands the app a ready codec object: the same code either way.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import numpy as np
import zmq

from app.align.result import AlignRequest
from app.codec.interface import TOKEN_DTYPE, Codec
from app.engine import messages as m
from app.engine.errors import EngineStopping, InvalidInput
from app.engine.messages import ErrorKind, JobKind
from app.engine.worker import Aligner, CodecEngine
from app.observability.metrics import snapshot
from app.settings import EngineSettings

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 0.2  # seconds between heartbeats
MAX_ALIGN_RATE = 192_000  # the highest sample rate an align job may name
CLIENT_TTL = 30.0  # a front-end not heard from for this long gets no more heartbeats


class EngineCore:
    """Serves `codec` at `endpoint` (e.g. `ipc:///tmp/x/engine.sock`) until `stop()`."""

    def __init__(
        self,
        codec: Codec,
        endpoint: str,
        *,
        max_batch_size: int,
        microsleep: float,
        batch_wait_fraction: float = 0.0,
        timeout: float | None = None,
        aligner: Aligner | None = None,
        align_batch_size: int = 8,
    ) -> None:
        self.codec = codec
        self.endpoint = endpoint
        self.epoch = uuid.uuid4().hex[:12]
        self.worker = CodecEngine(
            codec,
            max_batch_size=max_batch_size,
            microsleep=microsleep,
            batch_wait_fraction=batch_wait_fraction,
            timeout=timeout,  # a batch running longer than this makes the engine unhealthy (a hung device)
            aligner=aligner,
            align_batch_size=align_batch_size,
        )
        self._ctx = zmq.Context()
        self._router: zmq.Socket | None = None
        self._results = ResultPipe(self._ctx, f"inproc://engine-results-{self.epoch}")
        self._live: dict[tuple[bytes, int], bool] = {}  # job -> cancelled?
        self._clients: dict[bytes, float] = {}  # identity -> last heard (monotonic)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(
        cls, codec: Codec, endpoint: str, settings: EngineSettings, *, aligner: Aligner | None = None
    ) -> EngineCore:
        return cls(
            codec,
            endpoint,
            max_batch_size=settings.max_batch_size,
            microsleep=settings.microsleep,
            batch_wait_fraction=settings.batch_wait_fraction,
            timeout=settings.batch_hang_seconds,
            aligner=aligner,
            align_batch_size=settings.aligner_max_batch,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def bind(self) -> None:
        """Bind the sockets and start the codec worker (call before `serve`)."""
        self._router = self._ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.LINGER, 0)
        self._router.setsockopt(zmq.SNDHWM, 0)
        self._router.setsockopt(zmq.RCVHWM, 0)
        self._router.bind(self.endpoint)
        self._results.bind()
        self.worker.start()

    def serve(self, *, watch_fd: int | None = None) -> None:
        """The I/O loop, until `stop()` (or `watch_fd` becomes readable: the parent process has gone)."""
        pull = self._results.pull
        assert self._router is not None and pull is not None, "bind() first"
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        if watch_fd is not None:
            poller.register(watch_fd, zmq.POLLIN)
        next_beat = 0.0
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_beat:
                    self._heartbeat(now)
                    next_beat = now + HEARTBEAT_INTERVAL
                events = dict(poller.poll(max(1, int((next_beat - time.monotonic()) * 1000))))
                if self._router in events:
                    self._drain_router()
                if pull in events:
                    self._results.forward(self._router)
                if watch_fd is not None and watch_fd in events:
                    logger.warning("engine: the parent process has gone; stopping")
                    break
        finally:
            self._close()

    def start_thread(self) -> None:
        """Bind, then serve on a daemon thread of this process."""
        self.bind()
        self._thread = threading.Thread(target=self.serve, name="codec-engine-io", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _close(self) -> None:
        self.worker.stop()
        if self._router is not None:
            self._router.close(0)
        self._results.close()
        self._ctx.term()

    # -- I/O thread --------------------------------------------------------------------------------
    def _drain_router(self) -> None:
        assert self._router is not None
        while True:
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            identity = frames[0].bytes
            self._clients[identity] = time.monotonic()
            try:
                msg = m.decode_to_engine(frames[1].buffer)
            except Exception:  # a peer that does not speak our protocol: ignore it, loudly
                logger.warning("engine: dropped a malformed message from a front-end")
                continue
            if isinstance(msg, m.Submit):
                self._submit(identity, msg, frames[2].buffer if len(frames) > 2 else b"")
            elif isinstance(msg, m.Align):
                self._align(identity, msg, frames[2].buffer if len(frames) > 2 else b"")
            elif isinstance(msg, m.Cancel):
                key = (identity, msg.id)
                if key in self._live:
                    self._live[key] = True
            else:  # Hello: registered above; answer at once so a new front-end need not wait for the beat
                self._send_heartbeat(identity)

    def _submit(self, identity: bytes, msg: m.Submit, payload: Any) -> None:
        try:
            if msg.kind is JobKind.ALIGN:
                raise ValueError("an align job is sent as Align (audio and text), not Submit")
            array = m.frame_array(msg.dtype, payload)
            expected = TOKEN_DTYPE if msg.kind is JobKind.DECODE else np.dtype(np.float32)
            if array.dtype != expected:
                raise ValueError(f"a {msg.kind} job takes {expected} values, got {array.dtype}")
        except (ValueError, TypeError) as exc:
            self._send_result(identity, m.Result(msg.id, error=str(exc), error_kind=ErrorKind.INVALID))
            return
        self._queue(identity, msg.id, msg.kind, array, stream=msg.stream, final=msg.final, slack=msg.slack)

    def _align(self, identity: bytes, msg: m.Align, payload: Any) -> None:
        try:
            audio = m.frame_array(msg.dtype, payload)
            if audio.dtype != np.float32:
                raise ValueError(f"an align job takes float32 audio, got {audio.dtype}")
            if not 0 < msg.sample_rate <= MAX_ALIGN_RATE:
                raise ValueError(f"sample_rate must be 1-{MAX_ALIGN_RATE} Hz, got {msg.sample_rate}")
            if self.worker.aligner is None:
                raise ValueError("this engine has no aligner (ALIGNER_MODEL is empty)")
        except (ValueError, TypeError) as exc:
            self._send_result(identity, m.Result(msg.id, error=str(exc), error_kind=ErrorKind.INVALID))
            return
        request = AlignRequest(audio, msg.sample_rate, msg.text)
        self._queue(identity, msg.id, JobKind.ALIGN, request, result_dtype=np.int64)

    def _queue(
        self,
        identity: bytes,
        job_id: int,
        kind: JobKind,
        payload: Any,
        *,
        stream: int = 0,
        final: bool = False,
        slack: float = 0.0,
        result_dtype: Any = None,
    ) -> None:
        key = (identity, job_id)
        self._live[key] = False

        def deliver(result: Any, exc: BaseException | None) -> None:
            self._live.pop(key, None)
            if exc is not None:
                error = m.Result(job_id, error=str(exc), error_kind=error_kind(exc))
                self._results.push([identity, m.encode(error)])
                return
            dtype, buf = m.array_frame(np.asarray(result, dtype=result_dtype).reshape(-1))
            self._results.push([identity, m.encode(m.Result(job_id, dtype=dtype)), buf])

        try:
            self.worker.submit(
                kind,
                payload,
                deliver,
                lambda: self._live.get(key, True),
                stream=(identity, stream) if stream else None,  # stream numbers are per front-end
                final=final,
                slack=slack,
            )
        except EngineStopping as exc:
            self._live.pop(key, None)
            self._send_result(identity, m.Result(job_id, error=str(exc), error_kind=ErrorKind.STOPPING))
        except ValueError as exc:  # a header the worker refuses (a non-finite slack): this job fails, nothing else
            self._live.pop(key, None)
            self._send_result(identity, m.Result(job_id, error=str(exc), error_kind=ErrorKind.INVALID))

    def _send_result(self, identity: bytes, result: m.Result) -> None:
        assert self._router is not None
        self._router.send_multipart([identity, m.encode(result)])

    def _heartbeat(self, now: float) -> None:
        for identity, seen in list(self._clients.items()):
            if now - seen > CLIENT_TTL:
                del self._clients[identity]
            else:
                self._send_heartbeat(identity)

    def _send_heartbeat(self, identity: bytes) -> None:
        assert self._router is not None
        self._router.send_multipart([identity, m.encode(self.heartbeat())])

    def heartbeat(self) -> m.Heartbeat:
        worker = self.worker
        return m.Heartbeat(
            epoch=self.epoch,
            healthy=worker.healthy,
            geometry=self.codec.geometry,
            has_encoder=self.codec.has_encoder,
            device=self.codec.device,
            queue_depth={kind: worker.queue_depth(kind) for kind in worker.kinds},
            worker=worker.stats,  # the live counters: `_send_heartbeat` encodes them at once, holding the GIL
            codec=self.codec.stats,
            metrics=snapshot(worker.metrics.registry),
            has_aligner=worker.aligner is not None,
        )


def error_kind(exc: BaseException) -> ErrorKind:
    """How a job's failure is told to its front-end."""
    if isinstance(exc, EngineStopping):
        return ErrorKind.STOPPING
    if isinstance(exc, InvalidInput):  # an aligner's verdict on its input
        return ErrorKind.INVALID
    return ErrorKind.FAILED


class ResultPipe:
    """Results from the worker threads to the I/O thread, which forwards them to their front-ends: ZMQ sockets
    belong to one thread, so each worker thread pushes through its own PUSH socket to one PULL socket."""

    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self._ctx = ctx
        self.endpoint = endpoint
        self.pull: zmq.Socket | None = None  # the I/O thread's end
        self._local = threading.local()  # a worker thread's PUSH socket
        self._pushers: list[zmq.Socket] = []
        self._pushers_lock = threading.Lock()

    def bind(self) -> None:
        self.pull = self._ctx.socket(zmq.PULL)
        self.pull.setsockopt(zmq.LINGER, 0)
        self.pull.bind(self.endpoint)

    def push(self, frames: list) -> None:
        """Send a result from a worker thread, through its own PUSH socket, to the I/O thread."""
        sock = getattr(self._local, "push", None)
        if sock is None:
            sock = self._ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.SNDHWM, 0)
            sock.connect(self.endpoint)
            self._local.push = sock
            with self._pushers_lock:
                self._pushers.append(sock)
        sock.send_multipart(frames, copy=False)

    def forward(self, router: zmq.Socket) -> None:
        """On the I/O thread: send every result waiting on the PULL socket out through `router`."""
        assert self.pull is not None
        while True:
            try:
                frames = self.pull.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            router.send_multipart(frames, copy=False)

    def close(self) -> None:
        if self.pull is not None:
            self.pull.close(0)
        with self._pushers_lock:
            for sock in self._pushers:
                sock.close(0)
            self._pushers.clear()
