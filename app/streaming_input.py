"""Text that arrives in pieces -> speakable segments; the previous segment kept as the next one's context.

Pure parts, no I/O: `TextSegmenter` (sentence / length / time rules, the caller passes the clock),
`SpeechContext` and `trim_context` (the bounded previous segment), and `ContextStore` (the previous segment of
`/v1/audio/speech` callers, by context id, for a short time).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from app.text.sentences import SentenceSplitter

_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]\s+|\s+[\u2014\u2013-]\s+")


class TextSegmenter:
    """Cuts streamed text into segments to synthesize, in order.

    - A sentence (the normalizer's splitter) is ready once the text after it has begun: the splitter needs the
      next character to tell "Dr. Tan" from a sentence end.
    - A buffer longer than `max_chars` (`first_max_chars` for the first segment, so the first audio does not
      wait for a long sentence) is cut at its last clause break (`,;:` or a dash), else its last space.
    - Text that waited `max_wait` seconds since its first character is cut after its last complete word
      (`due_in` says when; `tick` applies it): an LLM that pauses mid-sentence does not hold the audio back.
    - `flush()` returns everything buffered.
    """

    def __init__(
        self,
        *,
        max_chars: int = 250,
        first_max_chars: int | None = None,
        max_wait: float | None = 0.6,
        splitter: SentenceSplitter | None = None,
    ) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars or max_chars
        self.max_wait = max_wait
        self._splitter = splitter or SentenceSplitter()
        self._buffer = ""
        self._since: float | None = None  # when the oldest buffered non-space character arrived
        self.segments_out = 0

    @property
    def buffered(self) -> str:
        return self._buffer

    def push(self, text: str, now: float) -> list[str]:
        """Add a text delta; returns the segments it completes."""
        if not text:
            return []
        if self._since is None and text.strip():
            self._since = now
        self._buffer += text
        out: list[str] = []
        while True:
            piece = self._next_sentence() or self._cut_long()
            if not piece:
                break
            out.append(piece)
        return self._emitted(out, now)

    def due_in(self, now: float) -> float | None:
        """Seconds until the time rule fires (0 if due), None when it cannot (nothing buffered, or no rule)."""
        if self.max_wait is None or self._since is None or not self._last_word_end():
            return None
        return max(0.0, self._since + self.max_wait - now)

    def tick(self, now: float) -> list[str]:
        """Apply the time rule: the complete words of text that waited `max_wait` seconds."""
        due = self.due_in(now)
        if due is None or due > 0:
            return []
        end = self._last_word_end()
        return self._emitted([self._take(end)], now)

    def flush(self) -> list[str]:
        """Everything buffered, as one segment (none if only spaces)."""
        piece = self._take(len(self._buffer))
        return self._emitted([piece], None)

    # -- rules ------------------------------------------------------------------------------------
    def _next_sentence(self) -> str | None:
        pieces = self._splitter.split(self._buffer)
        if len(pieces) < 2:
            return None
        end = self._buffer.index(pieces[0]) + len(pieces[0])
        return self._take(end)

    def _cut_long(self) -> str | None:
        limit = self.first_max_chars if self.segments_out == 0 else self.max_chars
        text = self._buffer.lstrip()
        if len(text.rstrip()) <= limit:
            return None
        offset = len(self._buffer) - len(text)
        head = text[: limit + 1]
        clauses = [m.end() for m in _CLAUSE_END.finditer(head)]
        if clauses:
            return self._take(offset + clauses[-1])
        space = head.rfind(" ")
        if space > 0:
            return self._take(offset + space)
        return self._take(offset + limit)  # one very long "word": cut it rather than buffer without end

    def _last_word_end(self) -> int:
        """Where the buffer's last complete word ends (0: none). The last word is complete when a space follows."""
        stripped = self._buffer.rstrip()
        if not stripped:
            return 0
        if len(stripped) < len(self._buffer):
            return len(stripped)
        space = stripped.rfind(" ")
        return len(stripped[:space].rstrip()) if space > 0 else 0

    def _take(self, end: int) -> str:
        piece, self._buffer = self._buffer[:end], self._buffer[end:]
        return " ".join(piece.split())

    def _emitted(self, pieces: list[str], now: float | None) -> list[str]:
        pieces = [p for p in pieces if p]
        self.segments_out += len(pieces)
        if pieces:
            self._since = now if (now is not None and self._buffer.strip()) else None
        return pieces


@dataclass(frozen=True)
class SpeechContext:
    """A segment already spoken: its prompted text and the speech tokens the model answered with."""

    text: str
    tokens: tuple[int, ...]
    voice: str = ""


def trim_context(
    text: str, tokens: list[int] | tuple[int, ...], max_tokens: int, *, voice: str = ""
) -> SpeechContext | None:
    """The previous segment bounded to its last `max_tokens` speech tokens (None when there is nothing).

    Speech tokens carry no word timing, so the text is cut in proportion: the last words whose share of the
    text matches the kept share of the tokens. The model only needs a plausible continuation, not exact
    alignment, but the text it reads should not run far ahead of the audio it hears.
    """
    if not text or not tokens or max_tokens <= 0:
        return None
    if len(tokens) <= max_tokens:
        return SpeechContext(text, tuple(int(t) for t in tokens), voice)
    kept = tokens[-max_tokens:]
    words = text.split()
    n_words = max(1, math.ceil(len(words) * len(kept) / len(tokens)))
    return SpeechContext(" ".join(words[-n_words:]), tuple(int(t) for t in kept), voice)


class ContextStore:
    """The last segment of each `/v1/audio/speech` context id, kept `ttl` seconds (at most `max_entries`).

    A request `claim`s its context id before it is synthesized and `resolve`s the claim when done, so a next
    request that arrives while the previous one is still generating waits for it (`previous`) instead of
    getting no context: per-sentence callers may send their requests back to back.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, asyncio.Future[SpeechContext | None]]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            _, fut = self._entries.pop(key)
            if not fut.done():
                fut.set_result(None)

    async def previous(self, key: str, timeout: float) -> SpeechContext | None:
        """The context stored under `key`, waiting up to `timeout` s for a request still generating it."""
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        except TimeoutError:
            return None

    def claim(self, key: str) -> asyncio.Future[SpeechContext | None]:
        """Reserve `key` for a request about to be synthesized; resolve the returned future when it ends."""
        self._expire()
        old = self._entries.pop(key, None)
        if old is not None and not old[1].done():
            old[1].set_result(None)
        fut: asyncio.Future[SpeechContext | None] = asyncio.get_running_loop().create_future()
        self._entries[key] = (self._clock() + self.ttl, fut)
        while len(self._entries) > self.max_entries:
            _, (_, evicted) = self._entries.popitem(last=False)
            if not evicted.done():
                evicted.set_result(None)
        return fut

    def resolve(self, key: str, fut: asyncio.Future[SpeechContext | None], value: SpeechContext | None) -> None:
        """End a claim; the stored context lives `ttl` seconds from now."""
        if not fut.done():
            fut.set_result(value)
        entry = self._entries.get(key)
        if entry is not None and entry[1] is fut:
            self._entries[key] = (self._clock() + self.ttl, fut)
