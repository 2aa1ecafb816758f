"""The batching rule as a pure object: queued jobs in, the next batch out. No threads, no asyncio.

A batch takes the live jobs with the earliest deadlines. A decode window's deadline is when its stream's
listener would run out of audio: its arrival plus its `slack`, the audio its client still has to play (negative
while the client is still waiting for its first audio). So when the codec is behind, a stream that has just
started goes before one with seconds of audio buffered, and streams are served before their listeners hear a
gap whenever that can be done at all (earliest deadline first). Jobs without slack keep their arrival order.

The most urgent job leads its batch, and jobs of about its size (windows within 25 % of its length: what the
codec runtime decodes as one padded forward pass, `app.codec.batching`) join it before any other: a batch
filled by deadline alone mixes first windows, regular and catching-up ones, which the runtime must then decode
in several smaller passes.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from app.codec.batching import MAX_PADDING
from app.engine.messages import JobKind


@dataclass
class Job:
    """One unit of work: its input, a way to deliver the result, and when it was queued."""

    kind: JobKind
    payload: Any
    deliver: Callable[[Any, BaseException | None], None]
    is_cancelled: Callable[[], bool] = lambda: False
    enqueued_at: float = field(default_factory=time.perf_counter)
    stream: Hashable | None = None  # the stream a decode window belongs to (None: unknown)
    final: bool = False  # the stream's last window: nothing follows it
    slack: float = 0.0  # seconds from arrival until its listener runs out of audio
    size: int = 0  # a decode window's tokens (0: unknown)

    @property
    def deadline(self) -> float:
        return self.enqueued_at + self.slack


class BatchQueue:
    """Jobs, one lane per kind; `next_batch` serves the lane with the most urgent job, most urgent first."""

    def __init__(self) -> None:
        self._lanes: dict[JobKind, deque[Job]] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._lanes.values())

    def depth(self, kind: JobKind) -> int:
        return len(self._lanes.get(kind, ()))

    def streams(self, kind: JobKind) -> set[Hashable]:
        """The streams that have a job of `kind` waiting."""
        return {job.stream for job in self._lanes.get(kind, ()) if job.stream is not None}

    def append(self, job: Job) -> None:
        self._lanes.setdefault(job.kind, deque()).append(job)

    def next_batch(self, max_size: int) -> tuple[list[Job], list[Job]]:
        """Up to ``max_size`` live jobs of one kind, earliest deadline first (arrival order among equals), from
        the lane whose most urgent job is the most urgent of all; and the dropped ones.

        Jobs whose client has gone (``is_cancelled()``) are dropped, not decoded.
        """
        dropped: list[Job] = []
        for q in self._lanes.values():
            live = []
            for job in q:  # one look at each job: a cancellation may land meanwhile (another thread)
                (dropped if job.is_cancelled() else live).append(job)
            if len(live) != len(q):
                q.clear()
                q.extend(live)
        lanes = [q for q in self._lanes.values() if q]
        if not lanes:
            return [], dropped
        lane = min(lanes, key=lambda q: min(job.deadline for job in q))
        order = sorted(range(len(lane)), key=lambda i: (lane[i].deadline, i))  # stable: arrival among equals
        leader = lane[order[0]].size
        alike = [i for i in order if _alike(lane[i].size, leader)]
        chosen = (alike + [i for i in order if not _alike(lane[i].size, leader)])[:max_size]
        taken = set(chosen)
        batch = [lane[i] for i in chosen]
        rest = deque(job for i, job in enumerate(lane) if i not in taken)
        lane.clear()
        lane.extend(rest)
        return batch, dropped


def _alike(size: int, leader: int) -> bool:
    """Whether a window of `size` tokens pads into the leader's forward pass (unknown sizes are all alike)."""
    return abs(size - leader) <= MAX_PADDING * max(size, leader)
