"""The one way from decoded audio to delivered bytes, for every caller (streamed HTTP, complete files, SSE, the
WebSocket protocols).

float32 windows at the source's rate -> time stretch (`speed`) -> resampling to the asked rate -> sample
encoding -> container -> bytes. Each stage is the identity when it has nothing to do.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from app.audio.registry import OutputFormat, output_format
from app.audio.resample import StreamResampler
from app.audio.stretch import TimeStretcher

_EMPTY = np.zeros(0, np.float32)


@dataclass(frozen=True)
class OutputSpec:
    """How a response's audio leaves, whatever carries it: the registry's format, the rate (None: the source's),
    the sample encoding (None: the format's default), the playback speed (time stretch) and a lossy codec's bit
    rate (None: its default). Sampling and chunking are the generation's business, not this."""

    format: str = "pcm"
    rate: int | None = None
    encoding: str | None = None
    speed: float = 1.0
    bit_rate: int | None = None


class AudioWriter:
    """One response's audio: `write(chunk) -> bytes` as audio arrives, then `finish() -> bytes` (the tail and the
    container's end); or `encode_all(audio)` for a whole file at once. With `streaming=False` the bytes are one
    complete file (a WAV with exact sizes, an MP3 with its LAME tag) and may all come from `finish()`.

    The async twins (`awrite`, `afinish`, `aencode_all`) run cheap formats on the event loop and the rest in a
    worker thread. `close()` may be called at any time, from any thread, as often as wanted: if a thread is
    encoding, the encoder is released when that thread is done. Writes after `close()` return `b""`.
    One caller at a time: overlapping writes raise `RuntimeError`.
    """

    def __init__(
        self,
        fmt: str | OutputFormat,
        *,
        source_rate: int,
        speed: float = 1.0,
        rate: int | None = None,
        encoding: str | None = None,
        bit_rate: int | None = None,
        complexity: int | None = None,
        streaming: bool = True,
    ) -> None:
        """`rate=None`: the source's rate; another must be one the format offers, as must `encoding` (None: the
        format's default; registry). `bit_rate`: the lossy codecs' bits per second (None: their default);
        `complexity`: the effort of an encoder that has one (opus 0-10; None: its default).
        A format, rate or encoding not offered raises `UnsupportedFormat`, which lists what is."""
        self.format = output_format(fmt) if isinstance(fmt, str) else fmt
        self.source_rate = source_rate
        self.rate = source_rate if rate is None or rate == source_rate else self.format.check_rate(rate)
        self.encoding = self.format.encoding(encoding)
        self.streaming = streaming
        self._speed = speed
        self._stretcher, self._resampler = self._stages()
        self._marks: list[tuple[int, int]] = []  # (source samples, delivered samples) after each pause
        self._encoder = self.format.encoder(
            self.rate, streaming=streaming, encoding=self.encoding, bit_rate=bit_rate, complexity=complexity
        )
        # soxr takes ~0.2 ms of CPU per audio-second: less than a hop to a worker thread costs
        self.inline = self.format.inline and self._stretcher is None
        """Whether the async methods encode on the event loop: cheap formats, resampled or not, unstretched."""
        self.samples_in = 0  # source samples written
        self.samples_out = 0  # delivered samples (after speed and resampling) handed to the encoder
        self._lock = threading.Lock()  # guards the three flags below, never held while encoding
        self._busy = False
        self._finished = False
        self._closed = False

    @property
    def content_type(self) -> str:
        return self.format.content_type

    def position(self, source_samples: int) -> int:
        """The delivered sample where source sample `source_samples` lands: the stages keep their totals exact
        (the stretcher gives round(n / speed) samples, soxr floor(n / (source_rate / rate) + 0.5), its own double
        arithmetic), so the end of the stream is exact to the sample and a position inside it is where that
        source sample's audio is."""
        base_in, base_out = 0, 0
        for at, out in self._marks:  # a pause: the stages began again after it, its silence delivered
            if source_samples >= at:
                base_in, base_out = at, out
        source_samples -= base_in
        n = round(source_samples / self._stretcher.speed) if self._stretcher is not None else source_samples
        return base_out + (math.floor(n / (self.source_rate / self.rate) + 0.5) if self._resampler is not None else n)

    # -- sync: the audio maths, on whichever thread calls -------------------------------------------------------
    def write(self, chunk: np.ndarray) -> bytes:
        """`(T,) float32` at the source rate -> the bytes that are ready (maybe `b""` while stages buffer)."""
        return self._run(self._write, chunk)

    def pause(self, seconds: float) -> bytes:
        """Silence: what the stages hold of the audio before it, then exactly `round(rate * seconds)` zero samples
        at the delivered rate (SSML's `<break>`); the stages begin again after it, so the audio after it is where it
        would be after the silence. `position` counts it."""
        return self._run(self._pause, seconds)

    def finish(self) -> bytes:
        """What the stages still hold, and the container's end. Allowed after a failed `write()`."""
        return self._run(self._finish)

    def encode_all(self, audio: np.ndarray, pauses: Sequence[tuple[int, float]] = ()) -> bytes:
        """A whole signal in one go: `write(audio) + finish()`, each stage run once on all of it; `pauses`: (source
        sample, seconds) where `pause(seconds)` goes, in order."""
        return self._run(self._encode_all, audio, pauses)

    # -- async: inline or in a worker thread ---------------------------------------------------------------
    async def awrite(self, chunk: np.ndarray) -> bytes:
        return self.write(chunk) if self.inline else await asyncio.to_thread(self.write, chunk)

    async def afinish(self) -> bytes:
        return self.finish() if self.inline else await asyncio.to_thread(self.finish)

    async def apause(self, seconds: float) -> bytes:
        return self.pause(seconds) if self.inline else await asyncio.to_thread(self.pause, seconds)

    async def aencode_all(self, audio: np.ndarray, pauses: Sequence[tuple[int, float]] = ()) -> bytes:
        """Always in a worker thread: a whole file is never small enough for the event loop."""
        return await asyncio.to_thread(self.encode_all, audio, pauses)

    def close(self) -> None:
        """Release the encoder without finishing it (a stream abandoned); idempotent, never blocks."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            busy = self._busy
        if not busy:  # otherwise the thread that is encoding releases it when it is done (see _run)
            self._encoder.close()

    # -- internals ---------------------------------------------------------------------------------------------
    def _run(self, step: Callable[..., bytes], *args: object) -> bytes:
        with self._lock:
            if self._closed:
                return b""
            if self._busy:
                raise RuntimeError("AudioWriter is already writing: one call at a time")
            if self._finished:
                raise RuntimeError("AudioWriter already finished")
            self._busy = True
        try:
            return step(*args)
        finally:
            with self._lock:
                self._busy = False
                release = self._closed
            if release:
                self._encoder.close()

    def _write(self, x: np.ndarray) -> bytes:
        return self._encode(self._samples(x))

    def _finish(self) -> bytes:
        self._finished = True
        return self._encode(self._tail()) + self._encoder.finish()

    def _encode_all(self, audio: np.ndarray, pauses: Sequence[tuple[int, float]] = ()) -> bytes:
        self._finished = True
        parts, at = [], 0
        for i, (where, seconds) in enumerate(pauses):
            parts += [self._samples(audio[at:where]), self._silence(seconds, mark=i >= len(self._marks))]
            at = where
        parts += [self._samples(audio[at:]), self._tail()]
        return self._encode(np.concatenate(parts)) + self._encoder.finish()

    def _pause(self, seconds: float) -> bytes:
        return self._encode(self._silence(seconds))

    def _stages(self) -> tuple[TimeStretcher | None, StreamResampler | None]:
        stretcher = TimeStretcher(self._speed, self.source_rate) if self._speed != 1.0 else None
        return stretcher, (StreamResampler(self.source_rate, self.rate) if self.rate != self.source_rate else None)

    def mark_pause(self, source_samples: int, seconds: float) -> None:
        """A pause after `source_samples` counted by `position` (`pause` marks its own; a whole file's pauses are
        marked as they come, before `encode_all` encodes them)."""
        if seconds < 0:
            raise ValueError(f"a pause of {seconds} s")
        self._marks.append((source_samples, self.position(source_samples) + round(self.rate * seconds)))

    def _silence(self, seconds: float, *, mark: bool = True) -> np.ndarray:
        """The stages' tail, then the silence; the stages made anew (the totals of the audio before it exact)."""
        if mark:
            self.mark_pause(self.samples_in, seconds)
        tail = self._tail()
        self._stretcher, self._resampler = self._stages()
        return np.concatenate([tail, np.zeros(round(self.rate * seconds), np.float32)])

    def _samples(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples of shape (T,), got {x.shape}")
        self.samples_in += len(x)
        if self._stretcher is not None:
            x = self._stretcher.process(x)
        if self._resampler is not None:
            x = self._resampler.process(x)
        return x

    def _tail(self) -> np.ndarray:
        x = _EMPTY
        if self._stretcher is not None:
            x = self._stretcher.flush()
        if self._resampler is not None:
            x = np.concatenate([self._resampler.process(x), self._resampler.flush()])
        return x

    def _encode(self, x: np.ndarray) -> bytes:
        self.samples_out += len(x)
        return self._encoder.encode(self.encoding.from_float(x)) if len(x) else b""
