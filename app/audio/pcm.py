"""PCM helpers: float -> int16 conversion and RIFF/WAVE headers. Pure numpy and struct, no I/O."""

from __future__ import annotations

import struct

import numpy as np

STREAMING_SIZE = 0xFFFFFFFF
"""Placeholder RIFF and data chunk size for a WAV stream whose length is not known yet."""


def float_to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, clipped first, then scaled by 32767 and rounded: `(T,) -> (T,)`."""
    y = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)
    return np.rint(y).astype(np.int16)


def wav_header(sample_rate: int = 24000, channels: int = 1, bits: int = 16, data_bytes: int | None = None) -> bytes:
    """A 44-byte canonical PCM WAV header.

    With `data_bytes=None` the RIFF and data sizes are the streaming placeholders 0xFFFFFFFF (what FFmpeg
    and browsers expect from a WAV of unknown length); otherwise they are exact.
    """
    if bits % 8 or not 8 <= bits <= 32:
        raise ValueError(f"bits must be one of 8, 16, 24, 32, got {bits}")
    block_align = channels * bits // 8
    if data_bytes is None:
        riff_size = data_size = STREAMING_SIZE
    else:
        if data_bytes < 0 or data_bytes % block_align or data_bytes > STREAMING_SIZE - 36:
            raise ValueError(f"data_bytes={data_bytes} is not a whole number of {block_align}-byte frames that fits")
        riff_size, data_size = 36 + data_bytes, data_bytes
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff_size,
        b"WAVE",
        b"fmt ",
        16,  # fmt chunk size
        1,  # WAVE_FORMAT_PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
        b"data",
        data_size,
    )
