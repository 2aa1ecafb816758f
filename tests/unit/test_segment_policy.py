"""How a segment stream's segments are admitted (app.service.segment_policy): held by the caller, one slot per
segment (a look-ahead waits for the stream's turn), or queued for a slot up to a time limit."""

from __future__ import annotations

import asyncio

import pytest

from app.errors import OverloadedError
from app.service.admission import Admission
from app.service.segment_policy import HeldByCaller, PerSegment, Queued


async def never_drained() -> None:
    await asyncio.sleep(3600)


async def test_held_by_caller_takes_no_slot() -> None:
    assert await HeldByCaller().acquire(never_drained, first=True) is None


async def test_per_segment_refuses_the_first_and_makes_a_look_ahead_wait_its_turn() -> None:
    lane = Admission(1, "requests")
    policy = PerSegment(lambda endpoint: lane.admit())
    held = await policy.acquire(never_drained, first=True)
    with pytest.raises(OverloadedError):
        await policy.acquire(never_drained, first=True)  # nothing of the stream open: a 429 at once
    drained = asyncio.Event()
    waiting = asyncio.ensure_future(policy.acquire(drained.wait, first=False))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # a look-ahead waits until the stream's open segments are delivered
    held.release()
    drained.set()
    slot = await asyncio.wait_for(waiting, 1)
    assert slot is not None and lane.in_use == 1


async def test_queued_waits_for_a_slot_then_gives_up_at_its_limit() -> None:
    lane = Admission(1, "requests")
    policy = Queued(lambda endpoint: lane.admit(), timeout=0.3, interval=0.01)
    held = lane.admit()
    waiting = asyncio.ensure_future(policy.acquire(never_drained, first=True))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # queued, not refused
    held.release()
    slot = await asyncio.wait_for(waiting, 1)
    assert slot is not None
    with pytest.raises(OverloadedError):  # the lane stays full past the limit: refused as PerSegment would
        await Queued(lambda endpoint: lane.admit(), timeout=0.05, interval=0.01).acquire(never_drained, first=True)
