"""Text in, ordered segment events out: the one pipeline behind every text path (HTTP speech, SSE, voice
cloning and both WebSocket protocols).

`TextFeed` takes the text (`push`, `flush`, `end`; or `speak`, a whole text at once) and cuts it into segments
(app.text.segmenter: pure sentence / length / time rules). `SegmentStream` synthesizes the segments in order,
each prompted with the previous one's speech when context is on (a cloned voice: with its reference). The next
segment's backend request starts as soon as the previous one's tokens are complete, while that one is still being
decoded and sent (at most 1 + `lookahead` segments started and not yet delivered). `events()` yields
`SegmentEvent`s in order; closing it (a client that went away) closes every segment's backend request at once.

How segments are admitted and who counts them are given to the stream (app.service.segment_policy): the same
class serves an HTTP request (one slot held by the route, counted once) and a WebSocket context (a slot per
segment, each counted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Literal, Protocol

import numpy as np

from app.audio.output import OutputSpec
from app.errors import TTSError
from app.observability import tracing
from app.service.admission import Slot
from app.service.context import SpeechContext
from app.service.requests import ResolvedGeneration
from app.service.segment_policy import HeldByCaller, SegmentAdmission, StreamObserver, StreamUsage
from app.service.ssml_input import SsmlFeed
from app.service.synthesis import Synthesis, SynthesisJob
from app.service.text_input import require_speech
from app.service.voice import Voice
from app.settings import StreamingSettings
from app.text.document import TextDocument
from app.text.offsets import Mapped
from app.text.options import TextOptions
from app.text.segmenter import TextSegmenter, iter_document_segments, iter_whole_text_segments
from app.text.ssml_spans import pause_seconds


class SegmentMaker(Protocol):
    """What a stream needs to turn a segment's text into audio (the speech service)."""

    streaming: StreamingSettings

    async def read(self, text: str, options: TextOptions) -> Mapped: ...

    async def prepare_segment(
        self, voice: Voice, text: str, gen: ResolvedGeneration, *, context: SpeechContext | None = None, param: str = ...
    ) -> SynthesisJob: ...

    def synthesis(self, job: SynthesisJob) -> Synthesis: ...


@dataclass
class SegmentEvent:
    """`started` (text known), `audio` (a float32 chunk at 24 kHz), `pause` (that many seconds of silence, inserted
    at the delivered rate by the writer), `done` (with its job; a pause's: none), `error` (the segment failed; the
    stream goes on with the next one)."""

    kind: Literal["started", "audio", "pause", "done", "error"]
    index: int
    text: str
    normalized: str = ""
    audio: np.ndarray | None = None
    job: SynthesisJob | None = None
    error: TTSError | None = None
    spoken: Mapped | None = None  # `normalized` with its map back to the text as sent (`done` events)
    pause: float = 0.0  # a `pause` event's seconds of silence (SSML's `<break>`: a segment sent to no model)

    @property
    def finish_reason(self) -> str | None:
        """The backend's finish reason of this segment (`length`: cut at max_tokens or the context)."""
        return self.job.stats.finish_reason if self.job is not None else None


