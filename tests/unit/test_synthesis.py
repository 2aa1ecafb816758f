"""The decode loop alone: a hand-written async generator as the backend, a stand-in engine, no server."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.audio.stitch import StitchPlan
from app.errors import NoAudioError
from app.observability.metrics import ServiceMetrics
from app.service.debug_audio import DebugAudioWriter
from app.service.requests import ResolvedGeneration
from app.service.synthesis import WINDOWS_AHEAD, Synthesis, SynthesisJob

SPT = 4  # samples per token
PLAN = StitchPlan(
    chunk_tokens=4, overlap_tokens=1, first_chunk_tokens=2, left_context_tokens=2, samples_per_token=SPT,
    fade_in_samples=0,
)
GEN = ResolvedGeneration(
    response_format="pcm", temperature=0.6, repetition_penalty=1.1, max_tokens=100, stream=True,
    playback_speed=1.0, playback_overlap_speed=1.0, speed=1.0, stream_format="audio", seed=None,
)


class BackendError(RuntimeError):
    pass


class Bursts:
    """A backend whose tokens come in the bursts a test puts in `feed`: a list of ids, an exception, or None (the end)."""

    def __init__(self, close_seconds: float = 0.0) -> None:
        self.feed: asyncio.Queue[list[int] | Exception | None] = asyncio.Queue()
        self.opened = 0
        self.close_seconds = close_seconds  # how long closing the request takes
        self.closed = asyncio.Event()

    async def stream_speech_tokens(self, prompt, params, stats=None, *, request_id=None):
        self.opened += 1
        try:
            while (item := await self.feed.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                stats.speech_tokens += len(item)
                yield item
        finally:
            if self.close_seconds:
                await asyncio.sleep(self.close_seconds)
            self.closed.set()

    def send(self, *items: list[int] | Exception | None) -> None:
        for item in items:
            self.feed.put_nowait(item)


class Engine:
    """Decodes token t into SPT samples of value t, so stitched audio is `np.repeat(tokens, SPT)` exactly.

    While `gate` is clear, decodes wait for it."""

    def __init__(self) -> None:
        self.windows: list[tuple[list[int], bool]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.cancelled = 0

    async def decode(self, tokens, *, stream=0, final=False, slack=0.0):
        self.windows.append((tokens.tolist(), final))
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return np.repeat(tokens.astype(np.float32), SPT)


def synthesis(backend: Bursts, engine: Engine, **kw) -> tuple[Synthesis, SynthesisJob, ServiceMetrics]:
    job = SynthesisJob(request_id="tts-test", prompt="p", gen=GEN, sample_rate=SPT * 50)
    metrics = ServiceMetrics()
    return Synthesis(job, PLAN, backend=backend, engine=engine, stream=7, metrics=metrics, **kw), job, metrics


def outcomes(metrics: ServiceMetrics) -> dict[str, float]:
    return {
        s.labels["outcome"]: s.value
        for family in metrics.requests.collect()
        for s in family.samples
        if s.name == "tts_requests_total"
    }


async def test_tokens_in_bursts_become_the_stitched_audio_of_every_token() -> None:
    backend, engine = Bursts(), Engine()
    run, job, metrics = synthesis(backend, engine)
    ids = list(range(1, 20))
    backend.send(ids[:1], ids[1:4], ids[4:5], ids[5:12], ids[12:], None)
    chunks = [c async for c in run.chunks()]
    audio = np.concatenate(chunks)
    np.testing.assert_array_equal(audio, np.repeat(np.array(ids, np.float32), SPT))
    assert job.tokens == ids and job.samples_out == len(audio) and job.first_audio_at is not None
    assert engine.windows[-1][1] and not any(final for _, final in engine.windows[:-1])
    assert run.outcome == "completed" and outcomes(metrics) == {"completed": 1.0}
    assert backend.closed.is_set()


async def test_a_backend_error_before_the_first_audio_is_raised_and_nothing_is_sent() -> None:
    backend, engine = Bursts(), Engine()
    run, job, metrics = synthesis(backend, engine)
    backend.send([1], BackendError("vLLM went away"))  # one token: not enough for the first window
    got = []
    with pytest.raises(BackendError):
        async for chunk in run.chunks():
            got.append(chunk)
    assert got == [] and job.samples_out == 0 and engine.windows == []
    assert run.outcome == "failed" and outcomes(metrics) == {"failed": 1.0}


async def test_a_backend_that_ends_without_tokens_is_no_audio() -> None:
    backend, engine = Bursts(), Engine()
    run, _, _ = synthesis(backend, engine)
    backend.send(None)
    with pytest.raises(NoAudioError):
        [c async for c in run.chunks()]


async def test_after_the_first_audio_a_backend_error_still_speaks_every_token_given() -> None:
    backend, engine = Bursts(), Engine()
    run, job, _ = synthesis(backend, engine)
    chunks = run.chunks()
    backend.send([1, 2, 3])  # the first window: 2 tokens + 1 of overlap
    got = [await anext(chunks)]
    backend.send([4, 5, 6, 7, 8, 9, 10], BackendError("stream cut"))
    with pytest.raises(BackendError):
        async for chunk in chunks:
            got.append(chunk)
    np.testing.assert_array_equal(np.concatenate(got), np.repeat(np.arange(1, 11, dtype=np.float32), SPT))
    assert run.outcome == "failed" and job.samples_out == 10 * SPT


async def test_closing_the_stream_closes_the_backend_request_and_drops_the_windows_in_flight() -> None:
    backend, engine = Bursts(), Engine()
    ended: list[str] = []
    run, _, metrics = synthesis(backend, engine, on_end=lambda job, outcome: ended.append(outcome))
    chunks = run.chunks()
    backend.send(list(range(1, 4)))
    await anext(chunks)
    engine.gate.clear()
    backend.send(list(range(4, 30)))  # more windows than may be in flight
    waiting = asyncio.ensure_future(anext(chunks))
    while len(engine.windows) < 1 + WINDOWS_AHEAD:
        await asyncio.sleep(0)
    assert not backend.closed.is_set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await chunks.aclose()
    assert backend.closed.is_set() and engine.cancelled == WINDOWS_AHEAD
    assert ended == ["cancelled"] and outcomes(metrics) == {"cancelled": 1.0}


async def test_aclose_while_waiting_for_tokens_closes_the_backend_request() -> None:
    backend, engine = Bursts(), Engine()
    run, _, _ = synthesis(backend, engine)
    chunks = run.chunks()
    backend.send([1, 2, 3])
    await anext(chunks)
    await chunks.aclose()  # the backend still has the request open, with no tokens for the next window
    assert backend.closed.is_set() and run.outcome == "cancelled"


async def test_a_second_cancellation_does_not_cut_closing_the_backend_request_short() -> None:
    backend, engine = Bursts(close_seconds=0.05), Engine()
    run, job, _ = synthesis(backend, engine)

    async def listen() -> None:
        async for _ in run.chunks():
            pass

    listener = asyncio.ensure_future(listen())
    backend.send([1, 2, 3])
    while job.first_audio_at is None:
        await asyncio.sleep(0)
    listener.cancel()
    for _ in range(3):
        await asyncio.sleep(0)
    listener.cancel()  # anyio delivers a cancellation again while the stream is closing
    with pytest.raises(asyncio.CancelledError):
        await listener
    await asyncio.wait_for(backend.closed.wait(), 2)


async def test_at_most_windows_ahead_windows_are_decoding_at_once() -> None:
    backend, engine = Bursts(), Engine()
    engine.gate.clear()
    run, _, _ = synthesis(backend, engine)
    backend.send(list(range(1, 40)), None)
    consumer = asyncio.ensure_future(run.chunks().__anext__())
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(engine.windows) == WINDOWS_AHEAD
    engine.gate.set()
    await consumer


async def test_the_consumer_is_woken_only_when_its_next_window_has_its_tokens() -> None:
    backend, engine = Bursts(), Engine()
    run, _, _ = synthesis(backend, engine)
    waits = 0
    wait_for_tokens = run._wait_for_tokens

    async def counted() -> None:
        nonlocal waits
        waits += 1
        await wait_for_tokens()

    run._wait_for_tokens = counted
    chunks = run.chunks()
    backend.send([1, 2, 3])
    await anext(chunks)
    waiting = asyncio.ensure_future(anext(chunks))
    needed = run.stitcher.tokens_needed()  # the next regular window: 2 + 4 of chunk + 1 of overlap
    assert needed == 7
    for t in range(4, needed):  # one token at a time, never enough
        backend.send([t])
        for _ in range(5):
            await asyncio.sleep(0)
    assert waits == 2 and not waiting.done()  # once before the first window, once since: never woken for nothing
    backend.send([needed])
    chunk = await asyncio.wait_for(waiting, 5)
    np.testing.assert_array_equal(chunk, np.repeat(np.arange(3, 7, dtype=np.float32), SPT))
    await chunks.aclose()


async def test_debug_audio_saves_each_decoded_window(tmp_path) -> None:
    backend, engine = Bursts(), Engine()
    run, _, _ = synthesis(backend, engine, debug_audio=DebugAudioWriter(str(tmp_path), max_files=10))
    backend.send(list(range(1, 8)), None)
    [c async for c in run.chunks()]
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == [f"tts-test_{i:04d}.wav" for i in range(len(engine.windows))]
