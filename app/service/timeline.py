"""Where a reply's segments land in the audio one writer delivers, and each segment's timings once its audio is
complete: the one place every path (both WebSockets, SSE, the JSON body) takes them from."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from app.audio.output import AudioWriter
from app.service.timing import SegmentTimings
from app.text.offsets import Mapped


class TimingSource(Protocol):
    has_aligner: bool

    async def segment_timings(
        self, text: str, audio: np.ndarray | None, *, start: int, end: int, rate: int
    ) -> SegmentTimings: ...


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