class TextFeed:
    """A stream's text, cut into segments and queued in order until `end()`. Before the first audio is out only
    the first segment is handed on: a second one's preparation (malaya's normalization holds the GIL), its cutting
    and its backend request's prefill must not slow the first audio (on this CPU they cost a long text 50-260 ms
    of time to first audio)."""

    def __init__(
        self, segmenter: TextSegmenter, streaming: StreamingSettings, usage: StreamUsage, *, ssml: bool = False
    ) -> None:
        self.segmenter = segmenter
        self.streaming = streaming
        self.usage = usage
        self.ssml = SsmlFeed(self, segmenter.max_chars) if ssml else None  # streamed SSML (app.service.ssml_input)
        self.ended = False
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending = 0  # characters queued and not yet taken
        self._rest: Iterator[str] | None = None  # a whole text's segments after its first (`speak`)

    def push(self, text: str) -> None:
        self.usage.input_chars += len(text)
        if self.ssml is not None:
            self.ssml.push(text)
        else:
            self._enqueue(self.segmenter.push(text, time.monotonic()))

    def push_plain(self, text: str) -> None:
        """Text to cut as plain text (already counted)."""
        self._enqueue(self.segmenter.push(text, time.monotonic()))

    def push_segments(self, segments: Iterable[str]) -> None:
        """Segments cut elsewhere (an SSML element's), queued in order (the segmenter's buffer taken before)."""
        self._enqueue(list(segments))

    def speak(self, text: str | TextDocument) -> None:
        """A whole text (an HTTP request) or document: its first segment queued and the input ended; the rest is
        cut as the stream reaches it, once the first audio is out."""
        s = self.streaming
        sizes = {"max_chars": s.segment_max_chars, "first_max_chars": s.first_segment_chars}
        if isinstance(text, TextDocument):
            self.usage.input_chars += len(text.source)
            segments = iter_document_segments(text, **sizes)
        else:
            self.usage.input_chars += len(text)
            segments = iter_whole_text_segments(text, **sizes)
        self._enqueue(list(islice(segments, 1)))
        self._rest = segments
        self.end()

    def flush(self) -> None:
        self._enqueue(self.segmenter.flush())
        if self.ssml is not None:
            self._enqueue(self.ssml.take_carry())

    def tick(self) -> None:
        self._enqueue(self.segmenter.tick(time.monotonic()))

    def due_in(self) -> float | None:
        return self.segmenter.due_in(time.monotonic())

    def end(self) -> None:
        """No more text: what is buffered becomes the last segment."""
        if not self.ended:
            if self.ssml is not None:
                self.ssml.end()
            self.flush()
            self.ended = True
            self._queue.put_nowait(None)

    @property
    def pending_chars(self) -> int:
        """Text received but not yet synthesized (buffered or queued)."""
        return self._pending + len(self.segmenter.buffered) + (self.ssml.buffered if self.ssml is not None else 0)

    @property
    def empty(self) -> bool:
        return self._queue.empty()

    def _enqueue(self, segments: Sequence[str]) -> None:
        if self.ssml is not None and segments:  # an inline SSML element waiting for the rest of its sentence
            segments = self.ssml.joined(segments)
        for seg in segments:
            self._pending += len(seg)
            self._queue.put_nowait(seg)

    def taken(self, raw: str) -> None:
        """A segment's synthesis begins: its text is no longer pending."""
        self._pending -= len(raw)

    async def segments(self, first_out: asyncio.Event, started: Callable[[], int]) -> AsyncGenerator[str, None]:
        """The segments in order until `end()`: the queue's, then a whole text's later ones (cut only now), each
        pending until `taken()`. None past the first is handed on before `first_out` is set, once a segment has
        started (`started()`): with none started yet (the first had nothing to speak) the next one is the first."""
        while True:
            if started():
                await first_out.wait()
            if (raw := await self._queue.get()) is None:
                break
            yield raw
        if self._rest is not None:
            for raw in self._rest:
                if started():
                    await first_out.wait()
                self._pending += len(raw)
                yield raw


@dataclass
class _Segment:
    """A segment taken from the feed: prepared and its backend request started, or failed before that."""

    index: int
    raw: str
    text: str = ""
    spoken: Mapped | None = None
    job: SynthesisJob | None = None
    synthesis: Synthesis | None = None
    slot: Slot | None = None
    error: TTSError | None = None
    finished: bool = False
    pause: float | None = None  # a pause's seconds: no slot, no backend request

    def release(self) -> None:
        if self.slot is not None:
            self.slot.release()
            self.slot = None

    async def close(self) -> None:
        if self.synthesis is not None:
            await self.synthesis.aclose()
        self.release()


