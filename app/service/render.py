"""One way out: a segment stream rendered into the bytes of an `OutputSpec`, with each segment's timings when
they are asked for. Every path takes its audio from here (HTTP streamed, complete and SSE, both WebSockets,
ElevenLabs HTTP), so a new format, a new rate or a new kind of timing reaches all of them at once.

`Renderer.writer(spec)` is the one factory of `AudioWriter`s; `Renderer.pieces()` renders as the audio comes
(a `Piece` per segment event, then the encoder's tail); `Renderer.whole()` renders one complete file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import numpy as np

from app.audio.output import AudioWriter, OutputSpec
from app.service.requests import Delivery
from app.service.segments import SegmentEvent, SegmentStream
from app.service.timeline import Timeline, TimingSource
from app.service.timing import SegmentTimings


@dataclass(frozen=True)
class Piece:
    """What rendering yields: the bytes ready to send (maybe none: an encoder that buffers), the segment event
    they came with (None: the stream's end, `data` the encoder's tail; a failed segment of an HTTP request: the
    tail of the audio before it, its error raised next), and a segment's timings once it is done (timed
    renders only)."""

    data: bytes
    event: SegmentEvent | None
    timings: SegmentTimings | None = None


@dataclass(frozen=True)
class Whole:
    """A complete render: the file's bytes, the writer that made them (rate, encoding, content type) and, when
    timed, the timings of every segment joined over the whole audio."""

    audio: bytes
    writer: AudioWriter
    timings: SegmentTimings | None = None
    segments: tuple[SegmentTimings, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """An HTTP request ready to answer: its segment stream (its text queued, its `output` spec) and how the
    response carries it."""

    stream: SegmentStream
    delivery: Delivery


class Renderer:
    """Made once by the service: it knows the source's rate (the codec's, once loaded), the encoders' effort
    and where timings come from (the forced aligner, else the estimate)."""

    def __init__(self, source_rate: Callable[[], int], timing: TimingSource, *, complexity: int | None = None) -> None:
        self._source_rate = source_rate
        self.timing = timing
        self.complexity = complexity

    def writer(self, spec: OutputSpec, *, streaming: bool = True) -> AudioWriter:
        """The writer of `spec`; an offer the format lacks raises `UnsupportedFormat`, which lists what is."""
        return AudioWriter(
            spec.format, source_rate=self._source_rate(), speed=spec.speed, rate=spec.rate, encoding=spec.encoding,
            bit_rate=spec.bit_rate, complexity=self.complexity, streaming=streaming,
        )  # fmt: skip

    async def pieces(
        self, stream: SegmentStream, writer: AudioWriter, *, timed: bool = False, one_request: bool = False
    ) -> AsyncGenerator[Piece, None]:
        """`stream`'s events rendered by `writer` as they come, then the tail (`Piece(tail, None)`).

        `one_request` (an HTTP response): the first failed segment ends the render, its error raised after the
        audio already handed to the writer (and the container's end) went out; a text with nothing to speak is
        the stream's 400. Otherwise (a WebSocket context) a failed segment is an event like the others.
        Closing the generator closes the stream (its backend requests) and the writer."""
        timeline = Timeline(self.timing, writer) if timed else None
        events = stream.events()
        try:
            async for event in events:
                timings = None
                if event.kind == "audio":
                    if timeline is not None:
                        timeline.wrote(event.audio)
                    yield Piece(await writer.awrite(event.audio), event)
                    continue
                if event.kind == "pause":
                    yield Piece(await writer.apause(event.pause), event)
                    continue
                if event.kind == "started" and timeline is not None:
                    timeline.started()
                elif event.kind == "done" and timeline is not None:
                    timings = await timeline.done(event.normalized, event.spoken)
                elif event.kind == "error" and one_request:
                    error = stream.fail(event)
                    yield Piece(await writer.afinish(), event)  # what was delivered stays playable
                    raise error
                yield Piece(b"", event, timings)
            if one_request:
                stream.check_spoken()
            yield Piece(await writer.afinish(), None)
        finally:
            await events.aclose()
            writer.close()

    async def whole(self, stream: SegmentStream, writer: AudioWriter, *, timed: bool = False) -> Whole:
        """The complete file (a WAV with exact sizes, an MP3 with its LAME tag): every segment's audio, encoded
        at once once it is all there; an HTTP request's (the first failed segment's error raised)."""
        timeline = Timeline(self.timing, writer) if timed else None
        events = stream.events()
        parts: list[np.ndarray] = []
        pauses: list[tuple[int, float]] = []  # (source sample, seconds)
        source = 0
        try:
            async for event in events:
                if event.kind == "audio":
                    parts.append(event.audio)
                    source += len(event.audio)
                    if timeline is not None:
                        timeline.wrote(event.audio)
                elif event.kind == "pause":
                    writer.mark_pause(source, event.pause)  # where `position` counts it, before it is encoded
                    pauses.append((source, event.pause))
                elif event.kind == "started" and timeline is not None:
                    timeline.started()
                elif event.kind == "done" and timeline is not None:
                    await timeline.done(event.normalized, event.spoken)
                elif event.kind == "error":
                    raise stream.fail(event)
            stream.check_spoken()
            audio = await writer.aencode_all(np.concatenate(parts) if parts else np.zeros(0, np.float32), pauses)
        finally:
            await events.aclose()
            writer.close()
        if timeline is None:
            return Whole(audio, writer)
        segments = tuple(timeline.segments)
        return Whole(audio, writer, SegmentTimings.join(list(segments), writer.rate), segments)
