"""With the real (tiny, random) NeuCodec decoder, batched and unbatched serving give the same audio."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import numpy as np
import torch

from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from app.codec.runtime import CodecRuntime
from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer, serve


class SluggishRuntime(CodecRuntime):
    """The real runtime, 50 ms slower per batch: windows of streams at different stages queue up meanwhile, so
    batches mix window lengths whatever the timing of the machine."""

    def decode(self, windows: list[np.ndarray], **kwargs: object) -> list[np.ndarray]:
        time.sleep(0.05)
        return super().decode(windows, **kwargs)


def tiny_runtime() -> CodecRuntime:
    torch.manual_seed(0)
    return SluggishRuntime(NeuCodecDecoder(CodecConfig.tiny()), max_batch_size=8)


async def run_all(url: str, texts: list[str]) -> list[bytes]:
    async with httpx.AsyncClient(timeout=120) as client:
        responses = await asyncio.gather(*(client.post(f"{url}/v1/audio/speech", json={"input": t}) for t in texts))
    assert all(r.status_code == 200 for r in responses), [r.text[:200] for r in responses]
    return [r.content for r in responses]


async def test_batched_and_unbatched_serving_match(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    # different lengths per request, so batches mix window lengths and padding is exercised
    fake.n_tokens = lambda prompt: 60 + 17 * (len(prompt) % 5)
    fake.rate = 300
    texts = [f"sentence number {'x' * i}" for i in range(6)]
    outputs = {}
    for dynamic in (False, True):
        # regular windows only: windows that catch up depend on how far behind a stream is, so on timing
        settings = settings_for(dynamic_batching=dynamic, max_batch_size=8, microsleep=0.01, max_chunk_seconds=0)
        runtime = tiny_runtime()
        with serve(settings, Components(codec=runtime, normalizer=PassthroughNormalizer())) as url:
            outputs[dynamic] = await run_all(url, texts)
        if dynamic:
            assert runtime.stats.batches < runtime.stats.windows  # windows really were batched
            assert runtime.stats.padded_tokens > 0  # ... with mixed lengths padded
    for alone, batched in zip(outputs[False], outputs[True], strict=True):
        assert len(alone) == len(batched) > 0
        a = np.frombuffer(alone, np.int16).astype(np.int32)
        b = np.frombuffer(batched, np.int16).astype(np.int32)
        # float32 sums in a different batch shape can round differently: at most one LSB, on few samples
        assert np.max(np.abs(a - b)) <= 1
        assert np.mean(a != b) < 0.01


async def test_streams_ahead_of_a_slow_codec_decode_fewer_longer_windows(
    settings_for: Callable[..., Settings], fake: FakeVLLM
) -> None:
    """MAX_CHUNK_SECONDS: tokens that pile up while the codec is busy go into one longer window."""
    fake.n_tokens = 300
    fake.rate = 3000  # far faster than the sluggish codec: every stream is behind its tokens
    texts = [f"sentence number {i}" for i in range(4)]
    decoded, audio = {}, {}
    for max_chunk in (0.0, 3.0):
        settings = settings_for(dynamic_batching=True, max_batch_size=8, max_chunk_seconds=max_chunk)
        runtime = tiny_runtime()
        with serve(settings, Components(codec=runtime, normalizer=PassthroughNormalizer())) as url:
            audio[max_chunk] = await run_all(url, texts)
        decoded[max_chunk] = (runtime.stats.tokens, runtime.stats.windows)
    for regular, caught_up in zip(audio[0.0], audio[3.0], strict=True):
        assert len(regular) == len(caught_up) == 300 * 480 * 2  # every token's samples, nothing lost or repeated
    (tokens_regular, windows_regular), (tokens_caught_up, windows_caught_up) = decoded[0.0], decoded[3.0]
    assert windows_caught_up < windows_regular and tokens_caught_up < 0.95 * tokens_regular
