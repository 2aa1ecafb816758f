"""Reference intake for voice cloning: uploaded clip bytes -> mono float32 at 16 kHz, or a 400 that says why not."""

from __future__ import annotations

import hashlib
import io
from collections import OrderedDict
from typing import Protocol

import numpy as np

from app.errors import InvalidRequestError, PayloadTooLargeError

MIN_REFERENCE_RATE, MAX_REFERENCE_RATE = 8_000, 192_000  # Hz accepted for reference audio
_UNREADABLE = "reference_audio is not readable audio (WAV, FLAC, OGG or MP3): {}"


class Resampler(Protocol):
    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


def read_reference(data: bytes, *, max_bytes: int, max_seconds: float, resample_to_16k: Resampler) -> np.ndarray:
    """Uploaded clip bytes -> mono float32 at 16 kHz (blocking: run it in a thread)."""
    import soundfile as sf

    if not data:
        raise InvalidRequestError("reference_audio is empty", param="reference_audio")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"reference_audio is {len(data)} bytes; the limit is {max_bytes}", param="reference_audio"
        )
    try:
        # the header first: its rate and length are checked before a single sample is decoded
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # libsndfile raises its own error types for every unreadable input
        raise InvalidRequestError(_UNREADABLE.format(exc), param="reference_audio") from exc
    check_reference_header(info.samplerate, info.frames, max_seconds)
    try:
        audio, rate = sf.read(
            io.BytesIO(data), dtype="float32", always_2d=True, frames=info.frames  # never past the header
        )
    except Exception as exc:
        raise InvalidRequestError(_UNREADABLE.format(exc), param="reference_audio") from exc
    # some containers (MP3, Ogg) only estimate their length in the header: check what was decoded too
    check_reference_header(rate, audio.shape[0], max_seconds)
    if not np.isfinite(audio).all():
        raise InvalidRequestError("reference_audio contains NaN or infinite samples", param="reference_audio")
    return resample_to_16k(audio, rate)


def check_reference_header(rate: int, frames: int, max_seconds: float) -> None:
    """A 400 unless the clip's sample rate is 8-192 kHz and its length 0.1 s to `max_seconds`."""
    if not MIN_REFERENCE_RATE <= rate <= MAX_REFERENCE_RATE:
        raise InvalidRequestError(
            f"reference_audio has a sample rate of {rate} Hz; accepted: {MIN_REFERENCE_RATE}-{MAX_REFERENCE_RATE} Hz",
            param="reference_audio",
        )
    seconds = frames / rate
    if seconds < 0.1:
        raise InvalidRequestError("reference_audio holds no audio (under 0.1 s)", param="reference_audio")
    if seconds > max_seconds:
        raise InvalidRequestError(
            f"reference_audio is {seconds:.1f} s; the limit is {max_seconds:g} s", param="reference_audio"
        )


def clip_key(data: bytes, transcript: str) -> str:
    """The cache key of an uploaded clip and its transcript: a SHA-256 of both."""
    digest = hashlib.sha256(data)
    digest.update(b"\0" + transcript.encode())
    return digest.hexdigest()


class EncodingCache:
    """The codec tokens of the last `size` reference clips (by `clip_key`), least recently used out first.

    A clip uploaded again with the same transcript skips decoding and the encoder; `size` 0 keeps nothing."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[int, ...]] = OrderedDict()

    def get(self, key: str) -> tuple[int, ...] | None:
        tokens = self._entries.get(key)
        if tokens is not None:
            self._entries.move_to_end(key)
        return tokens

    def put(self, key: str, tokens: tuple[int, ...]) -> None:
        if self.size <= 0:
            return
        self._entries[key] = tokens
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
