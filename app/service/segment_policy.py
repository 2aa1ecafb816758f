"""What a segment stream asks of its surroundings, each a small object it is given: how its segments are
admitted (`SegmentAdmission`) and who counts and logs them (`StreamObserver`).

An HTTP request is admitted once by its route (`HeldByCaller`) and counted once at its end (`RequestAccounting`);
a WebSocket context's segments are each admitted (`PerSegment`, or `Queued`: wait for a slot instead of a 429)
and each counted as a request by its synthesis (`SegmentAccounting`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Protocol

from app.audio.output import OutputSpec
from app.errors import OverloadedError
from app.observability.metrics import PlaybackClock, ServiceMetrics
from app.service.admission import Slot
from app.service.context import ContextStore
from app.service.synthesis import Synthesis, SynthesisJob

logger = logging.getLogger(__name__)


@dataclass
class StreamUsage:
    """What a segment stream spoke: its segments, tokens and samples (at the codec's rate, before speed)."""

    segments: int = 0
    failed_segments: int = 0
    input_chars: int = 0
    prompt_tokens: int = 0
    speech_tokens: int = 0
    context_tokens: int = 0
    samples: int = 0
    sample_rate: int = 24_000
    cut_segments: list[int] = field(default_factory=list)  # segments whose generation stopped at finish_reason length
    delivered_samples: int = 0  # audio its consumer took (codec samples): what usage records
    pauses: int = 0  # SSML breaks delivered (silence the writer inserts: no tokens, no codec samples)
    ssml_ignored: list[str] = field(default_factory=list)  # what its SSML held that was not applied

    @property
    def finish_reason(self) -> str:
        """`length` when any segment was cut short (max_tokens or the model's context), else `stop`."""
        return "length" if self.cut_segments else "stop"

    def add(self, job: SynthesisJob) -> None:
        """A segment spoken."""
        self.segments += 1
        self.prompt_tokens += job.stats.prompt_tokens or 0
        self.speech_tokens += len(job.tokens)
        self.context_tokens += len(job.context.tokens) if job.context else 0
        self.samples += job.samples_out
        self.sample_rate = job.sample_rate
        if job.stats.finish_reason == "length":
            self.cut_segments.append(job.segment)

    def as_dict(self) -> dict:
        return {
            "input_tokens": self.prompt_tokens,
            "output_tokens": self.speech_tokens,
            "total_tokens": self.prompt_tokens + self.speech_tokens,
            "input_characters": self.input_chars,
            "segments": self.segments,
            "failed_segments": self.failed_segments,
            "context_tokens": self.context_tokens,
            "audio_seconds": round(self.samples / self.sample_rate, 3),
        }


class SegmentStream(Protocol):
    """What the observers read of a segment stream (app.service.segments)."""

    request_id: str
    endpoint: str
    started: float
    first_audio_at: float | None
    usage: StreamUsage
    output: OutputSpec
    outcome: str
    last_job: SynthesisJob | None


# -- admission -------------------------------------------------------------------------------------------------
class SegmentAdmission(Protocol):
    async def acquire(self, drained: Callable[[], Awaitable[None]], first: bool) -> Slot | None:
        """The slot a segment about to start holds (None: the caller holds one for all). `first`: no segment of the
        stream is open; `drained()` waits until none is."""
        ...


class HeldByCaller:
    """The route took one slot for the whole request: a long text is never refused midway."""

    async def acquire(self, drained: Callable[[], Awaitable[None]], first: bool) -> Slot | None:
        return None


class PerSegment:
    """Each segment takes a request slot of its own, like an HTTP request (429 when full): a look-ahead segment
    that finds the server full waits until the stream's open segments are delivered, then asks again."""

    def __init__(self, admit: Callable[[str], Slot], endpoint: str = "stream") -> None:
        self.admit = admit
        self.endpoint = endpoint

    async def acquire(self, drained: Callable[[], Awaitable[None]], first: bool) -> Slot | None:
        try:
            return self.admit(self.endpoint)
        except OverloadedError:
            if first:
                raise
        await drained()
        return self.admit(self.endpoint)


class Queued:
    """Each segment waits up to `timeout` seconds for a slot (polled every `interval`), then is refused as
    `PerSegment` would refuse it: for callers that prefer a late segment to a failed one."""

    def __init__(self, admit: Callable[[str], Slot], timeout: float, *, endpoint: str = "stream", interval: float = 0.05):
        self.admit = admit
        self.timeout = timeout
        self.endpoint = endpoint
        self.interval = interval

    async def acquire(self, drained: Callable[[], Awaitable[None]], first: bool) -> Slot | None:
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return self.admit(self.endpoint)
            except OverloadedError:
                if time.monotonic() >= deadline:
                    raise
            await asyncio.sleep(self.interval)


# -- accounting ----------------------------------------------------------------------------------------------
class StreamObserver:
    """Told what a segment stream does; counts and logs it. Every hook is optional."""

    def job_made(self, stream: SegmentStream, job: SynthesisJob) -> None: ...

    def delivering(self, stream: SegmentStream, synthesis: Synthesis) -> None: ...

    def first_audio(self, stream: SegmentStream) -> None: ...

    def ended(self, stream: SegmentStream) -> None: ...


class SegmentAccounting(StreamObserver):
    """A WebSocket context: each segment is a request in the metrics, counted by its own synthesis."""

    def job_made(self, stream: SegmentStream, job: SynthesisJob) -> None:
        job.metered = True


class RequestAccounting(StreamObserver):
    """An HTTP request: its segments are one request, counted once and logged once at its end; one listener's
    playback clock across the seams (gaps, underruns and the slack the engine serves the most urgent by count
    them too); a segment after the first audio cannot answer an error status any more, so it speaks what it got."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics
        self._clock: PlaybackClock | None = None

    def job_made(self, stream: SegmentStream, job: SynthesisJob) -> None:
        job.metered = False
        index = job.segment
        job.request_id = f"{stream.request_id}-{index}" if index else stream.request_id  # logs, debug audio

    def delivering(self, stream: SegmentStream, synthesis: Synthesis) -> None:
        if self._clock is None:
            self._clock = synthesis.clock
        synthesis.clock = self._clock
        synthesis.salvage_early_error = stream.first_audio_at is not None

    def first_audio(self, stream: SegmentStream) -> None:
        assert stream.first_audio_at is not None
        self.metrics.ttfa.labels(stream.endpoint).observe(stream.first_audio_at - stream.started)

    def ended(self, stream: SegmentStream) -> None:
        u, m = stream.usage, self.metrics
        elapsed = time.perf_counter() - stream.started
        audio_seconds = u.samples / u.sample_rate / stream.output.speed
        m.requests.labels(stream.endpoint, stream.output.format, stream.outcome).inc()
        m.audio_seconds.labels(stream.endpoint).inc(audio_seconds)
        if stream.outcome == "completed":
            m.duration.labels(stream.endpoint).observe(elapsed)
            if audio_seconds > 0:
                m.rtf.labels(stream.endpoint).observe(elapsed / audio_seconds)
        ttfa = f"{(stream.first_audio_at - stream.started) * 1e3:.0f} ms" if stream.first_audio_at else "-"
        cut = f" (cut: segments {', '.join(map(str, u.cut_segments))})" if u.cut_segments else ""
        logger.info(
            "%s %s: %d segments (%d failed), %d speech tokens, %.2f s audio in %.2f s (ttfa %s), finish=%s%s",
            stream.request_id, stream.outcome, u.segments, u.failed_segments, u.speech_tokens,
            u.samples / u.sample_rate, elapsed, ttfa, u.finish_reason, cut,
        )  # fmt: skip


class ContextClaim(StreamObserver):
    """A `/v1/audio/speech` context id: the stream's last segment is stored under `key` once it completed (else
    nothing), for the next request of the conversation."""

    def __init__(self, contexts: ContextStore, key: Hashable, max_tokens: int) -> None:
        self.contexts = contexts
        self.key = key
        self.claim = contexts.claim(key)
        self.max_tokens = max_tokens

    def ended(self, stream: SegmentStream) -> None:
        last = stream.last_job
        value = last.as_context(self.max_tokens) if last is not None and stream.outcome == "completed" else None
        self.contexts.resolve(self.key, self.claim, value)
