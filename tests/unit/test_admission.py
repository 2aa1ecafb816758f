"""Admission slots, the normalizer's priorities and reference header checks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from app.errors import InvalidRequestError, OverloadedError
from app.service.admission import Admission
from app.service.references import check_reference_header
from app.text.executor import SPEECH, TOOL, PriorityExecutor


def test_admission_rejects_when_full_and_a_slot_is_released_once() -> None:
    gate = Admission(2, "requests", retry_after=3)
    a, b = gate.admit(), gate.admit()
    with pytest.raises(OverloadedError) as exc:
        gate.admit()
    assert exc.value.retry_after == 3 and "limit 2" in exc.value.message and gate.rejected == 1
    a.release()
    a.release()  # idempotent: the second release must not free b's slot
    assert gate.in_use == 1
    with gate.admit():
        assert gate.in_use == 2
    b.release()
    assert gate.in_use == 0


def test_priority_executor_runs_speech_before_waiting_tool_jobs() -> None:
    pool = PriorityExecutor("test")
    gate, started = threading.Event(), threading.Event()
    order: list[str] = []
    try:
        first = pool.submit(TOOL, lambda: (started.set(), gate.wait(5), order.append("busy")))
        assert started.wait(5)  # the worker has taken "busy"
        later = [pool.submit(TOOL, order.append, "tool-a"), pool.submit(TOOL, order.append, "tool-b")]
        speech = pool.submit(SPEECH, order.append, "speech")
        gate.set()
        for f in [first, *later, speech]:
            f.result(5)
    finally:
        pool.shutdown()
    assert order == ["busy", "speech", "tool-a", "tool-b"]


async def test_priority_executor_drops_a_cancelled_job_that_has_not_started() -> None:
    pool = PriorityExecutor("test")
    gate = threading.Event()
    ran: list[str] = []
    try:
        busy = pool.submit(SPEECH, gate.wait, 5)
        waiting = asyncio.ensure_future(pool.run(SPEECH, ran.append, "dropped"))
        await asyncio.sleep(0)  # the task runs up to its first await: the job is queued behind "busy"
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        gate.set()
        busy.result(5)
        assert await pool.run(SPEECH, lambda: "next") == "next"
    finally:
        pool.shutdown()
    assert ran == []


@pytest.mark.parametrize(
    ("rate", "frames", "message"),
    [
        (1_000_003, 1_000_003, "1000003 Hz"),
        (4_000, 4_000, "4000 Hz"),
        (16_000, 800, "under 0.1 s"),
        (8_000, 8_000 * 3600, "3600.0 s"),
    ],
)
def test_reference_header_checks(rate: int, frames: int, message: str) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        check_reference_header(rate, frames, max_seconds=30)
    assert message in exc.value.message and exc.value.param == "reference_audio"


def test_reference_header_accepts_the_edges() -> None:
    check_reference_header(8_000, 8_000, 30)
    check_reference_header(192_000, 192_000 * 30, 30)
