"""Streaming time-scale modification (speed change without pitch change) with the Rubber Band Library.

Rubber Band's R3 ("finer") engine in real-time mode keeps its state across `process()` calls, so chunks can
be stretched as they arrive. Its start latency is compensated the way the library documents: feed
`get_preferred_start_pad()` zeros first and drop `get_start_delay()` samples of output. The total output
length is `round(input_samples / speed)`, whatever the chunking.
"""

from __future__ import annotations

import numpy as np
import pylibrb

MIN_SPEED = 0.25
MAX_SPEED = 4.0

_BLOCK = 2048  # input samples per Rubber Band call, so its internal buffers never have to grow
_OPTIONS = pylibrb.Option.PROCESS_REALTIME | pylibrb.Option.ENGINE_FINER | pylibrb.Option.THREADING_NEVER


class TimeStretcher:
    """Plays audio `speed` times faster (2.0 halves the duration) at the same pitch; chunk in, chunk out.

    `speed == 1.0` passes samples through untouched. Not thread-safe: one stretcher per stream.
    """

    def __init__(self, speed: float, sample_rate: int = 24000) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed}")
        self.speed = float(speed)
        self.sample_rate = sample_rate
        self._samples_in = 0
        self._samples_out = 0
        self._done = False
        self._rb: pylibrb.RubberBandStretcher | None = None
        if self.speed != 1.0:
            self._rb = pylibrb.RubberBandStretcher(
                sample_rate, 1, _OPTIONS, initial_time_ratio=1.0 / self.speed, initial_pitch_scale=1.0
            )
            self._rb.set_max_process_size(_BLOCK)
            self._skip = self._rb.get_start_delay()
            self._rb.process(np.zeros((1, self._rb.get_preferred_start_pad()), np.float32))

    def process(self, x: np.ndarray) -> np.ndarray:
        """`(T,) float32 -> (T',) float32`, T' about T / speed.

        The output lags the input by the engine's analysis window: at most about 55 ms of input at speed 0.25,
        65 ms at 0.5, 130 ms at 2.0 and 215 ms at 4.0, whatever the chunk size.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 1:
            raise ValueError(f"expected mono samples of shape (T,), got {x.shape}")
        if self._done:
            raise RuntimeError("process() after flush()")
        if self._rb is None:
            return x
        self._samples_in += len(x)
        out = []
        for i in range(0, len(x), _BLOCK):
            self._rb.process(x[None, i : i + _BLOCK])
            out.append(self._retrieve())
        return self._count(np.concatenate(out) if out else np.zeros(0, np.float32))

    def flush(self) -> np.ndarray:
        """The rest of the output, up to `round(total input / speed)` samples; the stretcher is done after it."""
        if self._done:
            raise RuntimeError("flush() called twice")
        self._done = True
        if self._rb is None:
            return np.zeros(0, np.float32)
        self._rb.process(np.zeros((1, 0), np.float32), final=True)
        out = [self._retrieve()]
        while self._rb.available() > 0:  # after `final` everything is available at once; this is belt and braces
            out.append(self._retrieve())
        tail = np.concatenate(out)
        want = round(self._samples_in / self.speed) - self._samples_out
        if len(tail) < want:  # the engine may fall a few samples short at the very end
            tail = np.concatenate([tail, np.zeros(want - len(tail), np.float32)])
        return self._count(tail[: max(want, 0)])

    def _retrieve(self) -> np.ndarray:
        y = self._rb.retrieve_available()[0]
        if self._skip:
            k = min(self._skip, len(y))
            y, self._skip = y[k:], self._skip - k
        return y

    def _count(self, y: np.ndarray) -> np.ndarray:
        self._samples_out += len(y)
        return y
