"""Concurrency sweep: the most concurrent streams whose p95 time to first audio is within a target and whose
listeners hear no underrun.

Each level keeps `concurrency` streamed `pcm` requests in flight (closed loop, like stress_test/) for `requests`
requests. A listener starts playing at its first audio byte; `app.observability.metrics.PlaybackClock` (the
service's own definition, behind `tts_underrun_seconds`) adds the silence it hears when audio comes after
everything before it has played. The levels run in order and stop after the first that misses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import httpx
import numpy as np

from app.observability.metrics import PlaybackClock

PCM_RATE = 24_000
TOKENS_PER_SECOND = 50


@dataclass(frozen=True)
class Stream:
    ok: bool
    ttfa_s: float | None = None
    total_s: float = 0.0
    audio_s: float = 0.0
    underrun_s: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class Level:
    concurrency: int
    requests: int
    failed: int
    ttfa_p50_s: float | None
    ttfa_p95_s: float | None
    underrun_streams: int  # streams whose listener heard more than the tolerance
    underrun_max_s: float
    audio_s_per_s: float  # aggregate audio seconds generated per wall second
    passed: bool
    errors: tuple[str, ...] = ()

    @property
    def tokens_per_s(self) -> float:
        return self.audio_s_per_s * TOKENS_PER_SECOND


async def one_stream(client: httpx.AsyncClient, body: dict) -> Stream:
    clock = PlaybackClock(PCM_RATE)
    start = time.perf_counter()
    ttfa, underrun, samples, spare = None, 0.0, 0, b""
    try:
        async with client.stream("POST", "/v1/audio/speech", json=body) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return Stream(False, error=f"HTTP {resp.status_code}: {resp.text[:200]}")
            async for chunk in resp.aiter_bytes():
                data = spare + chunk
                n, spare = len(data) // 2, data[len(data) // 2 * 2 :]
                if not n:
                    continue
                now = time.perf_counter() - start
                ttfa = now if ttfa is None else ttfa
                underrun += clock.add(now, n)[1]
                samples += n
    except httpx.HTTPError as exc:
        return Stream(False, error=f"{type(exc).__name__}: {exc}"[:200])
    total = time.perf_counter() - start
    if not samples:
        return Stream(False, total_s=total, error="no audio")
    return Stream(True, ttfa, total, samples / PCM_RATE, underrun)


def summarize(concurrency: int, streams: Sequence[Stream], wall_s: float, *, ttfa_target_s: float,
              underrun_tolerance_s: float) -> Level:  # fmt: skip
    ok = [s for s in streams if s.ok]
    ttfas = [s.ttfa_s for s in ok if s.ttfa_s is not None]
    p50, p95 = (float(np.percentile(ttfas, q)) for q in (50, 95)) if ttfas else (None, None)
    heard = [s for s in ok if s.underrun_s > underrun_tolerance_s]
    failed = len(streams) - len(ok)
    passed = bool(ok) and not failed and not heard and p95 is not None and p95 <= ttfa_target_s
    return Level(
        concurrency, len(streams), failed, p50, p95, len(heard), max((s.underrun_s for s in ok), default=0.0),
        sum(s.audio_s for s in ok) / wall_s if wall_s > 0 else 0.0, passed,
        tuple(sorted({s.error or "" for s in streams if not s.ok})),
    )  # fmt: skip


async def run_level(
    client: httpx.AsyncClient, bodies: Sequence[dict], concurrency: int, requests: int
) -> tuple[list[Stream], float]:
    """`requests` streams with `concurrency` in flight; (their results, wall seconds)."""
    queue = iter(range(requests))
    results: list[Stream] = []

    async def worker() -> None:
        for i in queue:
            results.append(await one_stream(client, bodies[i % len(bodies)]))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(concurrency, requests))))
    return results, time.perf_counter() - start


async def sweep(
    api: str,
    bodies: Sequence[dict],
    levels: Sequence[int],
    *,
    requests_per_level: Callable[[int], int] | None = None,
    ttfa_target_s: float,
    underrun_tolerance_s: float = 0.0,
    headers: dict[str, str] | None = None,
    say: Callable[[str], None] = print,
) -> list[Level]:
    """Each level in turn (after one warm-up stream) until one misses; every level's summary."""
    per_level = requests_per_level or (lambda c: max(2 * c, 4))
    limits = httpx.Limits(max_connections=max(levels) + 4, max_keepalive_connections=max(levels) + 4)
    out: list[Level] = []
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=300.0, limits=limits) as client:
        await one_stream(client, bodies[0])
        for concurrency in sorted(levels):
            streams, wall = await run_level(client, bodies, concurrency, per_level(concurrency))
            level = summarize(concurrency, streams, wall, ttfa_target_s=ttfa_target_s,
                              underrun_tolerance_s=underrun_tolerance_s)  # fmt: skip
            say(level_line(level))
            out.append(level)
            if not level.passed:
                break
    return out


def best(levels: Sequence[Level]) -> int:
    """The most streams that passed (0: none did)."""
    return max((lv.concurrency for lv in levels if lv.passed), default=0)


def decode_curve(levels: Sequence[Level]) -> tuple[tuple[float, float], ...]:
    """(concurrency, aggregate speech tokens/s) of the measured levels: tools/capacity.py's decode curve."""
    return tuple((float(lv.concurrency), lv.tokens_per_s) for lv in levels if lv.audio_s_per_s > 0)


def level_line(lv: Level) -> str:
    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    verdict = "pass" if lv.passed else "MISS"
    return (f"{lv.concurrency:>5} {lv.requests:>5} {lv.failed:>5} {f(lv.ttfa_p50_s):>8} {f(lv.ttfa_p95_s):>8} "
            f"{lv.underrun_streams:>9} {lv.underrun_max_s:>9.3f} {lv.audio_s_per_s:>9.2f}  {verdict}")  # fmt: skip


HEADER = (
    f"{'conc':>5} {'reqs':>5} {'fail':>5} {'ttfa p50':>8} {'ttfa p95':>8} {'underruns':>9} {'max s':>9} {'audio/s':>9}"
)


def as_dicts(levels: Sequence[Level]) -> list[dict]:
    return [asdict(lv) | {"tokens_per_s": lv.tokens_per_s} for lv in levels]
