"""The batching rule as a pure object: queued jobs in, the next batch out. No threads, no asyncio."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Job:
    """One unit of work: its input, a way to deliver the result, and when it was queued."""

    kind: str  # "decode" or "encode"
    payload: Any
    deliver: Callable[[Any, BaseException | None], None]
    is_cancelled: Callable[[], bool] = lambda: False
    enqueued_at: float = field(default_factory=time.perf_counter)


class BatchQueue:
    """FIFO of jobs, one lane per kind; `next_batch` takes the oldest lane's head and same-kind followers."""

    def __init__(self) -> None:
        self._lanes: dict[str, deque[Job]] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._lanes.values())

    def depth(self, kind: str) -> int:
        return len(self._lanes.get(kind, ()))

    def append(self, job: Job) -> None:
        self._lanes.setdefault(job.kind, deque()).append(job)

    def put_back(self, jobs: list[Job]) -> None:
        """Return unprocessed jobs to the front, keeping their order."""
        for job in reversed(jobs):
            self._lanes.setdefault(job.kind, deque()).appendleft(job)

    def next_batch(self, max_size: int) -> tuple[list[Job], list[Job]]:
        """Up to ``max_size`` live jobs of one kind (the kind whose head waited longest), and the dropped ones.

        Jobs whose client has gone (``is_cancelled()``) are dropped, not decoded.
        """
        dropped: list[Job] = []
        for q in self._lanes.values():
            while q and q[0].is_cancelled():
                dropped.append(q.popleft())
        lanes = [q for q in self._lanes.values() if q]
        if not lanes:
            return [], dropped
        lane = min(lanes, key=lambda q: q[0].enqueued_at)
        batch: list[Job] = []
        while lane and len(batch) < max_size:
            job = lane.popleft()
            (dropped if job.is_cancelled() else batch).append(job)
        return batch, dropped
