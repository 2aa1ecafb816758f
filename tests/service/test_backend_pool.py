"""The backend pool against two fake vLLMs on real sockets: a stream that breaks goes on on the other backend with
the prompt plus exactly the speech tokens received, none lost or repeated; budgets, rotation, health checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from app.backend.pool import BackendPool, continuation
from app.backend.vllm import SamplingParams, StreamStats, VLLMClient
from app.errors import BackendError, BackendUnavailableError, InvalidRequestError
from app.observability.metrics import ServiceMetrics
from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM, expected_text

PROMPT = speech_prompt("husein", "hello there")
N = 120
PARAMS = SamplingParams(max_tokens=1000, temperature=0.6, repetition_penalty=1.15)


@pytest.fixture
def fakes() -> Iterator[tuple[FakeVLLM, FakeVLLM]]:
    with FakeVLLM(n_tokens=N) as a, FakeVLLM(n_tokens=N) as b:
        yield a, b


@pytest.fixture
async def pool(fakes: tuple[FakeVLLM, FakeVLLM]) -> AsyncIterator[BackendPool]:
    backends = BackendPool(
        [VLLMClient(f.url, "TTS-model", stall_timeout=0.5) for f in fakes],
        retries=2,
        failover_timeout=10.0,
        health_interval=0.1,
        metrics=ServiceMetrics(),
    )
    await backends.start()
    yield backends
    await backends.aclose()


async def generate(pool: BackendPool, request_id: str = "req-1", params: SamplingParams = PARAMS) -> tuple[list[int], StreamStats]:
    stats = StreamStats()
    tokens = [t async for ids in pool.stream_speech_tokens(PROMPT, params, stats, request_id=request_id) for t in ids]
    return tokens, stats


def failovers(pool: BackendPool, outcome: str) -> float:
    assert pool.metrics is not None
    return pool.metrics.registry.get_sample_value("tts_backend_failovers_total", {"outcome": outcome}) or 0.0


def test_continuation_carries_the_tokens_and_takes_them_off_max_tokens() -> None:
    prompt, params = continuation(PROMPT, PARAMS, [7, 8, 9])
    assert prompt == PROMPT + "<|s_7|><|s_8|><|s_9|>" and params.max_tokens == PARAMS.max_tokens - 3
    assert continuation(PROMPT, PARAMS, []) == (PROMPT, PARAMS)


@pytest.mark.parametrize(("mode", "after"), [("early_close", 40), ("die", 40), ("stall", 40), ("error_event", 40),
                                             ("early_close", 0), ("http_error", None)])  # fmt: skip
async def test_a_broken_stream_goes_on_on_the_other_backend_with_exactly_the_tokens_received(
    pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM], mode: str, after: int | None
) -> None:
    a, b = fakes  # a new request goes to the first backend first
    a.set_mode(mode, count=1, **({} if after is None else {"after": after}))
    tokens, stats = await generate(pool)
    assert tokens == a.expected_tokens(PROMPT)  # the tokens of one uninterrupted generation: none lost or repeated
    (first,), (second,) = a.requests, b.requests
    assert second.prompt == first.prompt + expected_text(tokens[: first.tokens_sent])
    assert second.resumed == tokens[: first.tokens_sent] and len(second.resumed) == (after or 0)
    assert second.body["max_tokens"] == PARAMS.max_tokens - first.tokens_sent
    assert {first.id, second.id} == {"cmpl-req-1", "cmpl-req-1-r1"}  # vLLM's request id: unique per attempt
    assert stats.speech_tokens == N and stats.finish_reason == "stop"
    assert failovers(pool, "resent") == 1 and failovers(pool, "exhausted") == 0


async def test_the_retry_budget_spent_ends_the_stream_broken_after_every_token_received(
    pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM]
) -> None:
    for f in fakes:
        f.set_mode("early_close", after=10)  # every request breaks after 10 more tokens
    got: list[int] = []
    with pytest.raises(BackendError):
        async for ids in pool.stream_speech_tokens(PROMPT, PARAMS, request_id="req-2"):
            got += ids
    assert got == fakes[0].expected_tokens(PROMPT)[:30]  # 1 + 2 resends (BACKEND_RETRIES=2), 10 tokens each
    assert failovers(pool, "resent") == 2 and failovers(pool, "exhausted") == 1


async def test_the_failover_deadline_ends_the_stream_broken(fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
    a, b = fakes
    b.stop()  # refuses connections
    a.set_mode("die", count=1, after=10)  # and a dies mid-stream: none is left
    pool = BackendPool([VLLMClient(f"http://127.0.0.1:{f.port}", "TTS-model") for f in fakes], retries=100,
                       failover_timeout=0.5, health_interval=60, metrics=ServiceMetrics())  # fmt: skip
    await pool.start()
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(BackendUnavailableError):
            await generate(pool)
        assert loop.time() - t0 < 3.0 and failovers(pool, "exhausted") == 1
    finally:
        await pool.aclose()


async def test_a_refused_request_is_not_resent(pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
    fakes[0].set_mode("http_error", count=1, status=400)  # a 400 would be refused anywhere
    fakes[1].set_mode("http_error", count=1, status=400)
    with pytest.raises(InvalidRequestError):
        await generate(pool)
    assert len(fakes[0].requests) + len(fakes[1].requests) == 1 and failovers(pool, "resent") == 0


async def test_a_dead_backend_is_skipped_until_its_health_check_passes(
    pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM]
) -> None:
    dead, live = fakes
    dead.set_mode("die", count=1, after=5)
    await generate(pool, "first")
    assert dead.requests[0].tokens_sent == 5 and live.requests[0].resumed
    assert pool.live == [live.url]
    for i in range(4):  # new requests skip the dead one
        tokens, _ = await generate(pool, f"next-{i}")
        assert tokens == live.expected_tokens(PROMPT)
    assert len(dead.requests) == 1
    dead.stop()
    dead.start()  # back on its port
    assert await dead.wait_for_async(lambda: len(pool.live) == 2, timeout=5)
    await asyncio.gather(*(generate(pool, f"after-{i}") for i in range(4)))
    assert len(dead.requests) > 1  # in rotation again


async def test_new_requests_spread_over_the_live_backends(pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM]) -> None:
    for f in fakes:
        f.hold()
    streams = [asyncio.create_task(generate(pool, f"r{i}")) for i in range(4)]
    assert await fakes[0].wait_for_async(lambda: sum(f.active_streams for f in fakes) == 4)
    assert [f.active_streams for f in fakes] == [2, 2]  # least loaded first
    for f in fakes:
        f.release()
    await asyncio.gather(*streams)


async def test_a_break_after_the_last_token_ends_the_stream_without_a_resend(
    pool: BackendPool, fakes: tuple[FakeVLLM, FakeVLLM]
) -> None:
    params = SamplingParams(max_tokens=50, temperature=0.6, repetition_penalty=1.15)
    for f in fakes:
        f.set_mode("early_close", count=1, after=50)  # all 50 tokens out, then the socket drops
    tokens, stats = await generate(pool, params=params)
    assert tokens == fakes[0].expected_tokens(PROMPT)[:50] and stats.finish_reason == "length"
    assert sum(len(f.requests) for f in fakes) == 1
