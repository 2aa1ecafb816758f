"""The load generator: httpx async requests to POST /v1/audio/speech, bounded in count and time."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from stress_test.config import StressConfig
from stress_test.stats import (
    WAV_HEAD_BYTES,
    LevelSummary,
    RequestResult,
    audio_duration,
    audio_payload_bytes,
    summarize,
)

SPEECH_PATH = "/v1/audio/speech"
HEALTH_PATH = "/health"
READY_PATH = "/ready"

Clock = Callable[[], float]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LevelRun:
    summary: LevelSummary
    results: list[RequestResult]


def make_client(config: StressConfig, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    connections = max(config.concurrency) + 4
    headers = {"Authorization": f"Bearer {config.api_key}"} if config.api_key else {}
    return httpx.AsyncClient(
        base_url=config.api,
        headers=headers,
        timeout=httpx.Timeout(config.request_timeout, connect=min(10.0, config.request_timeout)),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        transport=transport,
    )


async def _speech(client: httpx.AsyncClient, config: StressConfig, index: int, clock: Clock) -> RequestResult:
    text = config.texts[index % len(config.texts)]
    start = clock()
    async with client.stream("POST", SPEECH_PATH, json=config.payload(text)) as response:
        if response.status_code != 200:
            body = await response.aread()
            return RequestResult(
                index,
                ok=False,
                latency=clock() - start,
                status=response.status_code,
                error=f"HTTP {response.status_code}",
                detail=body[:300].decode("utf-8", "replace"),
            )
        head = bytearray()
        total = 0
        ttfa: float | None = None
        async for chunk in response.aiter_bytes():
            if not chunk:
                continue
            if len(head) < WAV_HEAD_BYTES:
                head += chunk[: WAV_HEAD_BYTES - len(head)]
            total += len(chunk)
            if ttfa is None and audio_payload_bytes(config.response_format, bytes(head), total) > 0:
                ttfa = clock() - start
        latency = clock() - start
    seconds = audio_duration(config.response_format, bytes(head), total)
    if seconds <= 0:
        detail = f"{total} body bytes"
        return RequestResult(index, False, latency, body_bytes=total, status=200, error="no audio", detail=detail)
    return RequestResult(index, True, latency, ttfa, seconds, total, status=200)


async def one_request(
    client: httpx.AsyncClient, config: StressConfig, index: int, clock: Clock = time.perf_counter
) -> RequestResult:
    """Send request `index` (its text is texts[index % len]); never raises for a failed request."""
    start = clock()
    try:
        return await asyncio.wait_for(_speech(client, config, index, clock), timeout=config.request_timeout)
    # On Python 3.10, asyncio.wait_for raises asyncio.TimeoutError, not yet the builtin TimeoutError.
    except (asyncio.TimeoutError, httpx.TimeoutException) as exc:  # noqa: UP041
        return RequestResult(
            index, ok=False, latency=clock() - start, timed_out=True, error="timeout", detail=type(exc).__name__
        )
    except httpx.HTTPError as exc:
        return RequestResult(index, ok=False, latency=clock() - start, error=type(exc).__name__, detail=str(exc)[:300])
    except ValueError as exc:  # a body that is no WAV
        return RequestResult(index, ok=False, latency=clock() - start, error="bad audio", detail=str(exc)[:300])


async def run_level(
    client: httpx.AsyncClient, config: StressConfig, concurrency: int, clock: Clock = time.perf_counter
) -> LevelRun:
    """`config.total_requests` requests with `concurrency` of them in flight (closed loop).

    No request starts after `config.max_duration` seconds; each one is bounded by `config.request_timeout`.
    """
    next_index = 0
    results: list[RequestResult] = []
    start = clock()
    deadline = start + config.max_duration

    async def worker() -> None:
        nonlocal next_index
        while next_index < config.total_requests and clock() < deadline:
            index = next_index
            next_index += 1
            results.append(await one_request(client, config, index, clock))

    await asyncio.gather(*(worker() for _ in range(min(concurrency, config.total_requests))))
    wall = clock() - start
    if len(results) < config.total_requests:
        _log(f"concurrency {concurrency}: MAX_DURATION reached, {len(results)}/{config.total_requests} requests sent")
    results.sort(key=lambda r: r.index)
    return LevelRun(summarize(concurrency, results, wall), results)


async def wait_ready(client: httpx.AsyncClient, seconds: float, clock: Clock = time.monotonic) -> bool:
    """Poll GET /ready (models loaded, backend answering) until it answers 200 or `seconds` pass.

    A server without /ready (404) is taken as ready once GET /health answers 200.
    """
    deadline = clock() + seconds
    while True:
        try:
            status = (await client.get(READY_PATH, timeout=5.0)).status_code
            if status == 404:
                status = (await client.get(HEALTH_PATH, timeout=5.0)).status_code
            if status == 200:
                return True
        except httpx.HTTPError:
            pass
        if clock() >= deadline:
            return False
        await asyncio.sleep(min(2.0, max(0.0, deadline - clock())))


async def run(config: StressConfig, transport: httpx.AsyncBaseTransport | None = None) -> list[LevelRun]:
    """Wait for the API if asked, send the warm-up requests, then run each concurrency level in turn."""
    async with make_client(config, transport) as client:
        if config.wait_ready > 0:
            _log(f"waiting up to {config.wait_ready:.0f}s for {config.api}{READY_PATH}")
            if not await wait_ready(client, config.wait_ready):
                raise TimeoutError(f"{config.api}{READY_PATH} did not answer 200 within {config.wait_ready:.0f}s")
        for index in range(config.warmup_count):
            result = await one_request(client, config, index)
            state = "ok" if result.ok else f"failed: {result.error} {result.detail or ''}".rstrip()
            _log(f"warm-up {index + 1}/{config.warmup_count}: {result.latency:.3f}s {state}")
        runs: list[LevelRun] = []
        for concurrency in config.concurrency:
            _log(f"concurrency {concurrency}: {config.total_requests} requests")
            runs.append(await run_level(client, config, concurrency))
        return runs


def summaries(runs: Sequence[LevelRun]) -> list[LevelSummary]:
    return [r.summary for r in runs]
