"""Text in, ordered segment events out: the one pipeline behind every text path (HTTP speech, SSE, voice
cloning and both WebSocket protocols).

The text is cut into segments by app.text.segmenter (pure: sentence / length / time rules, the caller passes the
clock). `SegmentStream` takes the deltas (`push`, `flush`, `end`; or `speak`, a whole text at once) and
synthesizes the segments in order with `SpeechService`, each prompted with the previous one's speech when context
is on (a cloned voice: with its reference). The next segment's backend request starts as soon as the previous
one's tokens are complete, while that one is still being decoded and sent (`Lookahead`: at most 1 + `ahead`
segments started and not yet delivered). `events()` yields `SegmentEvent`s in order; closing it (a client that
went away) closes every segment's backend request at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncGenerator, Hashable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Literal

import numpy as np

from app.errors import TTSError
from app.observability.metrics import PlaybackClock
from app.service.context import SpeechContext
from app.service.requests import ResolvedGeneration
from app.service.synthesis import Synthesis, SynthesisJob
from app.service.text_input import require_speech
from app.service.voice import Voice
from app.text.segmenter import TextSegmenter, iter_whole_text_segments

if TYPE_CHECKING:
    from app.service.admission import Slot
    from app.service.speech import SpeechService
    from app.service.timeline import Timeline

logger = logging.getLogger(__name__)

@dataclass
class SegmentEvent:
    """`started` (text known), `audio` (a float32 chunk at 24 kHz), `done` (with its job), `error` (the segment
    failed; the stream goes on with the next one)."""

    kind: Literal["started", "audio", "done", "error"]
    index: int
    text: str
    normalized: str = ""
    audio: np.ndarray | None = None
    job: SynthesisJob | None = None
    error: TTSError | None = None

    @property
    def finish_reason(self) -> str | None:
        """The backend's finish reason of this segment (`length`: cut at max_tokens or the context)."""
        return self.job.stats.finish_reason if self.job is not None else None


@dataclass
class StreamUsage:
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

    @property
    def finish_reason(self) -> str:
        """`length` when any segment was cut short (max_tokens or the model's context), else `stop`."""
        return "length" if self.cut_segments else "stop"

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


@dataclass
class _Segment:
    """A segment taken from the queue: prepared and its backend request started, or failed before that."""

    index: int
    raw: str
    text: str = ""
    job: SynthesisJob | None = None
    synthesis: Synthesis | None = None
    slot: Slot | None = None
    error: TTSError | None = None
    finished: bool = False

    async def close(self) -> None:
        if self.synthesis is not None:
            await self.synthesis.aclose()
        if self.slot is not None:
            self.slot.release()


