"""The codec worker: batching concurrent jobs, isolating failures, staying alive."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from app.engine.worker import CodecEngine
from app.errors import DecodeError, NotReadyError


class RecordingCodec:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append([int(w[0]) for w in windows])
        time.sleep(self.delay)
        if any(int(w[0]) < 0 for w in windows):
            raise ValueError("poisoned window")
        return [np.full(len(w) * 480, float(w[0]), np.float32) for w in windows]

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        return [np.arange(len(c) // 320) for c in clips]


async def test_concurrent_jobs_are_batched_and_routed_back() -> None:
    codec = RecordingCodec(delay=0.02)
    engine = CodecEngine(codec, dynamic_batching=True, max_batch_size=4, microsleep=0.005)
    engine.start()
    try:
        results = await asyncio.gather(*(engine.decode(np.array([i, 0])) for i in range(10)))
    finally:
        engine.stop()
    for i, audio in enumerate(results):
        assert audio.shape == (960,) and audio[0] == i  # each result went back to its own request
    assert max(len(b) for b in codec.batches) > 1
    assert all(len(b) <= 4 for b in codec.batches)
    assert engine.stats.jobs["decode"] == 10 and sum(engine.stats.batch_sizes.values()) == len(codec.batches)


async def test_without_dynamic_batching_each_window_is_alone() -> None:
    codec = RecordingCodec(delay=0.005)
    engine = CodecEngine(codec, dynamic_batching=False, max_batch_size=16, microsleep=0.01)
    engine.start()
    try:
        await asyncio.gather(*(engine.decode(np.array([i])) for i in range(6)))
    finally:
        engine.stop()
    assert [len(b) for b in codec.batches] == [1] * 6


async def test_a_poisoned_job_fails_alone_and_the_worker_keeps_running() -> None:
    codec = RecordingCodec(delay=0.01)
    engine = CodecEngine(codec, dynamic_batching=True, max_batch_size=8, microsleep=0.01)
    engine.start()
    try:
        results = await asyncio.gather(
            *(engine.decode(np.array([i])) for i in (1, 2, -1, 3)), return_exceptions=True
        )
        assert isinstance(results[2], DecodeError) and "poisoned" in str(results[2])
        assert [r[0] for k, r in enumerate(results) if k != 2] == [1, 2, 3]
        assert (await engine.decode(np.array([7])))[0] == 7
        assert engine.alive
    finally:
        engine.stop()


async def test_cancelled_jobs_are_not_decoded() -> None:
    codec = RecordingCodec(delay=0.1)
    engine = CodecEngine(codec, dynamic_batching=True, max_batch_size=1, microsleep=0.0)
    engine.start()
    try:
        first = asyncio.ensure_future(engine.decode(np.array([1])))
        await asyncio.sleep(0.02)  # the worker is busy with the first job
        second = asyncio.ensure_future(engine.decode(np.array([2])))
        await asyncio.sleep(0.01)
        second.cancel()
        await first
        await asyncio.sleep(0.15)
    finally:
        engine.stop()
    assert [1] in codec.batches and [2] not in codec.batches
    assert engine.stats.dropped == 1


async def test_stopped_engine_refuses_work() -> None:
    engine = CodecEngine(RecordingCodec(), dynamic_batching=False, max_batch_size=1, microsleep=0.0)
    engine.start()
    engine.stop()
    with pytest.raises(NotReadyError):
        await engine.decode(np.array([1]))
