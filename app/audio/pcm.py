"""PCM helpers: float -> int16 and G.711 (mu-law, A-law) samples, and RIFF/WAVE headers. Numpy and struct;
the G.711 tables come from libsndfile's encoders once, at first use."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

STREAMING_SIZE = 0xFFFFFFFF
"""Placeholder RIFF and data chunk size for a WAV stream whose length is not known yet."""


def float_to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, clipped first, then scaled by 32767 and rounded: `(T,) -> (T,)`."""
    y = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * np.float32(32767.0)
    return np.rint(y).astype(np.int16)


@cache
def _g711_table(subtype: str) -> np.ndarray:
    """libsndfile's G.711 encoding of every int16 value: `table[int16 as uint16] -> uint8`."""
    import soundfile

    every = np.arange(65536, dtype=np.uint16).view(np.int16)
    buf = io.BytesIO()
    soundfile.write(buf, every, 8000, format="RAW", subtype=subtype)
    return np.frombuffer(buf.getvalue(), np.uint8).copy()


def int16_to_mulaw(x: np.ndarray) -> np.ndarray:
    """G.711 mu-law (libsndfile's ULAW), `(T,) int16 -> (T,) uint8`."""
    return _g711_table("ULAW")[np.asarray(x, np.int16).view(np.uint16)]


def int16_to_alaw(x: np.ndarray) -> np.ndarray:
    """G.711 A-law (libsndfile's ALAW), `(T,) int16 -> (T,) uint8`."""
    return _g711_table("ALAW")[np.asarray(x, np.int16).view(np.uint16)]


WAVE_FORMAT_PCM, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW = 1, 6, 7


@dataclass(frozen=True)
class SampleEncoding:
    """How float samples become the integers a container carries: `(T,) float32 -> (T,)` of `dtype`."""

    name: str
    bits: int
    dtype: np.dtype
    from_float: Callable[[np.ndarray], np.ndarray]
    wav_tag: int
    """The WAV `fmt ` format tag."""


S16LE = SampleEncoding("s16le", 16, np.dtype("<i2"), float_to_int16, WAVE_FORMAT_PCM)
"""Signed 16-bit little-endian linear PCM."""
MULAW = SampleEncoding(
    "mulaw", 8, np.dtype(np.uint8), lambda x: int16_to_mulaw(float_to_int16(x)), WAVE_FORMAT_MULAW
)
"""G.711 mu-law, 8 bits a sample (North American and Japanese telephony)."""
ALAW = SampleEncoding("alaw", 8, np.dtype(np.uint8), lambda x: int16_to_alaw(float_to_int16(x)), WAVE_FORMAT_ALAW)
"""G.711 A-law, 8 bits a sample (European and international telephony)."""


def wav_header(
    sample_rate: int = 24000,
    channels: int = 1,
    bits: int = 16,
    data_bytes: int | None = None,
    format_tag: int = WAVE_FORMAT_PCM,
) -> bytes:
    """A canonical WAV header: 44 bytes for PCM; for G.711 (`format_tag` 6 or 7, 8 bits) 58 bytes, with the
    18-byte `fmt ` chunk and the `fact` chunk (its sample count) that non-PCM WAVs carry.

    With `data_bytes=None` the RIFF and data sizes (and the fact count) are the streaming placeholders
    0xFFFFFFFF (what FFmpeg and browsers expect from a WAV of unknown length); otherwise they are exact.
    """
    if bits % 8 or not 8 <= bits <= 32:
        raise ValueError(f"bits must be one of 8, 16, 24, 32, got {bits}")
    if format_tag not in (WAVE_FORMAT_PCM, WAVE_FORMAT_ALAW, WAVE_FORMAT_MULAW):
        raise ValueError(f"format_tag must be 1 (PCM), 6 (A-law) or 7 (mu-law), got {format_tag}")
    if format_tag != WAVE_FORMAT_PCM and bits != 8:
        raise ValueError(f"G.711 samples are 8 bits, got {bits}")
    block_align = channels * bits // 8
    extra = 0 if format_tag == WAVE_FORMAT_PCM else 14  # cbSize (2) + the fact chunk (12)
    if data_bytes is None:
        riff_size = data_size = STREAMING_SIZE
    else:
        if data_bytes < 0 or data_bytes % block_align or data_bytes > STREAMING_SIZE - 36 - extra:
            raise ValueError(f"data_bytes={data_bytes} is not a whole number of {block_align}-byte frames that fits")
        riff_size, data_size = 36 + extra + data_bytes, data_bytes
    if format_tag != WAVE_FORMAT_PCM:
        frames = STREAMING_SIZE if data_bytes is None else data_size // block_align
        return struct.pack(
            "<4sI4s4sIHHIIHHH4sII4sI",
            b"RIFF",
            riff_size,
            b"WAVE",
            b"fmt ",
            18,  # fmt chunk size, with cbSize
            format_tag,
            channels,
            sample_rate,
            sample_rate * block_align,
            block_align,
            bits,
            0,  # cbSize: no extension
            b"fact",
            4,
            frames,
            b"data",
            data_size,
        )
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
