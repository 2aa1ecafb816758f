"""Streamed text in, ordered segment events out: the pipeline behind both WebSocket protocols.

`TextSegmenter` cuts text deltas into segments (pure: sentence / length / time rules, the caller passes the
clock). `SegmentStream` takes the deltas (`push`, `flush`, `end`) and synthesizes the segments one after another
with `SpeechService`, each prompted with the previous one's speech when context is on. `events()` yields
`SegmentEvent`s in order; closing it (a client that went away) closes the segment's backend request at once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from app.errors import TTSError
from app.service.context import SpeechContext
from app.service.requests import ResolvedGeneration
from app.service.speech import SpeechService
from app.service.synthesis import SynthesisJob
from app.service.voice import Voice
from app.text.sentences import SentenceSplitter

_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]\s+|\s+[\u2014\u2013-]\s+")
_SPACES = re.compile(r"\s+")


class TextSegmenter:
    """Cuts streamed text into segments to synthesize, in order.

    - A sentence (the normalizer's splitter) is ready once the text after it has begun: the splitter needs the
      next character to tell "Dr. Tan" from a sentence end.
    - A buffer longer than `max_chars` (`first_max_chars` for the first segment, so the first audio does not
      wait for a long sentence) is cut at its last clause break (`,;:` or a dash), else its last space; so is
      a sentence longer than that.
    - Text that waited `max_wait` seconds since its first character is cut after its last complete word
      (`due_in` says when; `tick` applies it): an LLM that pauses mid-sentence does not hold the audio back.
    - `flush()` returns everything buffered.

    Work is linear in the text: runs of white space are kept as one space, the splitter only sees a window of
    `max_chars` past the segment start (resuming where its last look ended), and cut text is not copied again.
    """

    def __init__(
        self,
        *,
        max_chars: int = 250,
        first_max_chars: int | None = None,
        max_wait: float | None = 0.6,
        splitter: SentenceSplitter | None = None,
    ) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars or max_chars
        self.max_wait = max_wait
        self._splitter = splitter or SentenceSplitter()
        self._text = ""  # received text; what is before `_pos` has been cut off
        self._pos = 0
        self._scanned = 0  # the splitter found no sentence in `_text[_pos:_scanned]`
        self._since: float | None = None  # when the oldest buffered non-space character arrived
        self.segments_out = 0

    @property
    def buffered(self) -> str:
        return self._text[self._pos :]

    def push(self, text: str, now: float) -> list[str]:
        """Add a text delta; returns the segments it completes."""
        if not text:
            return []
        if self._since is None and not text.isspace():
            self._since = now
        text = _SPACES.sub(" ", text)
        if text.startswith(" ") and self._pos < len(self._text) and self._text.endswith(" "):
            text = text[1:]
        self._text += text
        out: list[str] = []
        while True:
            limit = self.first_max_chars if self.segments_out + len(out) == 0 else self.max_chars
            piece = self._next_sentence(limit)
            if piece is None:
                piece = self._cut_long(limit)
            if piece is None:
                break
            if piece:
                out.append(piece)
        return self._emitted(out, now)

    def due_in(self, now: float) -> float | None:
        """Seconds until the time rule fires (0 if due), None when it cannot (nothing buffered, or no rule)."""
        if self.max_wait is None or self._since is None or not self._last_word_end():
            return None
        return max(0.0, self._since + self.max_wait - now)

    def tick(self, now: float) -> list[str]:
        """Apply the time rule: the complete words of text that waited `max_wait` seconds."""
        due = self.due_in(now)
        if due is None or due > 0:
            return []
        end = self._last_word_end()
        return self._emitted([self._take(self._pos + end)], now)

    def flush(self) -> list[str]:
        """Everything buffered, as one segment (none if only spaces)."""
        piece = self._take(len(self._text))
        return self._emitted([piece], None)

    # -- rules ------------------------------------------------------------------------------------
    def _next_sentence(self, limit: int) -> str | None:
        """The first sentence, when it is complete and at most `limit` characters."""
        text, pos = self._text, self._pos
        stop = min(len(text), pos + limit + 4)  # a space, the sentence, a space and the next character
        start = pos
        if self._scanned - 2 > pos:  # resume at the start of the last word looked at: only a stop there, with
            space = text.rfind(" ", pos, self._scanned - 2)  # its space and next character, may end a sentence now
            start = space + 1 if space >= 0 else pos
        size = 32
        while True:  # a window that grows, so that a short sentence costs a short split
            end = min(stop, start + size)
            window = text[start:end]
            pieces = self._splitter.split(window)
            if len(pieces) >= 2:
                break
            if end == stop:
                self._scanned = stop
                return None
            size *= 2
        end = start + window.index(pieces[0]) + len(pieces[0])
        if len(text[pos:end].strip()) > limit:
            return None  # a long sentence: the length rule cuts it
        return self._take(end)

    def _cut_long(self, limit: int) -> str | None:
        text = self._text
        start = self._pos + 1 if text.startswith(" ", self._pos) else self._pos  # white space is one space
        if text[start + limit : start + limit + 2].isspace() or start + limit >= len(text):
            return None  # at most `limit` characters before the trailing space
        head = text[start : start + limit + 1]
        clauses = [m.end() for m in _CLAUSE_END.finditer(head)]
        if clauses:
            return self._take(start + clauses[-1])
        space = head.rfind(" ")
        if space > 0:
            return self._take(start + space)
        return self._take(start + limit)  # one very long "word": cut it rather than buffer without end

    def _last_word_end(self) -> int:
        """Where the buffer's last complete word ends (0: none). The last word is complete when a space follows."""
        buffer = self.buffered
        stripped = buffer.rstrip()
        if not stripped:
            return 0
        if len(stripped) < len(buffer):
            return len(stripped)
        space = stripped.rfind(" ")
        return len(stripped[:space].rstrip()) if space > 0 else 0

    def _take(self, end: int) -> str:
        piece = self._text[self._pos : end]
        self._pos = end
        return " ".join(piece.split())

    def _emitted(self, pieces: list[str], now: float | None) -> list[str]:
        pieces = [p for p in pieces if p]
        self.segments_out += len(pieces)
        if self._pos:  # what was cut off is dropped, so the text kept is never longer than the buffer
            self._text = self._text[self._pos :]
            self._scanned = max(0, self._scanned - self._pos)
            self._pos = 0
        if pieces:
            self._since = now if (now is not None and self._text.strip()) else None
        return pieces


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
    voice: Voice
    gen: ResolvedGeneration
    normalize_malaysian: bool = True
    language: str = "auto"
    use_context: bool = True
    segmenter: TextSegmenter | None = None
    usage: StreamUsage = field(default_factory=StreamUsage)

    def __post_init__(self) -> None:
        s = self.service.streaming
        if self.segmenter is None:
            self.segmenter = TextSegmenter(
                max_chars=s.segment_max_chars, first_max_chars=s.first_segment_chars, max_wait=s.segment_max_wait
            )
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._pending_chars = 0
        self.ended = False
        self.busy = False  # a segment is being synthesized
        self._index = 0  # the next segment's number
        self._previous: SpeechContext | None = None  # the last segment spoken, the next one's context

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
        while (raw := await self._queue.get()) is not None:
            self.busy = True
            try:
                self._pending_chars -= len(raw)
                try:  # each segment takes a request slot, like an HTTP request (429 when the server is full)
                    slot = service.admit("stream")
                except TTSError as exc:
                    yield self._failed(raw, "", exc)
                    continue
                with slot:
                    text = await service.normalize(raw, self.normalize_malaysian, self.language)
                    if not text:
                        continue  # punctuation only: nothing to speak
                    context = self._previous if self.use_context else None
                    try:
                        job = await service.prepare_segment(self.voice, text, self.gen, context=context, param="text")
                    except TTSError as exc:
                        yield self._failed(raw, text, exc)
                        continue
                    yield SegmentEvent("started", self._index, raw, text, job=job)
                    chunks = service.synthesize(job)
                    try:
                        async for chunk in chunks:
                            yield SegmentEvent("audio", self._index, raw, text, audio=chunk, job=job)
                    except TTSError as exc:
                        yield self._failed(raw, text, exc, job)
                        continue
                    finally:
                        await chunks.aclose()
                    yield self._done(raw, text, job)
            finally:
                self.busy = False

    def _failed(self, raw: str, text: str, exc: TTSError, job: SynthesisJob | None = None) -> SegmentEvent:
        """A segment that failed: counted, and the next one starts without context."""
        self.usage.failed_segments += 1
        self._previous = None
        event = SegmentEvent("error", self._index, raw, text, job=job, error=exc)
        self._index += 1
        return event

    def _done(self, raw: str, text: str, job: SynthesisJob) -> SegmentEvent:
        """A segment spoken: its usage counted, its speech the next one's context."""
        self._previous = job.as_context(self.service.streaming.context_max_tokens)
        u = self.usage
        u.segments += 1
        u.prompt_tokens += job.stats.prompt_tokens or 0
        u.speech_tokens += len(job.tokens)
        u.context_tokens += len(job.context.tokens) if job.context else 0
        u.samples += job.samples_out
        u.sample_rate = job.sample_rate
        event = SegmentEvent("done", self._index, raw, text, job=job)
        self._index += 1
        return event
