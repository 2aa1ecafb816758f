"""The previous segment kept as the next one's context.

Pure parts, no I/O: `SpeechContext` and `trim_context` (the bounded previous segment), and `ContextStore` (the
previous segment of `/v1/audio/speech` callers, by context id, for a short time).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


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
    """The last segment of each `/v1/audio/speech` context id, kept `ttl` seconds (at most `max_entries`). A key
    is any hashable value: the service stores `(tenant, context id)`, so that tenants never share a context.

    A request `claim`s its context id before it is synthesized and `resolve`s the claim when done, so a next
    request that arrives while the previous one is still generating waits for it (`previous`) instead of
    getting no context: per-sentence callers may send their requests back to back.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[Hashable, tuple[float, asyncio.Future[SpeechContext | None]]] = OrderedDict()

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            _, fut = self._entries.pop(key)
            if not fut.done():
                fut.set_result(None)

    async def previous(self, key: Hashable, timeout: float) -> SpeechContext | None:
        """The context stored under `key`, waiting up to `timeout` s for a request still generating it."""
        self._expire()
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(entry[1]), timeout)
        except TimeoutError:
            return None

    def claim(self, key: Hashable) -> asyncio.Future[SpeechContext | None]:
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

    def resolve(self, key: Hashable, fut: asyncio.Future[SpeechContext | None], value: SpeechContext | None) -> None:
        """End a claim; the stored context lives `ttl` seconds from now."""
        if not fut.done():
            fut.set_result(value)
        entry = self._entries.get(key)
        if entry is not None and entry[1] is fut:
            self._entries[key] = (self._clock() + self.ttl, fut)
