"""Window planning and crossfading for streamed decoding: pure maths, no torch, no I/O.

Tokens arrive one by one; audio leaves in chunks. Each decode window covers
``[start, end)`` tokens: up to ``left_context`` already-emitted tokens for context, the ``overlap`` tokens
whose audio the previous window left pending (its *tail*), and the new chunk. From a window we emit:

* the overlap region ``[E, E + O)``, crossfaded from the previous tail (fading out) into this window's
  decode of the same tokens (fading in); the two gains sum to one at every sample (linear crossfade: both
  sides are decodes of the same tokens, so they are strongly correlated and equal-gain keeps the level);
* the rest of the chunk up to ``end - O``, and keep ``[end - O, end)`` as the next tail.

A stream whose tokens have piled up past the longest window it may have (the codec is behind: it is busy, or
the tokens came in a burst) gets that window, ``max_chunk_tokens`` of chunk, instead of several regular ones.
Fewer windows decode fewer context and overlap tokens, and longer windows batch better, so a saturated codec
catches up; a stream whose tokens arrive slower than its windows decode never sees it. A window is regular or
the longest, never in between, so that the windows of streams that catch up together have one length. The
first window keeps its size (it sets the time to first audio).

The last window of a stream emits everything up to the last token. So every token gets exactly
``samples_per_token`` samples, none dropped or repeated, and only the very first samples of a stream get a
short fade-in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class TokenClock(Protocol):
    """What a plan needs of a codec's geometry (app.codec.interface.Geometry has it): its tokens per second of
    audio and the samples each token decodes to."""

    @property
    def tokens_per_second(self) -> float: ...

    @property
    def samples_per_token(self) -> int: ...


@dataclass(frozen=True)
class StitchPlan:
    """Window geometry in tokens."""

    chunk_tokens: int
    overlap_tokens: int
    first_chunk_tokens: int
    left_context_tokens: int
    samples_per_token: int = 480
    fade_in_samples: int = 120
    max_chunk_tokens: int = 0  # longest chunk of a window that catches up; below chunk_tokens (0): no growth

    def __post_init__(self) -> None:
        if self.chunk_tokens < 1 or self.first_chunk_tokens < 1:
            raise ValueError("chunk sizes must be at least one token")
        if self.max_chunk_tokens < 0:
            raise ValueError("max_chunk_tokens cannot be negative")
        object.__setattr__(self, "max_chunk_tokens", max(self.chunk_tokens, self.max_chunk_tokens))
        if not 0 <= self.overlap_tokens < self.chunk_tokens:
            raise ValueError("overlap must be smaller than the chunk")
        if self.left_context_tokens < 0 or self.fade_in_samples < 0:
            raise ValueError("left context and fade-in cannot be negative")

    @classmethod
    def from_seconds(
        cls,
        playback_speed: float,
        overlap_speed: float,
        first_chunk_seconds: float,
        left_context_seconds: float,
        *,
        geometry: TokenClock,
        fade_in_ms: float = 5.0,
        max_chunk_seconds: float = 0.0,
        max_window_tokens: int | None = None,
    ) -> StitchPlan:
        """The spec's knobs (seconds of audio) in tokens of the codec's `geometry`; the first chunk is never longer
        than the others.

        `max_chunk_seconds`: the longest chunk a window that catches up may emit (never below the chunk);
        `max_window_tokens` caps such a window, context and overlap included (CUDA graphs' largest bucket).
        """
        tokens_per_second, samples_per_token = geometry.tokens_per_second, geometry.samples_per_token
        chunk = max(1, round(playback_speed * tokens_per_second))
        overlap = min(max(0, round(overlap_speed * tokens_per_second)), chunk - 1)
        first = min(chunk, max(1, round(first_chunk_seconds * tokens_per_second)))
        left = max(0, round(left_context_seconds * tokens_per_second))
        fade = round(fade_in_ms * samples_per_token * tokens_per_second / 1000)
        longest = round(max_chunk_seconds * tokens_per_second)
        if max_window_tokens is not None:
            longest = min(longest, max_window_tokens - overlap - left)
        return cls(chunk, overlap, first, left, samples_per_token, fade, max(0, longest))


@dataclass(frozen=True)
class Window:
    """One decode: tokens ``[start, end)``; emit tokens ``[emit_start, emit_end)``, keep ``[emit_end, end)``."""

    index: int
    start: int
    end: int
    emit_start: int
    emit_end: int
    final: bool

    @property
    def length(self) -> int:
        return self.end - self.start


class StreamStitcher:
    """Decides the windows of one stream and turns their decoded audio into emitted samples.

    Use: ask `next_window(available, finished)` with the tokens received so far; decode each window's
    tokens (several may be in flight); pass the audio to `emit(window, audio)` in window order. Holds only
    the pending tail between windows.
    """

    def __init__(self, plan: StitchPlan) -> None:
        self.plan = plan
        self._planned = 0  # windows handed out
        self._boundary = 0  # emit_end of the last planned window
        self._final_planned = False
        self._emitted_windows = 0
        self._emitted = 0  # tokens whose final audio has left
        self._tail: np.ndarray | None = None  # samples of tokens [emitted, emitted + overlap)
        self.decoded_tokens = 0

    @property
    def emitted_tokens(self) -> int:
        return self._emitted

    @property
    def done(self) -> bool:
        """True once the final window has been emitted (or the stream had no tokens at all)."""
        return self._final_planned and self._emitted_windows == self._planned

    def tokens_needed(self) -> int:
        """How many tokens make the next regular window ready (the end of a stream makes one ready earlier)."""
        chunk = self.plan.first_chunk_tokens if self._planned == 0 else self.plan.chunk_tokens
        return self._boundary + chunk + self.plan.overlap_tokens

    def next_window(self, available: int, finished: bool) -> Window | None:
        """The next window to decode given ``available`` tokens, or None if more tokens are needed (or done).

        With at least the tokens the longest window needs (``max_chunk_tokens`` of chunk; not for the first
        window), the window is the longest; with fewer, it is regular."""
        if self._final_planned:
            return None
        p = self.plan
        regular_end = self.tokens_needed()
        longest = p.first_chunk_tokens if self._planned == 0 else p.max_chunk_tokens
        longest_end = self._boundary + longest + p.overlap_tokens
        if finished and available <= longest_end:
            self._final_planned = True
            if available == self._boundary:  # nothing left (only possible for an empty stream)
                return None
            end, emit_end, final = available, available, True
        elif available >= regular_end:
            # all or nothing: a window is regular or as long as it may be, so that the windows of many streams
            # that catch up together have one length and batch without padding
            end = longest_end if available >= longest_end else regular_end
            end, emit_end, final = end, end - p.overlap_tokens, False
        else:
            return None
        start = max(0, self._boundary - p.left_context_tokens)
        window = Window(self._planned, start, end, self._boundary, emit_end, final)
        self._planned += 1
        self._boundary = emit_end
        return window

    def emit(self, window: Window, audio: np.ndarray) -> np.ndarray:
        """Samples to send for ``window`` given its decoded ``audio`` (``window.length * samples_per_token``)."""
        spt = self.plan.samples_per_token
        if window.index != self._emitted_windows:
            raise RuntimeError("windows must be emitted in the order they were planned")
        if audio.shape != (window.length * spt,):
            raise ValueError(f"window {window.index}: expected {window.length * spt} samples, got {audio.shape}")
        self.decoded_tokens += window.length
        split = (window.emit_end - window.start) * spt
        out = audio[(window.emit_start - window.start) * spt : split].astype(np.float32, copy=True)
        if self._tail is not None:
            n = len(self._tail)
            out[:n] = crossfade(self._tail, out[:n])
        elif window.index == 0 and self.plan.fade_in_samples:
            out = apply_fade_in(out, self.plan.fade_in_samples)
        self._tail = audio[split:].astype(np.float32, copy=True) if window.end > window.emit_end else None
        self._emitted = window.emit_end
        self._emitted_windows += 1
        return out


def fade_gains(n: int) -> np.ndarray:
    """Rising linear gains for an ``n``-sample crossfade; ``g + g[::-1] == 1`` exactly at every sample."""
    return ((np.arange(n, dtype=np.float64) + 0.5) / n).astype(np.float32)


def crossfade(outgoing: np.ndarray, incoming: np.ndarray) -> np.ndarray:
    """Linear crossfade of two equal-length signals: ``outgoing * (1 - g) + incoming * g``."""
    if outgoing.shape != incoming.shape:
        raise ValueError("crossfade needs two signals of the same length")
    g = fade_gains(len(incoming))
    return outgoing + g * (incoming - outgoing)


def apply_fade_in(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` with its first ``n`` samples faded in (a copy)."""
    y = np.array(x, dtype=np.float32, copy=True)
    n = min(n, len(y))
    if n:
        y[:n] *= fade_gains(n)
    return y


def decoded_to_emitted_ratio(plan: StitchPlan, n_tokens: int) -> float:
    """Tokens decoded / tokens emitted when a stream of ``n_tokens`` is stitched with ``plan``."""
    st = StreamStitcher(plan)
    decoded = 0
    while (w := st.next_window(n_tokens, True)) is not None:
        decoded += w.length
        st.emit(w, np.zeros(w.length * plan.samples_per_token, dtype=np.float32))
    return decoded / max(1, n_tokens)
