"""pipecat's first audio frame against our time to first audio (prints, asserts nothing).

pipecat's `OpenAITTSService` reads the response body in 0.5 s blocks (24,000 bytes of 24 kHz pcm) and plays
nothing before the first block is full. For each `FIRST_CHUNK_SECONDS` it prints, over a few requests, our
TTFA (first body chunk seen by httpx) and pipecat's first frame (a real pipeline, request to first
`TTSAudioRawFrame`). The fake vLLM sends tokens at `--rate` per second (50: real time) to the service with its
default chunk sizes and the stand-in codec, so the figures show the windowing, not a codec's speed.

    python -m benchmarks.pipecat_first_frame [--rate 50] [--runs 3] [--first 0.4 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

import httpx

from app.main import Components
from app.settings import Settings
from tools.agents import PipecatRun
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = "Hello there, the meeting is at three, and the room is on the second floor."


async def our_ttfa(url: str) -> float:
    async with httpx.AsyncClient(timeout=60) as client:
        t0 = time.perf_counter()
        body = {"input": TEXT, "voice": "alloy", "response_format": "pcm"}
        async with client.stream("POST", f"{url}/v1/audio/speech", json=body) as resp:
            async for _ in resp.aiter_raw():
                return time.perf_counter() - t0
    raise RuntimeError("no audio")


async def pipecat_first_frame(url: str) -> float:
    run = PipecatRun(url, "alloy")
    t0 = time.perf_counter()
    await run.run(TEXT)
    if run.first_at is None:
        raise RuntimeError(f"pipecat got no audio: {[e.error for e in run.errors]}")
    return run.first_at - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="backend tokens per second per stream")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--first", type=float, nargs="+", default=[0.4, 0.5], help="FIRST_CHUNK_SECONDS values")
    args = parser.parse_args()
    import logging
    import warnings

    from loguru import logger as loguru_logger

    warnings.simplefilter("ignore", DeprecationWarning)
    loguru_logger.remove()  # pipecat's debug logging
    logging.disable(logging.INFO)
    print(f"{platform.processor() or platform.machine()}, backend {args.rate:g} tokens/s, {args.runs} runs (median)")
    print(f"{'FIRST_CHUNK_SECONDS':>20} {'our TTFA s':>11} {'pipecat first frame s':>22}")
    with FakeVLLM(n_tokens=300, rate=args.rate) as fake:
        asyncio.run(measure(fake, args.first, args.runs))


async def measure(fake: FakeVLLM, firsts: list[float], runs: int) -> None:
    for first in firsts:
        settings = Settings(_env_file=None, tts_api=fake.url, first_chunk_seconds=first)
        with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
            ours = [await our_ttfa(url) for _ in range(runs)]
            theirs = [await pipecat_first_frame(url) for _ in range(runs)]
        print(f"{first:>20g} {statistics.median(ours):>11.3f} {statistics.median(theirs):>22.3f}")


if __name__ == "__main__":
    main()
