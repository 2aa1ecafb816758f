"""What front-ends and the codec engine say to each other over ZMQ (msgpack headers, raw array payloads).

Every message is a multipart ZMQ message: one msgpack header, then (for decode/encode/align jobs and their results)
one frame of raw array bytes, so audio never goes through a serializer. A ROUTER socket in the engine prefixes the
sender's identity; the DEALER sockets of the front-ends never see it.
"""

from __future__ import annotations

import enum

import msgspec
import numpy as np

from app.codec.interface import CodecStats, Geometry


class JobKind(enum.StrEnum):
    DECODE = "decode"  # token ids -> audio
    ENCODE = "encode"  # a 16 kHz float32 clip -> token ids
    ALIGN = "align"  # a segment's float32 audio and its normalized text -> a sample span per character


class ErrorKind(enum.StrEnum):
    INVALID = "invalid"  # the engine refused the job's input
    FAILED = "failed"  # the codec failed on it
    STOPPING = "stopping"  # the engine is shutting down


class Hello(msgspec.Struct, tag="hello", array_like=True):
    """Front-end -> engine: register (sent at connect and then every second, so a restarted engine learns us)."""

    pid: int


class Submit(msgspec.Struct, tag="submit", array_like=True):
    """Front-end -> engine: a job; the payload frame holds the array (`dtype`, 1-D)."""

    id: int
    kind: JobKind
    dtype: str
    stream: int = 0  # decode: the sender's number for the stream the window belongs to (0: none)
    final: bool = False  # decode: the stream's last window
    slack: float = 0.0  # seconds until the window's listener runs out of audio (the engine serves the least first)


class Align(msgspec.Struct, tag="align", array_like=True):
    """Front-end -> engine: align `text` to the float32 mono audio at `sample_rate` in the payload frame. Its
    `Result` holds int64 `[start, end)` sample pairs, one per character of `text` (flattened)."""

    id: int
    dtype: str
    sample_rate: int
    text: str


class Cancel(msgspec.Struct, tag="cancel", array_like=True):
    """Front-end -> engine: the client of job `id` has gone; drop it if it has not started."""

    id: int


class Result(msgspec.Struct, tag="result", array_like=True):
    """Engine -> front-end: the job's array in the payload frame, or an error (then no payload frame)."""

    id: int
    dtype: str = ""
    error: str | None = None
    error_kind: ErrorKind | None = None


class WorkerStats(msgspec.Struct):
    """The batching worker's counters since start (`app.engine.worker.CodecEngine.stats`)."""

    jobs: dict[JobKind, int] = {}
    batches: dict[JobKind, int] = {}
    batch_sizes: dict[int, int] = {}  # decode batch size -> batches
    tokens_decoded: int = 0
    busy_seconds: dict[JobKind, float] = {}
    wait_seconds: float = 0.0  # queueing time summed over jobs
    fill_wait_seconds: float = 0.0  # time the worker held a batch back for more windows (BATCH_WAIT_FRACTION)
    failures: int = 0
    dropped: int = 0
    max_batch: int = 0


class Heartbeat(msgspec.Struct, tag="heartbeat", array_like=True):
    """Engine -> every front-end, several times a second: liveness, health and the figures for `/metrics`."""

    epoch: str  # changes when the engine restarts
    healthy: bool
    geometry: Geometry
    has_encoder: bool
    device: str
    queue_depth: dict[JobKind, int]
    worker: WorkerStats
    codec: CodecStats
    metrics: list  # `app.observability.metrics.snapshot()` of the engine's Prometheus registry
    has_aligner: bool = False  # ALIGNER_MODEL is loaded: the engine takes `Align` jobs


ToEngine = Hello | Submit | Align | Cancel
ToFrontend = Result | Heartbeat

_encoder = msgspec.msgpack.Encoder()
_to_engine = msgspec.msgpack.Decoder(ToEngine)
_to_frontend = msgspec.msgpack.Decoder(ToFrontend)


def encode(message: msgspec.Struct) -> bytes:
    return _encoder.encode(message)


def decode_to_engine(data: bytes | memoryview) -> ToEngine:
    return _to_engine.decode(data)


def decode_to_frontend(data: bytes | memoryview) -> ToFrontend:
    return _to_frontend.decode(data)


def array_frame(array: np.ndarray) -> tuple[str, memoryview]:
    """(dtype name, zero-copy bytes view) of a 1-D array, made contiguous if needed."""
    array = np.ascontiguousarray(array)
    return array.dtype.str, memoryview(array).cast("B")


def frame_array(dtype: str, buffer: bytes | memoryview) -> np.ndarray:
    """The 1-D array in a payload frame (read-only, no copy)."""
    return np.frombuffer(buffer, dtype=np.dtype(dtype))
