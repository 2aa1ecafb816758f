"""Admission: a bounded number of slots, taken before any work and given back exactly once.

A request that finds no free slot gets `OverloadedError` (429 with `Retry-After`) at once, never a queue.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING

from app.errors import OverloadedError

if TYPE_CHECKING:
    from app.observability.metrics import ServiceMetrics

CLIENT: ContextVar[str | None] = ContextVar("tts_client", default=None)
"""Who the request being served comes from (its address): set per HTTP request and WebSocket by
app/api/limits.py `ClientIdentity`, read by a lane with a share per client."""


class Slot:
    """One admitted request. `release()` is idempotent, so every exit path may call it."""

    __slots__ = ("_client", "_gate", "_released", "on_release")

    def __init__(self, gate: Admission, client: str | None = None) -> None:
        self._gate = gate
        self._client = client
        self._released = False
        self.on_release: Callable[[], None] | None = None  # e.g. the in-flight gauge's dec

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._gate._in_use -= 1
            self._gate._client_released(self._client)
            if self.on_release is not None:
                self.on_release()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None):
        self.release()


class Admission:
    """At most `limit` slots in use (event loop only, so no lock), and at most `per_client` of them held by one
    client (`CLIENT`; 0: no share). `what` names them in the 429 message."""

    def __init__(self, limit: int, what: str, *, retry_after: int = 1, per_client: int = 0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self.what = what
        self.retry_after = retry_after
        self.per_client = per_client
        self.rejected = 0
        self._in_use = 0
        self._by_client: dict[str, int] = {}

    @property
    def in_use(self) -> int:
        return self._in_use

    def admit(self) -> Slot:
        """A slot, or `OverloadedError` when all `limit` are taken."""
        if self._in_use >= self.limit:
            self.rejected += 1
            raise OverloadedError(
                f"server busy: {self._in_use} {self.what} in flight (limit {self.limit}); retry shortly",
                retry_after=self.retry_after,
            )
        client = CLIENT.get() if self.per_client else None
        held = self._by_client.get(client, 0) if client is not None else 0
        if client is not None and held >= self.per_client:
            self.rejected += 1
            raise OverloadedError(
                f"this client has {held} {self.what} in flight (limit {self.per_client} per client); retry shortly",
                retry_after=self.retry_after,
            )
        self._in_use += 1
        if client is not None:
            self._by_client[client] = held + 1
        return Slot(self, client)

    def _client_released(self, client: str | None) -> None:
        if client is None:
            return
        left = self._by_client.get(client, 0) - 1
        if left > 0:
            self._by_client[client] = left
        else:
            self._by_client.pop(client, None)


class MeteredAdmission(Admission):
    """The speech lane: its slots counted in the in-flight gauge, its 429s in the requests counter."""

    def __init__(
        self, limit: int, what: str, metrics: ServiceMetrics, *, retry_after: int = 1, per_client: int = 0
    ) -> None:
        super().__init__(limit, what, retry_after=retry_after, per_client=per_client)
        self.metrics = metrics

    def admit(self, endpoint: str = "speech") -> Slot:
        """A slot, or `OverloadedError` (429 with `Retry-After`) counted as `endpoint`'s rejection."""
        try:
            slot = super().admit()
        except OverloadedError:
            self.metrics.requests.labels(endpoint, "-", "rejected").inc()
            raise
        self.metrics.in_flight.inc()
        slot.on_release = self.metrics.in_flight.dec
        return slot
