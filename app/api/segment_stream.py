"""`AudioOut` turns a segment stream's float chunks into the session's audio format."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from app.audio.formats import make_encoder
from app.audio.pcm import float_to_int16
from app.audio.stretch import TimeStretcher

_INLINE_FORMATS = ("pcm", "wav")


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
