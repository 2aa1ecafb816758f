"""Streamed text in, ordered segment events out: the pipeline behind both WebSocket protocols.

`SegmentStream` takes text deltas (`push`, `flush`, `end`), cuts them into segments (`TextSegmenter`) and
synthesizes the segments one after another with `SpeechService`, each prompted with the previous one's speech
when context is on. `events()` yields `SegmentEvent`s in order; closing it (a client that went away) closes the
segment's backend request at once. `AudioOut` turns the float chunks into the session's audio format.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.audio.formats import make_encoder
from app.audio.pcm import float_to_int16
from app.audio.stretch import TimeStretcher
from app.errors import TTSError
from app.protocol import ResolvedGeneration
from app.serving import SpeechService, SynthesisJob
from app.streaming_input import SpeechContext, TextSegmenter

logger = logging.getLogger(__name__)

_INLINE_FORMATS = ("pcm", "wav")


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
class SegmentStream:
    """One voice's text stream: text deltas in, segment events out (one segment synthesized at a time)."""

    service: SpeechService
    voice: str
    gen: ResolvedGeneration
    normalize_malaysian: bool = True
    language: str = "auto"
    use_context: bool = True
    segmenter: TextSegmenter | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)

    def __post_init__(self) -> None:
        s = self.service.settings
        if self.segmenter is None:
            self.segmenter = TextSegmenter(
                max_chars=min(s.stream_segment_max_chars, s.max_input_chars),
                first_max_chars=min(s.stream_first_segment_chars, s.max_input_chars),
                max_wait=s.stream_segment_max_wait,
            )
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending_chars = 0
        self.ended = False
        self.busy = False  # a segment is being synthesized

    # -- input ------------------------------------------------------------------------------------
    def push(self, text: str) -> None:
        self.usage.input_chars += len(text)
        self._enqueue(self.segmenter.push(text, time.monotonic()))

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
    def idle(self) -> bool:
        return not self.busy and self._queue.empty()

    def _enqueue(self, segments: list[str]) -> None:
        for seg in segments:
            self._pending_chars += len(seg)
            self._queue.put_nowait(seg)

    # -- output -----------------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[SegmentEvent]:
        """Segment events in order until `end()`'s last segment is done."""
        service = self.service
        max_ctx = service.settings.stream_context_max_tokens
        previous: SpeechContext | None = None
        index = 0
        while True:
            raw = await self._queue.get()
            if raw is None:
                return
            self.busy = True
            try:
                self._pending_chars -= len(raw)
                try:  # each segment takes a request slot, like an HTTP request (429 when the server is full)
                    slot = service.admit("stream")
                except TTSError as exc:
                    self.usage.failed_segments += 1
                    previous = None
                    yield SegmentEvent("error", index, raw, "", error=exc)
                    index += 1
                    continue
                with slot:
                    text = await service.normalize(raw, self.normalize_malaysian, self.language)
                    if not text:
                        continue  # punctuation only: nothing to speak
                    try:
                        job = await service.prepare_segment(
                            self.voice, text, self.gen, context=previous if self.use_context else None, param="text"
                        )
                    except TTSError as exc:
                        self.usage.failed_segments += 1
                        previous = None
                        yield SegmentEvent("error", index, raw, text, error=exc)
                        index += 1
                        continue
                    yield SegmentEvent("started", index, raw, text, job=job)
                    chunks = service.synthesize(job)
                    try:
                        async for chunk in chunks:
                            yield SegmentEvent("audio", index, raw, text, audio=chunk, job=job)
                    except TTSError as exc:
                        self.usage.failed_segments += 1
                        previous = None
                        yield SegmentEvent("error", index, raw, text, job=job, error=exc)
                        index += 1
                        continue
                    finally:
                        await chunks.aclose()
                    previous = job.as_context(max_ctx)
                    u = self.usage
                    u.segments += 1
                    u.prompt_tokens += job.stats.prompt_tokens or 0
                    u.speech_tokens += len(job.tokens)
                    u.context_tokens += len(job.context.tokens) if job.context else 0
                    u.samples += job.samples_out
                    u.sample_rate = job.sample_rate
                    yield SegmentEvent("done", index, raw, text, job=job)
                    index += 1
            finally:
                self.busy = False


class AudioOut:
    """Float chunks -> the session's audio format (one continuous stream for all segments), time-stretched
    when `speed != 1`."""

    def __init__(self, fmt: str, speed: float, sample_rate: int) -> None:
        self.fmt = fmt
        self._encoder = make_encoder(fmt, sample_rate, streaming=True)
        self._stretcher = TimeStretcher(speed, sample_rate) if speed != 1.0 else None
        self._inline = fmt in _INLINE_FORMATS and self._stretcher is None
        self._lock = threading.Lock()
        self._closed = False

    def _convert(self, x: np.ndarray, last: bool) -> bytes:
        with self._lock:
            if self._closed:
                return b""
            if self._stretcher is not None:
                x = self._stretcher.process(x) if not last else self._stretcher.flush()
            data = self._encoder.encode(float_to_int16(x)) if len(x) else b""
            return data + self._encoder.finish() if last else data

    async def encode(self, chunk: np.ndarray) -> bytes:
        return self._convert(chunk, False) if self._inline else await asyncio.to_thread(self._convert, chunk, False)

    async def finish(self) -> bytes:
        empty = np.zeros(0, np.float32)
        return self._convert(empty, True) if self._inline else await asyncio.to_thread(self._convert, empty, True)

    def close(self) -> None:
        def close() -> None:
            with self._lock:
                if not self._closed:
                    self._closed = True
                    self._encoder.close()

        if self._inline:
            close()
        else:
            asyncio.get_running_loop().run_in_executor(None, close)
