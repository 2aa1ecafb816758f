"""Reference intake for voice cloning: uploaded clip bytes -> mono float32 at 16 kHz, or a 400 that says why not."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import math
from collections import OrderedDict
from typing import Protocol

import numpy as np

from app.errors import InvalidRequestError, PayloadTooLargeError
from app.observability.metrics import ServiceMetrics
from app.service.admission import Admission
from app.service.principal import caller_tenant
from app.settings import LimitsSettings

logger = logging.getLogger(__name__)

MIN_REFERENCE_RATE, MAX_REFERENCE_RATE = 8_000, 192_000  # Hz accepted for reference audio


class Resampler(Protocol):
    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


DECODE_BLOCK_FRAMES = 65_536  # frames decoded at a time (mixed to mono as they come)
RESAMPLE_PIECE_FRAMES = 1 << 20  # a longer clip is resampled a piece at a time (app/audio/resample.py's FIR
RESAMPLE_MARGIN_FRAMES = 4096  # polyphase filter reaches a few hundred frames at most: margins this wide suffice)


def read_reference(
    data: bytes,
    *,
    max_bytes: int,
    max_seconds: float,
    resample_to_16k: Resampler,
    max_channels: int = 2,
    max_decoded_bytes: int = 48 * 1024 * 1024,
) -> np.ndarray:
    """Uploaded clip bytes -> mono float32 at 16 kHz (blocking: run it in a thread).

    What the clip decodes to is bounded from its header before a sample is decoded: rate, length, channels, and
    frames x channels x 4 bytes. Decoding then goes block by block into one mono float32 array.
    """
    import soundfile as sf

    if not data:
        raise InvalidRequestError("reference_audio is empty", param="reference_audio")
    if len(data) > max_bytes:
        raise PayloadTooLargeError(
            f"reference_audio is {len(data)} bytes; the limit is {max_bytes}", param="reference_audio"
        )
    try:
        # the header first: its rate, length and channels are checked before a single sample is decoded
        info = sf.info(io.BytesIO(data))
    except Exception as exc:  # libsndfile raises its own error types for every unreadable input
        raise _unreadable(exc) from exc
    check_reference_header(info.samplerate, info.frames, max_seconds)
    check_reference_size(info.channels, info.frames, max_channels, max_decoded_bytes)
    mono = np.empty(info.frames, dtype=np.float32)
    n = 0
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            rate = f.samplerate
            for block in f.blocks(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True, frames=info.frames):
                if not np.isfinite(block).all():
                    raise InvalidRequestError(
                        "reference_audio contains NaN or infinite samples", param="reference_audio"
                    )
                k = min(len(block), len(mono) - n)  # never past the header
                mono[n : n + k] = block[:k, 0] if block.shape[1] == 1 else block[:k].mean(axis=1)
                n += k
    except InvalidRequestError:
        raise
    except Exception as exc:
        raise _unreadable(exc) from exc
    # some containers (MP3, Ogg) only estimate their length in the header: check what was decoded too
    check_reference_header(rate, n, max_seconds)
    return _resample_in_pieces(mono[:n], rate, resample_to_16k)


def _unreadable(exc: Exception) -> InvalidRequestError:
    """The client's error for a clip the audio library cannot read: what we accept, not the library's words
    (they name our buffers and its internals), which go to the log."""
    logger.info("a reference clip is not readable audio: %s: %s", type(exc).__name__, exc)
    return InvalidRequestError("reference_audio is not readable audio (WAV, FLAC, OGG or MP3)", param="reference_audio")


def _resample_in_pieces(mono: np.ndarray, rate: int, resample: Resampler) -> np.ndarray:
    """`resample(mono, rate)` of a polyphase FIR resampler, a piece at a time so that its float64 work arrays
    stay small: each piece starts on a multiple of the decimation factor and carries margins of context, so its
    output is the whole signal's output there."""
    g = math.gcd(rate, 16_000)
    up, down = 16_000 // g, rate // g
    margin = RESAMPLE_MARGIN_FRAMES - RESAMPLE_MARGIN_FRAMES % down
    n = len(mono)
    if n <= 2 * RESAMPLE_PIECE_FRAMES or margin < RESAMPLE_MARGIN_FRAMES // 2:
        return resample(mono[:, None], rate)
    step = RESAMPLE_PIECE_FRAMES - RESAMPLE_PIECE_FRAMES % down
    out = np.empty(-(-n * up // down), dtype=np.float32)
    for start in range(0, n, step):
        lo, hi = max(0, start - margin), min(n, start + step + margin)
        piece = resample(mono[lo:hi, None], rate)
        first, skip = start * up // down, (start - lo) * up // down
        count = min(step * up // down, len(out) - first)
        out[first : first + count] = piece[skip : skip + count]
    return out


def check_reference_size(channels: int, frames: int, max_channels: int, max_decoded_bytes: int) -> None:
    """A 400 for a clip of more than `max_channels` channels, a 413 for one that decodes to over
    `max_decoded_bytes` (float32 samples), both told by the header."""
    if not 1 <= channels <= max_channels:
        raise InvalidRequestError(
            f"reference_audio has {channels} channels; at most {max_channels} are accepted", param="reference_audio"
        )
    decoded = frames * channels * 4
    if decoded > max_decoded_bytes:
        raise PayloadTooLargeError(
            f"reference_audio decodes to {decoded} bytes; the limit is {max_decoded_bytes}", param="reference_audio"
        )


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


class Encoder(Protocol):
    async def encode(self, audio: np.ndarray) -> np.ndarray: ...


class ReferenceIntake:
    """Uploaded clips -> codec tokens: read and checked in a thread, encoded by the engine, cached by clip and
    transcript; `lane` bounds the uploads, decodes and encodes in flight (a 429 when full)."""

    def __init__(
        self, engine: Encoder, resample_to_16k: Resampler, limits: LimitsSettings, metrics: ServiceMetrics, *,
        cache_size: int = 0,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.resample_to_16k = resample_to_16k
        self.limits = limits
        self.metrics = metrics
        self.lane = Admission(limits.max_concurrent_references, "voice-cloning uploads")
        self.cache = EncodingCache(cache_size)  # reference clip + transcript -> codec tokens

    async def encode(self, audio_bytes: bytes, transcript: str) -> tuple[int, ...]:
        """The codec tokens of an uploaded clip: from the cache when the same clip came with the same transcript,
        else read, checked and encoded."""
        key = await asyncio.to_thread(clip_key, audio_bytes, transcript) if self.cache.size else ""
        key = f"{caller_tenant()}:{key}" if key else ""  # per tenant: a hit's timing tells of another's upload
        cached = self.cache.get(key) if key else None
        self.metrics.reference_cache.labels("hit" if cached is not None else "miss").inc()
        if cached is not None:
            return cached
        clip = await asyncio.to_thread(self.read, audio_bytes)
        tokens = tuple(int(t) for t in await self.engine.encode(clip))
        if key:
            self.cache.put(key, tokens)
        return tokens

    def read(self, data: bytes) -> np.ndarray:
        """Clip bytes -> mono float32 at 16 kHz within the limits (blocking)."""
        limits = self.limits
        return read_reference(
            data, max_bytes=limits.max_reference_bytes, max_seconds=limits.max_reference_seconds,
            resample_to_16k=self.resample_to_16k, max_channels=limits.max_reference_channels,
            max_decoded_bytes=limits.max_reference_decoded_bytes,
        )
