"""Where a reply's segments land in the audio one writer delivers, and each segment's timings once its audio is
complete: the one place every path (both WebSockets, SSE, the JSON body) takes them from."""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from app.align.result import CharSpan
from app.audio.output import AudioWriter
from app.engine.errors import EngineError
from app.service.timing import SegmentTimings, aligned, estimated
from app.text.offsets import Mapped

logger = logging.getLogger(__name__)


class TimingSource(Protocol):
    has_aligner: bool

    async def segment_timings(
        self, text: str, audio: np.ndarray | None, *, start: int, end: int, rate: int
    ) -> SegmentTimings: ...


class Aligner(Protocol):
    """The codec engine's side of alignment (app.engine.client.EngineClient)."""

    has_aligner: bool

    async def align(self, audio: np.ndarray, sample_rate: int, text: str): ...


class EngineTimings:
    """Timings from the engine's forced aligner when it has one, else the estimate (`TimingSource`)."""

    def __init__(self, engine: Aligner) -> None:
        self.engine = engine

    @property
    def has_aligner(self) -> bool:
        return self.engine.has_aligner

    async def align(self, audio: np.ndarray, text: str) -> list[CharSpan] | None:
        """Where each character of `text` (a segment's normalized text) is heard in `audio` (float32 at the
        codec's rate, as delivered before speed and rate changes): one `[start, end)` sample span per character,
        `source` "aligned". None when the engine has no aligner (ALIGNER_MODEL empty) or the alignment failed
        (logged): the caller keeps its estimate then. A segment's audio is aligned once it is complete."""
        if not self.engine.has_aligner:
            return None
        try:
            result = await self.engine.align(audio, self.engine.geometry.sample_rate, text)
        except EngineError as exc:
            logger.warning("alignment of a %d-character segment failed: %s", len(text), exc)
            return None
        return result.chars()

    async def segment_timings(
        self, text: str, audio: np.ndarray | None, *, start: int, end: int, rate: int
    ) -> SegmentTimings:
        """A segment's character timings over [start, end) of the delivered audio (samples at `rate`): the forced
        aligner's over the segment's own `audio` (the codec's output) when it has one and it succeeds, else the
        estimate. `source` says which."""
        spans = await self.align(audio, text) if audio is not None and len(audio) and text else None
        if spans:
            return aligned(
                text, [(c.start_sample, c.end_sample) for c in spans], source_samples=len(audio), start=start,
                end=end, rate=rate,
            )
        return estimated(text, start=start, end=end, rate=rate)


class Timeline:
    """Feed it what the writer is fed: `started()` at a segment's start, `wrote(chunk)` for each source chunk,
    `done(text)` at its end, which returns the segment's timings over [start, end) of the delivered audio
    (`writer.position` of the source samples so far: exact to the sample, after speed and resampling). The
    segment's own audio is kept only while the service has a forced aligner to give it to."""

    def __init__(self, service: TimingSource, writer: AudioWriter) -> None:
        self.service = service
        self.writer = writer
        self.source = 0  # source samples handed to the writer
        self.start = 0
        self._keep = service.has_aligner
        self._audio: list[np.ndarray] = []
        self.segments: list[SegmentTimings] = []  # every segment done, in order

    def started(self) -> None:
        self.start = self.writer.position(self.source)
        self._audio.clear()

    def wrote(self, chunk: np.ndarray) -> None:
        self.source += len(chunk)
        if self._keep:
            self._audio.append(chunk)

    async def done(self, text: str, spoken: Mapped | None = None) -> SegmentTimings:
        """`spoken`: `text` with its map back to the text as sent (each timed word names the characters it came
        from)."""
        end = self.writer.position(self.source)
        audio = np.concatenate(self._audio) if self._audio else None
        self._audio.clear()
        timings = await self.service.segment_timings(text, audio, start=self.start, end=end, rate=self.writer.rate)
        if spoken is not None and spoken.text == text:
            timings = timings.named(spoken.spans)
        self.segments.append(timings)
        return timings
