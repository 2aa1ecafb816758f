"""Reference clips to the encoder's input: any rate, mono or multi-channel -> 16 kHz mono float32."""

from __future__ import annotations

import math

import numpy as np


def resample_to_16k(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """`(N,)` or `(N, C)` audio at `sample_rate` -> mono float32 `(M,)` at 16 kHz (polyphase, Kaiser FIR).

    Channels are averaged. A 2-D array with fewer rows than columns and at most 8 rows is taken as
    channels-first `(C, N)`.
    """
    from scipy.signal import resample_poly

    array = np.asarray(audio, dtype=np.float64)
    if array.ndim == 2:
        if array.shape[0] <= 8 and array.shape[0] < array.shape[1]:
            array = array.T
        array = array.mean(axis=1)
    if array.ndim != 1:
        raise ValueError(f"audio must be (N,) or (N, C), got shape {np.shape(audio)}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    if sample_rate == 16_000 or array.shape[0] == 0:
        return array.astype(np.float32)
    g = math.gcd(sample_rate, 16_000)
    return resample_poly(array, 16_000 // g, sample_rate // g).astype(np.float32)


class StreamResampler:
    """Chunked resampling with soxr (`HQ`), the same samples as one call on the whole signal: `(T,) float32 in,
    (T',) float32 out`. Not thread-safe: one per stream."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        import soxr

        if in_rate <= 0 or out_rate <= 0:
            raise ValueError(f"sample rates must be positive, got {in_rate} -> {out_rate}")
        self.in_rate, self.out_rate = in_rate, out_rate
        self._soxr = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32")

    def process(self, x: np.ndarray) -> np.ndarray:
        return self._soxr.resample_chunk(np.asarray(x, dtype=np.float32))

    def flush(self) -> np.ndarray:
        """The samples soxr still holds; the resampler is done after it."""
        return self._soxr.resample_chunk(np.zeros(0, np.float32), last=True)