@dataclass
class SegmentStream:
    """One voice's text stream: text in, segment events out, one segment's backend request ahead at most
    (`lookahead`).

    A WebSocket context (`one_request=False`): each segment takes a request slot of its own (a 429 is that
    segment's error; a look-ahead segment that finds no slot waits for its turn and tries again) and counts as
    a request in the metrics; a failed segment is an error event and the stream goes on. An HTTP request
    (`one_request=True`, `speak`): the route holds one slot for the whole request, the request is counted once,
    and `audio()` ends with the first failed segment's error.
    """

    service: SpeechService
    voice: str | Voice  # a built-in voice's name, or the `Voice` it resolved to; after init: its name (`speaker`: the Voice)
    gen: ResolvedGeneration
    normalize_malaysian: bool = True
    language: str = "auto"
    use_context: bool = True
    segmenter: TextSegmenter | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)
    lookahead: int | None = None  # segments started ahead of the one being spoken; None: STREAM_LOOKAHEAD_SEGMENTS
    one_request: bool = False
    endpoint: str = "speech"  # the metrics label of its jobs
    param: str = "text"  # the request field the text came from (its errors name it)
    prompt_param: str | None = None  # the field a prompt too long for the context is blamed on (None: `param`)
    context: SpeechContext | None = None  # the first segment's context (a /v1/audio/speech context id)
    context_claim: tuple[Hashable, asyncio.Future] | None = None  # a context key to store the last segment under
    request_id: str = field(default_factory=lambda: f"tts-{uuid.uuid4().hex[:16]}")
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        s = self.service.streaming
        if self.segmenter is None:
            self.segmenter = TextSegmenter(
                max_chars=s.segment_max_chars, first_max_chars=s.first_segment_chars, max_wait=s.segment_max_wait
            )
        if isinstance(self.voice, Voice):
            self.speaker, self.voice = self.voice, self.voice.name
        else:
            self.speaker = Voice.builtin(self.voice)
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending_chars = 0
        self.ended = False
        self._active = 0  # segments taken from the queue and not yet delivered
        self._index = 0  # the next segment's number
        self._open = 0  # segments started (or failed) and not yet delivered
        self._drained = asyncio.Event()  # set while `_open` is 0
        self._drained.set()
        self.first_audio_at: float | None = None
        # set once the first audio has been taken and the consumer asks for more (its bytes are out), or the first
        # segment ended without audio: no look-ahead's preparation or prefill competes with the first audio
        self._first_delivered = asyncio.Event()
        self.outcome = "failed"
        self._last: SynthesisJob | None = None  # the last segment spoken
        self._rest: Iterator[str] | None = None  # a whole text's segments after its first (`speak`)
        self._spoken: list[str] = []  # the normalized text of each segment spoken
        self._clock: PlaybackClock | None = None  # an HTTP request's, shared by its segments

    # -- input ------------------------------------------------------------------------------------
    def push(self, text: str) -> None:
        self.usage.input_chars += len(text)
        self._enqueue(self.segmenter.push(text, time.monotonic()))

    def speak(self, text: str) -> None:
        """A whole text (an HTTP request): its first segment (`iter_whole_text_segments`) queued and the stream
        ended; the rest of the text is cut as the runner reaches it, once the first audio is out."""
        self.usage.input_chars += len(text)
        s = self.service.streaming
        segments = iter_whole_text_segments(text, max_chars=s.segment_max_chars, first_max_chars=s.first_segment_chars)
        self._enqueue(list(islice(segments, 1)))
        self._rest = segments
        self.end()

    def flush(self) -> None:
        self._enqueue(self.segmenter.flush())

    def tick(self) -> None:
        self._enqueue(self.segmenter.tick(time.monotonic()))

    def due_in(self) -> float | None:
        return self.segmenter.due_in(time.monotonic())

    def end(self) -> None:
        """No more text: what is buffered becomes the last segment."""
        if not self.ended:
            self.flush()
            self.ended = True
            self._queue.put_nowait(None)

    @property
    def pending_chars(self) -> int:
        """Text received but not yet synthesized (buffered or queued)."""
        return self._pending_chars + len(self.segmenter.buffered)

    @property
    def spoken_text(self) -> str:
        """The normalized text of every segment spoken so far, joined (what word timings are placed over)."""
        return " ".join(self._spoken)

    @property
    def busy(self) -> bool:
        """A segment is being prepared, generated or spoken."""
        return self._active > 0

    @property
    def idle(self) -> bool:
        return not self.busy and self._queue.empty()

    def _enqueue(self, segments: list[str]) -> None:
        for seg in segments:
            self._pending_chars += len(seg)
            self._queue.put_nowait(seg)

    # -- output -----------------------------------------------------------------------------------
    async def events(self) -> AsyncGenerator[SegmentEvent, None]:
        """Segment events in order until `end()`'s last segment is done."""
        ahead = self.lookahead if self.lookahead is not None else self.service.streaming.lookahead_segments
        self._room = asyncio.Semaphore(1 + max(0, ahead))
        self._ready: asyncio.Queue[_Segment | None] = asyncio.Queue()
        runner = asyncio.create_task(self._run_ahead(), name=f"{self.request_id}-segments")
        current: _Segment | None = None
        delivering: AsyncGenerator[SegmentEvent, None] | None = None
        try:
            while (current := await self._ready.get()) is not None:
                delivering = self._deliver(current)
                async for event in delivering:
                    yield event
                    self.usage.delivered_samples += len(event.audio) if event.audio is not None else 0  # taken
                await self._finish(current)
            await asyncio.wait((runner,))
            if (error := runner.exception()) is not None:
                raise error  # a bug in the runner: not hidden behind a clean end
            self.outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            if self.outcome != "failed-segment":
                self.outcome = "cancelled"
            raise
        finally:
            # every segment's backend request, the ones started ahead included: cancelled at once (no await
            # before, so a second cancellation cannot leave one generating), then closed in order
            runner.cancel()
            started = [current] if current is not None else []
            started += self._take_ready()
            for seg in started:
                if seg.synthesis is not None:
                    seg.synthesis.cancel()
            try:
                if delivering is not None:
                    await delivering.aclose()  # the segment being spoken: its chunks closed
                await asyncio.wait((runner,))
                started += self._take_ready()
                for seg in started:
                    await self._finish(seg)
            finally:  # ended even where a cancelled scope (anyio's, a StreamingResponse's) cancels every await
                if self.outcome == "failed-segment":
                    self.outcome = "failed"
                self._end()

    def _take_ready(self) -> list[_Segment]:
        taken = []
        while not self._ready.empty():
            if (seg := self._ready.get_nowait()) is not None:
                taken.append(seg)
        return taken

    async def audio(self, timeline: Timeline | None = None) -> AsyncGenerator[np.ndarray, None]:
        """An HTTP request's audio: every segment's chunks in order. A failed segment's error is raised after
        its salvaged audio (the request ends there); a text with nothing to speak is a 400 naming `param`.
        `timeline` (word timings asked for) is told each segment's start, chunks and end as they pass, so each
        segment's timings are ready (`timeline.segments`) once its audio has been yielded."""
        events = self.events()
        try:
            async for event in events:
                if event.kind == "audio":
                    if timeline is not None:
                        timeline.wrote(event.audio)
                    yield event.audio
                elif event.kind == "started" and timeline is not None:
                    timeline.started()
                elif event.kind == "done" and timeline is not None:
                    await timeline.done(event.normalized)
                elif event.kind == "error":
                    self.outcome = "failed-segment"  # the request fails with it (not a client gone)
                    raise event.error
            if self.usage.segments == 0:
                require_speech("", self.param)
        finally:
            await events.aclose()

    async def _run_ahead(self) -> None:
        """Takes the segments in order (`_queued`: none past the first before the first audio is out) and starts
        each one's backend request: when a place is free (`lookahead`) and the previous segment's tokens are
        complete (its speech is this one's context)."""
        previous: _Segment | None = None
        try:
            async for raw in self._queued():
                self._active += 1
                await self._room.acquire()
                self._pending_chars -= len(raw)  # its synthesis begins
                context = self.context if previous is None else None
                if previous is not None and previous.synthesis is not None:
                    ok = await previous.synthesis.tokens_done()
                    if ok and previous.error is None and previous.job is not None:
                        context = previous.job.as_context(self.service.streaming.context_max_tokens)
                seg = await self._start(raw, context if self.use_context else None)
                if seg is None:  # nothing to speak: no event, no number
                    self._room.release()
                    self._active -= 1
                    continue
                self._open += 1
                self._drained.clear()
                self._ready.put_nowait(seg)
                previous = seg
        finally:
            self._ready.put_nowait(None)

    async def _queued(self) -> AsyncGenerator[str, None]:
        """The segments in order until `end()`: the queue's, then a whole text's later ones (cut from it only
        now). None is taken before the first audio is out once a segment has started: a second segment's
        preparation (malaya's normalization holds the GIL), its cutting and its backend request's prefill must
        not slow the first audio on its way out (on this CPU they cost a long text 50-260 ms of time to first
        audio). With no segment started yet (the first had nothing to speak) the next one is the first."""
        while True:
            if self._index:
                await self._first_delivered.wait()
            if (raw := await self._queue.get()) is None:
                break
            yield raw
        if self._rest is not None:
            if self._index:
                await self._first_delivered.wait()
            for raw in self._rest:
                self._pending_chars += len(raw)  # taken off again as its synthesis begins
                yield raw

    async def _start(self, raw: str, context: SpeechContext | None) -> _Segment | None:
        service = self.service
        seg = _Segment(self._index, raw)
        try:
            if not self.one_request:  # each segment takes a request slot, like an HTTP request (429 when full)
                try:
                    seg.slot = service.admit("stream")
                except TTSError:
                    if self._open == 0:
                        raise
                    await self._drained.wait()  # a look-ahead finds the server full: wait for its turn, then ask again
                    seg.slot = service.admit("stream")
            seg.text = await service.normalize(raw, self.normalize_malaysian, self.language)
            if not seg.text:
                if seg.slot is not None:
                    seg.slot.release()
                return None
            job = await service.prepare_segment(
                self.speaker, seg.text, self.gen, context=context, param=self.prompt_param or self.param
            )
            job.endpoint, job.segment, job.metered = self.endpoint, seg.index, not self.one_request
            if self.one_request:  # the request's id; a later segment's with its number (logs, debug audio)
                job.request_id = f"{self.request_id}-{seg.index}" if seg.index else self.request_id
            seg.job = job
            seg.synthesis = service.synthesis(job)
            if self._open:  # a look-ahead: its backend request starts now (else the consumer starts it at once)
                seg.synthesis.start()
        except TTSError as exc:
            seg.error = exc
            if seg.slot is not None:
                seg.slot.release()
                seg.slot = None
        except BaseException:
            if seg.slot is not None:
                seg.slot.release()
            raise
        self._index += 1
        return seg

    async def _deliver(self, seg: _Segment) -> AsyncGenerator[SegmentEvent, None]:
        if seg.error is not None or seg.synthesis is None or seg.job is None:
            self._first_delivered.set()
            yield self._failed(seg, seg.error or TTSError("segment not started"))
            return
        job = seg.job
        yield SegmentEvent("started", seg.index, seg.raw, seg.text, job=job)
        if self.one_request:
            # one listener for the whole request: its playback clock goes on across the seams (gaps, underruns
            # and the slack the engine serves the most urgent by count the seams too)
            if self._clock is None:
                self._clock = seg.synthesis.clock
            seg.synthesis.clock = self._clock
            # a request that has sent audio cannot answer an error status any more: speak what was given
            seg.synthesis.salvage_early_error = self.first_audio_at is not None
        chunks = seg.synthesis.chunks()
        try:
            async for chunk in chunks:
                first = self.first_audio_at is None
                if first:
                    self.first_audio_at = time.perf_counter()
                    if self.one_request:
                        self.service.metrics.ttfa.labels(self.endpoint).observe(self.first_audio_at - self.started)
                yield SegmentEvent("audio", seg.index, seg.raw, seg.text, audio=chunk, job=job)
                if first:
                    # the consumer is back for more: the first audio has been written out (sent to the socket)
                    self._first_delivered.set()
        except TTSError as exc:
            yield self._failed(seg, exc)
            return
        finally:
            self._first_delivered.set()  # a first segment without audio (or failed) holds nothing back
            await chunks.aclose()
        yield self._done(seg)

    async def _finish(self, seg: _Segment) -> None:
        """A segment delivered (or dropped): its backend request closed, its slot and place given back."""
        await seg.close()
        seg.slot = None
        if not seg.finished:
            seg.finished = True
            self._open -= 1
            self._active -= 1
            self._room.release()
            if self._open == 0:
                self._drained.set()

    def _failed(self, seg: _Segment, exc: TTSError) -> SegmentEvent:
        """A segment that failed: counted (a next one not yet started is prompted without its context)."""
        seg.error = exc
        self.usage.failed_segments += 1
        return SegmentEvent("error", seg.index, seg.raw, seg.text, job=seg.job, error=exc)

    def _done(self, seg: _Segment) -> SegmentEvent:
        """A segment spoken: its usage counted."""
        job = seg.job
        assert job is not None
        self._last = job
        self._spoken.append(job.text)
        u = self.usage
        u.segments += 1
        u.prompt_tokens += job.stats.prompt_tokens or 0
        u.speech_tokens += len(job.tokens)
        u.context_tokens += len(job.context.tokens) if job.context else 0
        u.samples += job.samples_out
        u.sample_rate = job.sample_rate
        if job.stats.finish_reason == "length":
            u.cut_segments.append(seg.index)
        return SegmentEvent("done", seg.index, seg.raw, seg.text, job=job)

    # -- the end ----------------------------------------------------------------------------------
    def _end(self) -> None:
        """The context id's claim resolved; an HTTP request counted once in the metrics and logged."""
        if self.service.usage is not None:  # every request and WebSocket context, however it ended
            self.service.usage.record(self)
        if self.context_claim is not None:
            key, claim = self.context_claim
            self.context_claim = None
            last = self._last
            value = last.as_context(self.service.streaming.context_max_tokens) if last and self.outcome == "completed" else None
            self.service.contexts.resolve(key, claim, value)
        if not self.one_request:
            return
        u, m = self.usage, self.service.metrics
        elapsed = time.perf_counter() - self.started
        audio_seconds = u.samples / u.sample_rate / self.gen.speed
        m.requests.labels(self.endpoint, self.gen.response_format, self.outcome).inc()
        m.audio_seconds.labels(self.endpoint).inc(audio_seconds)
        if self.outcome == "completed":
            m.duration.labels(self.endpoint).observe(elapsed)
            if audio_seconds > 0:
                m.rtf.labels(self.endpoint).observe(elapsed / audio_seconds)
        ttfa = f"{(self.first_audio_at - self.started) * 1e3:.0f} ms" if self.first_audio_at else "-"
        cut = f" (cut: segments {', '.join(map(str, u.cut_segments))})" if u.cut_segments else ""
        logger.info(
            "%s %s: %d segments (%d failed), %d speech tokens, %.2f s audio in %.2f s (ttfa %s), finish=%s%s",
            self.request_id, self.outcome, u.segments, u.failed_segments, u.speech_tokens,
            u.samples / u.sample_rate, elapsed, ttfa, u.finish_reason, cut,
        )
