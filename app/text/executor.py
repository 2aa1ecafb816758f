"""One normalizer thread with two priorities: speech requests' text goes before `/v1/audio/normalize` calls."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

SPEECH = 0  # text a speech request waits on
TOOL = 1  # `/v1/audio/normalize`


class PriorityExecutor:
    """A single worker thread that always runs the lowest-priority-number job next (FIFO within a priority).

    Jobs are not pre-empted: a job already running finishes first, so callers bound each job's size.
    """

    def __init__(self, name: str = "normalizer") -> None:
        self._heap: list[tuple[int, int, Future, Callable[[], Any]]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, priority: int, fn: Callable[..., T], *args: Any) -> Future:
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("executor is shut down")
            heapq.heappush(self._heap, (priority, next(self._order), fut, lambda: fn(*args)))
            self._cond.notify()
        return fut

    async def run(self, priority: int, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the worker thread; cancelling the await drops the job if it has not started."""
        fut = self.submit(priority, fn, *args)
        try:
            return await asyncio.wrap_future(fut)
        finally:
            fut.cancel()  # no-op once running or done

    def shutdown(self) -> None:
        with self._cond:
            self._closed = True
            for _, _, fut, _ in self._heap:
                fut.cancel()
            self._heap.clear()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                _, _, fut, call = heapq.heappop(self._heap)
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:  # handed to the awaiting request
                fut.set_exception(exc)
            else:
                fut.set_result(result)