@dataclass
class SegmentStream:
    """One voice's text stream: text in (`feed`), segment events out, one segment's backend request ahead at most.

    `admission` says how each segment is admitted (default: the caller holds a slot for the whole stream);
    `observers` count and log it (app.service.segment_policy)."""

    service: SegmentMaker
    voice: str | Voice  # a built-in voice's name, or the `Voice` it resolved to; after init: its name (`speaker`: the Voice)
    gen: ResolvedGeneration
    output: OutputSpec = field(default_factory=OutputSpec)
    text: TextOptions = TextOptions()  # how its text is read
    use_context: bool = True
    segmenter: TextSegmenter | None = None
    lookahead: int | None = None  # segments started ahead of the one being spoken; None: STREAM_LOOKAHEAD_SEGMENTS
    admission: SegmentAdmission = field(default_factory=HeldByCaller)
    observers: list[StreamObserver] = field(default_factory=list)
    ssml: bool = False  # its text is streamed SSML (a WebSocket's config flag, ElevenLabs' enable_ssml_parsing)
    endpoint: str = "speech"  # the metrics label of its jobs
    param: str = "text"  # the request field the text came from (its errors name it)
    prompt_param: str | None = None  # the field a prompt too long for the context is blamed on (None: `param`)
    context: SpeechContext | None = None  # the first segment's context (a /v1/audio/speech context id)
    request_id: str = field(default_factory=tracing.request_id)  # the client's X-Request-Id, or ours
    unused: list[str] = field(default_factory=list)  # what the request asked that is not applied (its response says)
    started: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        s = self.service.streaming
        segmenter = self.segmenter or TextSegmenter(
            max_chars=s.segment_max_chars, first_max_chars=s.first_segment_chars, max_wait=s.segment_max_wait
        )
        if isinstance(self.voice, Voice):
            self.speaker, self.voice = self.voice, self.voice.name
        else:
            self.speaker = Voice.builtin(self.voice)
        self.usage = StreamUsage()
        self.feed = TextFeed(segmenter, s, self.usage, ssml=self.ssml)
        self._active = 0  # segments taken from the feed and not yet delivered
        self._index = 0  # the next segment's number
        self._open = 0  # segments started (or failed) and not yet delivered
        self._drained = asyncio.Event()  # set while `_open` is 0
        self._drained.set()
        self.first_audio_at: float | None = None
        # set once the first audio has been taken and the consumer asks for more (its bytes are out), or the first
        # segment ended without audio: no look-ahead's preparation or prefill competes with the first audio
        self._first_delivered = asyncio.Event()
        self.outcome = "failed"
        self.last_job: SynthesisJob | None = None  # the last segment spoken
        self._spoken: list[str] = []  # the normalized text of each segment spoken

    @property
    def ssml_ignored(self) -> tuple[str, ...]:
        """What its SSML held that was not applied (app.service.ssml_input), each named once."""
        return tuple(dict.fromkeys(self.usage.ssml_ignored))

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
        return not self.busy and self.feed.empty

    def fail(self, event: SegmentEvent) -> TTSError:
        """A failed segment ends the request it belongs to (an HTTP request: not a client gone); its error."""
        assert event.error is not None
        self.outcome = "failed-segment"
        return event.error

    def check_spoken(self) -> None:
        """A text with nothing to speak is a 400 naming `param`."""
        if self.usage.segments == 0 and self.usage.pauses == 0:
            require_speech("", self.param)

    # -- output -----------------------------------------------------------------------------------
    async def events(self) -> AsyncGenerator[SegmentEvent, None]:
        """Segment events in order until the feed's last segment is done."""
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
                for observer in self.observers:
                    observer.ended(self)

    def _take_ready(self) -> list[_Segment]:
        taken = []
        while not self._ready.empty():
            if (seg := self._ready.get_nowait()) is not None:
                taken.append(seg)
        return taken

    async def _run_ahead(self) -> None:
        """Takes the segments in order and starts each one's backend request: when a place is free (`lookahead`)
        and the previous segment's tokens are complete (its speech is this one's context)."""
        previous: _Segment | None = None
        try:
            async for raw in self.feed.segments(self._first_delivered, lambda: self._index):
                self._active += 1
                await self._room.acquire()
                self.feed.taken(raw)
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
                if seg.pause is None:  # the speech after a pause continues from the speech before it
                    previous = seg
        finally:
            self._ready.put_nowait(None)

    async def _start(self, raw: str, context: SpeechContext | None) -> _Segment | None:
        service = self.service
        seg = _Segment(self._index, raw)
        if (seconds := pause_seconds(raw)) is not None:
            seg.pause, seg.spoken = seconds, Mapped("", ())
            self._index += 1
            return seg
        try:
            seg.slot = await self.admission.acquire(self._drained.wait, first=self._open == 0)
            seg.spoken = await service.read(raw, self.text)
            seg.text = seg.spoken.text
            if not seg.text:
                seg.release()
                return None
            job = await service.prepare_segment(
                self.speaker, seg.text, self.gen, context=context, param=self.prompt_param or self.param
            )
            job.endpoint, job.segment, job.output = self.endpoint, seg.index, self.output
            for observer in self.observers:
                observer.job_made(self, job)
            seg.job = job
            seg.synthesis = service.synthesis(job)
            if self._open:  # a look-ahead: its backend request starts now (else the consumer starts it at once)
                seg.synthesis.start()
        except TTSError as exc:
            seg.error = exc
            seg.release()
        except BaseException:
            seg.release()
            raise
        self._index += 1
        return seg

    async def _deliver(self, seg: _Segment) -> AsyncGenerator[SegmentEvent, None]:
        if seg.pause is not None:
            yield SegmentEvent("started", seg.index, seg.raw)
            yield SegmentEvent("pause", seg.index, seg.raw, pause=seg.pause)
            self.usage.pauses += 1
            self._first_delivered.set()
            yield SegmentEvent("done", seg.index, seg.raw, spoken=seg.spoken, pause=seg.pause)
            return
        if seg.error is not None or seg.synthesis is None or seg.job is None:
            self._first_delivered.set()
            yield self._failed(seg, seg.error or TTSError("segment not started"))
            return
        job = seg.job
        yield SegmentEvent("started", seg.index, seg.raw, seg.text, job=job)
        for observer in self.observers:
            observer.delivering(self, seg.synthesis)
        chunks = seg.synthesis.chunks()
        try:
            async for chunk in chunks:
                first = self.first_audio_at is None
                if first:
                    self.first_audio_at = time.perf_counter()
                    for observer in self.observers:
                        observer.first_audio(self)
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
        self.last_job = job
        self._spoken.append(job.text)
        self.usage.add(job)
        yield SegmentEvent("done", seg.index, seg.raw, seg.text, job=job, spoken=seg.spoken)

    async def _finish(self, seg: _Segment) -> None:
        """A segment delivered (or dropped): its backend request closed, its slot and place given back."""
        await seg.close()
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
