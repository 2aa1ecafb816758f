"""The codec worker: batching concurrent jobs, isolating failures, staying alive, health."""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import suppress
from typing import Any

import numpy as np
import pytest

from app.codec.interface import CodecStats, Geometry
from app.engine.errors import CodecFailed, EngineStopping
from app.engine.messages import JobKind
from app.engine.worker import CodecEngine
from tools.harness import until


def submit(engine: CodecEngine, kind: JobKind, payload: np.ndarray, **job: Any) -> asyncio.Future:
    """A job through `CodecEngine.submit`, as `EngineCore` hands it one: a future for its result; cancelling the
    future drops the job if it has not started."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future = loop.create_future()

    def resolve(result: Any, exc: BaseException | None) -> None:
        if not fut.done():
            fut.set_exception(exc) if exc is not None else fut.set_result(result)

    def deliver(result: Any, exc: BaseException | None) -> None:
        with suppress(RuntimeError):  # the loop has closed
            loop.call_soon_threadsafe(resolve, result, exc)

    engine.submit(kind, payload, deliver, fut.cancelled, **job)
    return fut


def decode(engine: CodecEngine, tokens: np.ndarray, **job: Any) -> asyncio.Future:
    return submit(engine, JobKind.DECODE, tokens, **job)


def encode(engine: CodecEngine, clip: np.ndarray) -> asyncio.Future:
    return submit(engine, JobKind.ENCODE, clip)


class RecordingCodec:
    geometry = Geometry(24_000, 480)
    device = "cpu"
    has_encoder = True

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[list[int]] = []
        self.stats = CodecStats()

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        self.batches.append([int(w[0]) for w in windows])
        time.sleep(self.delay)
        if any(int(w[0]) < 0 for w in windows):
            raise ValueError("poisoned window")
        return [np.full(len(w) * 480, float(w[0]), np.float32) for w in windows]

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        if any(np.isnan(c).any() for c in clips):
            raise ValueError("a clip contains NaN")
        return [np.arange(len(c) // 320) for c in clips]


async def test_concurrent_jobs_are_batched_and_routed_back() -> None:
    codec = RecordingCodec(delay=0.02)
    engine = CodecEngine(codec, max_batch_size=4, microsleep=0.005)
    engine.start()
    try:
        results = await asyncio.gather(*(decode(engine, np.array([i, 0])) for i in range(10)))
    finally:
        engine.stop()
    for i, audio in enumerate(results):
        assert audio.shape == (960,) and audio[0] == i  # each result went back to its own request
    assert max(len(b) for b in codec.batches) > 1
    assert all(len(b) <= 4 for b in codec.batches)
    assert engine.stats.jobs[JobKind.DECODE] == 10 and sum(engine.stats.batch_sizes.values()) == len(codec.batches)


async def test_without_dynamic_batching_each_window_is_alone() -> None:
    codec = RecordingCodec(delay=0.005)
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0.0)
    engine.start()
    try:
        await asyncio.gather(*(decode(engine, np.array([i])) for i in range(6)))
    finally:
        engine.stop()
    assert [len(b) for b in codec.batches] == [1] * 6


async def test_a_poisoned_job_fails_alone_and_the_worker_keeps_running() -> None:
    codec = RecordingCodec(delay=0.01)
    engine = CodecEngine(codec, max_batch_size=8, microsleep=0.01)
    engine.start()
    try:
        results = await asyncio.gather(
            *(decode(engine, np.array([i])) for i in (1, 2, -1, 3)), return_exceptions=True
        )
        assert isinstance(results[2], CodecFailed) and "poisoned" in str(results[2])
        assert [r[0] for k, r in enumerate(results) if k != 2] == [1, 2, 3]
        assert (await decode(engine, np.array([7])))[0] == 7
        assert engine.alive
    finally:
        engine.stop()


async def test_cancelled_jobs_are_not_decoded() -> None:
    codec = RecordingCodec(delay=0.1)
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0.0)
    engine.start()
    try:
        first = asyncio.ensure_future(decode(engine, np.array([1])))
        await until(lambda: codec.batches == [[1]], what="the worker to be busy with the first job")
        second = asyncio.ensure_future(decode(engine, np.array([2])))
        await asyncio.sleep(0)  # the task runs up to its first await: the second job is queued
        second.cancel()
        await first
        await until(lambda: engine.stats.dropped == 1, what="the worker to drop the cancelled job")
    finally:
        engine.stop()
    assert [1] in codec.batches and [2] not in codec.batches
    assert engine.stats.dropped == 1


async def test_stopped_engine_refuses_work() -> None:
    engine = CodecEngine(RecordingCodec(), max_batch_size=1, microsleep=0.0)
    engine.start()
    engine.stop()
    with pytest.raises(EngineStopping):
        await decode(engine, np.array([1]))


async def _streams_that_resubmit(engine: CodecEngine, streams: int, rounds: int, stagger: float) -> None:
    """Like streams of a service: each sends its next window when it gets the last one's audio back, the
    streams a few milliseconds apart (the trip through the front-ends)."""

    async def stream(i: int) -> None:
        await asyncio.sleep(i * stagger)
        for k in range(rounds):
            await decode(engine, np.array([i]), stream=i, final=k == rounds - 1)
            await asyncio.sleep(i * stagger)

    await asyncio.gather(*(stream(i) for i in range(streams)))


@pytest.mark.parametrize("fraction", [0.0, 0.5])
async def test_after_a_full_batch_the_next_waits_for_the_same_streams(fraction: float) -> None:
    codec = RecordingCodec(delay=0.06)
    engine = CodecEngine(codec, max_batch_size=8, microsleep=0.0, batch_wait_fraction=fraction)
    engine.start()
    try:
        await _streams_that_resubmit(engine, streams=4, rounds=4, stagger=0.004)
    finally:
        engine.stop()
    sizes = [len(b) for b in codec.batches]
    if fraction:
        # the first batch starts at the first window; after that each batch waits (at most 30 ms) for the
        # streams it has just served, so all four meet in one batch and stay together
        assert sizes[0] == 1 and sizes.count(4) >= 3, sizes
        assert 0 < engine.stats.fill_wait_seconds < 0.03 * len(sizes)
    else:
        # starting at the first window that arrives splits the streams into small batches, round after round
        assert sum(s == 4 for s in sizes) < 3, sizes
        assert engine.stats.fill_wait_seconds == 0


async def test_a_lone_stream_never_waits_for_a_fuller_batch() -> None:
    codec = RecordingCodec(delay=0.02)
    engine = CodecEngine(codec, max_batch_size=8, microsleep=0.0, batch_wait_fraction=1.0)
    engine.start()
    try:
        started = time.perf_counter()
        await _streams_that_resubmit(engine, streams=1, rounds=5, stagger=0.0)
        elapsed = time.perf_counter() - started
    finally:
        engine.stop()
    assert [len(b) for b in codec.batches] == [1] * 5
    assert engine.stats.fill_wait_seconds == 0 and elapsed < 5 * 0.02 + 0.5


async def test_the_next_batch_does_not_wait_for_a_stream_that_has_ended() -> None:
    codec = RecordingCodec(delay=0.05)
    engine = CodecEngine(codec, max_batch_size=8, microsleep=0.0, batch_wait_fraction=1.0)
    engine.start()
    try:
        # stream 1 sends its last window; stream 2's windows keep coming: nothing waits for stream 1
        await asyncio.gather(decode(engine, np.array([1]), stream=1, final=True), decode(engine, np.array([2]), stream=2))
        waited = engine.stats.fill_wait_seconds
        await asyncio.gather(decode(engine, np.array([2]), stream=2), decode(engine, np.array([3]), stream=3))
    finally:
        engine.stop()
    assert engine.stats.fill_wait_seconds - waited < 0.02  # stream 2 came back at once, stream 1 was not awaited


def test_torch_work_on_a_fresh_thread_returns_its_result_or_raises_its_error() -> None:
    from app.engine.threads import run_on_fresh_thread

    main = threading.get_ident()
    assert run_on_fresh_thread(lambda x: (x * 2, threading.get_ident() != main), 21) == (42, True)
    with pytest.raises(ValueError, match="bad clip"):
        run_on_fresh_thread(lambda: (_ for _ in ()).throw(ValueError("bad clip")))


async def test_encodes_run_on_a_thread_of_their_own_that_ends_with_the_batch() -> None:
    """Only the decode thread may keep an OpenMP team: a second live team slows decoding (app/engine/threads.py)."""
    seen: list[threading.Thread] = []

    class ThreadRecordingCodec(RecordingCodec):
        def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
            seen.append(threading.current_thread())
            return super().encode(clips)

    engine = CodecEngine(ThreadRecordingCodec(), max_batch_size=1, microsleep=0.0)
    engine.start()
    try:
        for _ in range(2):
            assert len(await encode(engine, np.zeros(3200, np.float32))) == 10
        with pytest.raises(CodecFailed):  # an encode's error still fails its own job, on its own thread
            await encode(engine, np.zeros(3, np.float32) + np.nan)
    finally:
        engine.stop()
    assert seen[0] is not seen[1] and not any(t.is_alive() for t in seen)  # (an ended thread's ident is reused)
    assert all(t.name == "codec-encode-batch" for t in seen)


async def test_a_stream_waiting_for_its_first_audio_goes_before_one_with_audio_buffered() -> None:
    codec = RecordingCodec(delay=0.05)
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0.0)
    engine.start()
    try:
        busy = asyncio.ensure_future(decode(engine, np.array([0])))
        await until(lambda: codec.batches == [[0]], what="the worker to decode window 0")  # the next two queue up
        buffered = asyncio.ensure_future(decode(engine, np.array([1]), stream=1, slack=3.0))  # 3 s of audio left
        await asyncio.sleep(0)  # the task runs up to its first await: window 1 is queued first
        starting = asyncio.ensure_future(decode(engine, np.array([2]), stream=2, slack=-0.1))  # no audio yet
        await asyncio.gather(busy, buffered, starting)
        with pytest.raises(ValueError, match="slack"):
            engine.submit(JobKind.DECODE, np.array([3]), lambda r, e: None, slack=float("nan"))
    finally:
        engine.stop()
    assert codec.batches == [[0], [2], [1]]


class FlakyCodec(RecordingCodec):
    def __init__(self) -> None:
        super().__init__()
        self.failing = True
        self.encode_started = threading.Event()
        self.encode_gate = threading.Event()

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        time.sleep(self.delay)
        if self.failing:
            raise RuntimeError("CUDA error (simulated)")
        return [np.zeros(len(w) * 480, np.float32) for w in windows]

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        self.encode_started.set()
        self.encode_gate.wait(5)
        return [np.arange(3) for _ in clips]


async def test_engine_is_unhealthy_after_a_run_of_failures_and_healthy_after_a_success() -> None:
    codec = FlakyCodec()
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0, unhealthy_after=3)
    engine.start()
    try:
        for i in range(3):
            assert engine.healthy
            with pytest.raises(CodecFailed):
                await decode(engine, np.array([i]))
        assert engine.alive and not engine.healthy
        codec.failing = False
        await decode(engine, np.array([1]))
        assert engine.healthy
    finally:
        engine.stop()


async def test_a_batch_running_past_the_timeout_makes_the_engine_unhealthy_until_it_ends() -> None:
    codec = FlakyCodec()
    codec.failing, codec.delay = False, 0.5
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0, timeout=0.1)
    engine.start()
    try:
        slow = decode(engine, np.array([1]))
        await asyncio.sleep(0.3)  # a hung device, as far as the engine can tell
        assert engine.alive and not engine.healthy and not slow.done()
        await slow
        assert engine.healthy
    finally:
        engine.stop()


async def test_a_running_encode_does_not_delay_decodes() -> None:
    codec = FlakyCodec()
    codec.failing = False
    engine = CodecEngine(codec, max_batch_size=1, microsleep=0)
    engine.start()
    try:
        encoding = encode(engine, np.zeros(16000, np.float32))
        assert await asyncio.to_thread(codec.encode_started.wait, 5)
        audio = await asyncio.wait_for(decode(engine, np.array([1, 2])), 2)  # served while the encode runs
        assert audio.shape == (960,) and not encoding.done()
        codec.encode_gate.set()
        assert len(await encoding) == 3
    finally:
        codec.encode_gate.set()
        engine.stop()
