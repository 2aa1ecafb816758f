"""Prometheus metrics (prometheus_client): what a TTS SLO is made of.

Two small groups, each owning its metric objects on one registry: `ServiceMetrics` for the HTTP front-end
(requests, time to first audio, gaps between chunks) and `CodecMetrics` for the codec engine (queue wait,
batch sizes, padding, decode time). With `PROMETHEUS_MULTIPROC_DIR` set (several processes serve one port, or
the engine runs in its own process), prometheus_client writes every value to files there and `exposition()`
aggregates all processes with its `MultiProcessCollector`; otherwise it reads this process's registry.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

__all__ = ["CONTENT_TYPE_LATEST", "CodecMetrics", "PlaybackClock", "ServiceMetrics", "exposition", "padding_ratio"]

# seconds; the TTFA SLO is sub-second on a GPU, a CPU codec takes seconds
LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
DURATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
RTF_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)  # wall seconds per audio second
GAP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)
UNDERRUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
QUEUE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DECODE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256)
RATIO_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class ServiceMetrics:
    """Front-end metrics: one instance per app, on its own registry unless one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._add_request_metrics(self.registry)
        self._add_stream_metrics(self.registry)
        self._add_backend_metrics(self.registry)

    def _add_request_metrics(self, r: CollectorRegistry) -> None:
        """Per request: outcome, how many run now, time to first audio, duration, speed, audio length."""
        self.requests = Counter(
            "tts_requests",
            "Audio requests by endpoint, format and outcome",
            ["endpoint", "format", "outcome"],
            registry=r,
        )
        self.in_flight = Gauge(
            "tts_requests_in_flight", "Requests generating audio now", registry=r, multiprocess_mode="livesum"
        )
        self.ttfa = Histogram(
            "tts_time_to_first_audio_seconds",
            "From the request to its first audio chunk",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.duration = Histogram(
            "tts_request_duration_seconds",
            "Whole request, first byte of the request to the last chunk",
            ["endpoint"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.rtf = Histogram(
            "tts_real_time_factor",
            "Generation seconds per second of audio (under 1: faster than real time)",
            ["endpoint"],
            buckets=RTF_BUCKETS,
            registry=r,
        )
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio generated", ["endpoint"], registry=r)

    def _add_stream_metrics(self, r: CollectorRegistry) -> None:
        """Per stream: gaps between chunks, how its backend requests ended, underruns, dropped slow readers."""
        self.chunk_gap = Histogram(
            "tts_inter_chunk_gap_seconds",
            "Time between two audio chunks of one stream",
            buckets=GAP_BUCKETS,
            registry=r,
        )
        self.generations = Counter(
            "tts_generations",
            "Backend requests (one per segment) by how they ended: stop, length (cut at max_tokens or the context), "
            "error or cancelled",
            ["endpoint", "finish_reason"],
            registry=r,
        )
        self.underrun = Histogram(
            "tts_underrun_seconds",
            "Silence a real-time player would hear: a chunk that came later than the audio already sent lasts",
            buckets=UNDERRUN_BUCKETS,
            registry=r,
        )
        self.send_timeouts = Counter(
            "tts_stream_send_timeouts",
            "HTTP streams dropped because their client did not read a piece within STREAM_SEND_TIMEOUT",
            ["endpoint"],
            registry=r,
        )

    def _add_backend_metrics(self, r: CollectorRegistry) -> None:
        """What the work behind the streams met: the reference clip cache and backend failovers."""
        self.reference_cache = Counter(
            "tts_reference_cache",
            "Reference clips (voice cloning, saved voices) by cache result: hit (no encoder run) or miss",
            ["result"],
            registry=r,
        )
        self.backend_failovers = Counter(
            "tts_backend_failovers",
            "Backend streams that broke, by what followed: resent (to the next live backend, with the speech tokens"
            " received so far) or exhausted (BACKEND_RETRIES or BACKEND_FAILOVER_TIMEOUT spent: the stream ends broken)",
            ["outcome"],
            registry=r,
        )
        # per tenant (app/service/usage.py): the first MAX_TENANT_LABELS tenants by name, the rest as "other"
        self.tenant_requests = Counter("tts_tenant_requests", "Requests ended, per tenant", ["tenant"], registry=r)
        self.tenant_characters = Counter(
            "tts_tenant_characters", "Characters billed, per tenant", ["tenant"], registry=r
        )
        self.tenant_audio_seconds = Counter(
            "tts_tenant_audio_seconds", "Audio seconds delivered, per tenant", ["tenant"], registry=r
        )


class CodecMetrics:
    """Codec engine metrics: one instance per `CodecEngine` (it may run in its own process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.queue_depth = Gauge(
            "tts_codec_queue_depth",
            "Jobs (decode windows, encode clips) waiting for the codec",
            ["kind"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.queue_wait = Histogram(
            "tts_codec_queue_wait_seconds",
            "Time a job waited before its batch started",
            ["kind"],
            buckets=QUEUE_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "tts_codec_batch_size", "Jobs per codec batch", ["kind"], buckets=BATCH_BUCKETS, registry=r
        )
        self.padding = Histogram(
            "tts_codec_padding_ratio",
            "Share of a decode batch's token slots that were padding",
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.batch_seconds = Histogram(
            "tts_codec_batch_seconds", "Codec time per batch", ["kind"], buckets=DECODE_BUCKETS, registry=r
        )
        self.jobs = Counter("tts_codec_jobs", "Jobs submitted to the codec", ["kind"], registry=r)
        self.tokens = Counter("tts_codec_tokens_decoded", "Speech tokens decoded (window context included)", registry=r)
        self.failures = Counter("tts_codec_failures", "Codec batches that raised", ["kind"], registry=r)
        self.dropped = Counter("tts_codec_dropped_jobs", "Queued jobs dropped because their client left", registry=r)
        self.recompiles = Counter("tts_codec_recompiles", "torch.compile recompilations seen by the codec", registry=r)
        self.fill_wait = Counter(
            "tts_codec_fill_wait_seconds",
            "Time the codec held a batch back for the next windows of the streams it had just served",
            registry=r,
        )
        # the CPU, memory and file descriptors of the process that runs the codec engine
        ProcessCollector(namespace="tts_engine", registry=r)


class PlaybackClock:
    """A real-time player fed by one stream, starting with its first chunk: the gap between chunks, and the
    silence it would hear when a chunk comes after everything sent before it has played (an underrun)."""

    def __init__(self, samples_per_second: float) -> None:
        self.rate = samples_per_second
        self._last: float | None = None  # arrival of the previous chunk
        self._until: float | None = None  # when the audio received so far stops playing

    def add(self, now: float, samples: int) -> tuple[float | None, float]:
        """A chunk of `samples` arrived at `now` (seconds) -> (gap since the previous chunk or None, underrun s)."""
        gap = None if self._last is None else now - self._last
        underrun = 0.0
        if self._until is None or now > self._until:
            underrun = 0.0 if self._until is None else now - self._until
            self._until = now
        self._until += samples / self.rate
        self._last = now
        return gap, underrun

    def slack(self, now: float, started: float, ahead_samples: int = 0) -> float:
        """Seconds from `now` until the listener runs out of audio, once `ahead_samples` more (windows already on
        their way) have arrived: negative when it is already starving, or still waiting for its first audio
        since `started`. The codec engine serves the smallest first (`app.engine.batcher`)."""
        until = started if self._until is None else self._until
        return until - now + ahead_samples / self.rate


def padding_ratio(lengths: list[int], padded_len: int | None = None) -> float:
    """Padding share of a batch of windows padded to `padded_len` (default: the longest)."""
    if not lengths:
        return 0.0
    slots = len(lengths) * (padded_len or max(lengths))
    return 1.0 - sum(lengths) / slots if slots else 0.0


def exposition(*registries: CollectorRegistry, engine: CollectorRegistry | None = None) -> bytes:
    """The Prometheus text: every front-end process's values in multiprocess mode, else the given registries;
    then the codec engine's (`engine`, as its heartbeat carries them: the engine keeps its metrics in memory)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registries = (registry,)
    text = b"".join(generate_latest(r) for r in registries)
    return text + generate_latest(engine) if engine is not None else text


def in_memory_values() -> None:
    """Make metrics created from now on in this process live in memory, whatever `PROMETHEUS_MULTIPROC_DIR` says
    (the codec engine: front-ends report its values from its heartbeats, not from shared files)."""
    from prometheus_client import values

    values.ValueClass = values.MutexValue


def snapshot(registry: CollectorRegistry) -> list[list]:
    """A registry's current samples as plain lists (msgpack-able): [name, type, help, [[sample, labels, value]]]."""
    return [
        [family.name, family.type, family.documentation, [[s.name, s.labels, s.value] for s in family.samples]]
        for family in registry.collect()
    ]


class SnapshotCollector:
    """Serves the families of the latest `snapshot()` a callable returns (the engine's, from its heartbeat)."""

    def __init__(self, latest: Callable[[], list[list]]) -> None:
        self._latest = latest

    def collect(self) -> Iterator[Metric]:
        for name, kind, documentation, samples in self._latest():
            family = Metric(name, documentation, kind)
            for sample_name, labels, value in samples:
                family.add_sample(sample_name, labels, value)
            yield family
