"""Admission: a bounded number of slots, taken before any work and given back exactly once.

A request that finds no free slot gets `OverloadedError` (429 with `Retry-After`) at once, never a queue.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from app.errors import OverloadedError
from app.service.principal import CALLER

if TYPE_CHECKING:
    from app.observability.metrics import ServiceMetrics


class Slot:
    """One admitted request. `release()` is idempotent, so every exit path may call it."""

    __slots__ = ("_client", "_gate", "_released", "endpoint", "on_release")

    def __init__(self, gate: Admission, client: str | None = None) -> None:
        self._gate = gate
        self._client = client
        self._released = False
        self.on_release: Callable[[], None] | None = None  # e.g. the in-flight gauge's dec
        self.endpoint = "speech"  # what it was admitted for (the metrics' `endpoint` label)

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
    """At most `limit` slots in use (event loop only, so no lock); `shared`: at most the caller's
    `limits.requests` of them held by one caller (`CALLER`, counted by its `share_key`; 0: no share). `what` names
    them in the 429 message."""

    def __init__(self, limit: int, what: str, *, retry_after: int = 1, shared: bool = False) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit}")
        self.limit = limit
        self.what = what
        self.retry_after = retry_after
        self.shared = shared
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
        caller = CALLER.get() if self.shared else None
        share = caller.limits.requests if caller is not None else 0
        client = caller.share_key if share else None
        held = self._by_client.get(client, 0) if client is not None else 0
        if client is not None and held >= share:
            self.rejected += 1
            raise OverloadedError(
                f"this client has {held} {self.what} in flight (limit {share} per client); retry shortly",
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
        self, limit: int, what: str, metrics: ServiceMetrics, *, retry_after: int = 1, shared: bool = False
    ) -> None:
        super().__init__(limit, what, retry_after=retry_after, shared=shared)
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
        slot.endpoint = endpoint
        return slot
