"""CUDA-only checks of the decoder's fast paths (issue 11, point 2). Skipped without CUDA, so CI never fails on
them; `pytest -m cuda tests/codec/test_cuda.py` or `benchmarks/gpu_check.py` runs them on a GPU machine.

Budgets stated here: the tiny codec's graphs for batch 1..4 x buckets (8, 16, 25) reserve at most 256 MiB; graph
replay equals the eager decode of the same padded batch within 1e-5 and each window decoded alone within 5e-4
(TF32 is switched off for these tests; cuDNN and cuBLAS still pick other kernels for other batch shapes)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from app.codec.graphs import CudaGraphDecoder
from app.codec.precision import apply_precision
from app.codec.runtime import CodecRuntime
from tests.codec.reference import perturb_parameters

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

BUCKETS = (8, 16, 25)
MAX_BATCH = 4
GRAPH_MEMORY_BUDGET = 256 * 2**20
ALONE_ATOL = 5e-4


@pytest.fixture(autouse=True, scope="module")
def _no_tf32() -> Iterator[None]:
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.fixture(scope="module")
def gpu_decoder() -> NeuCodecDecoder:
    """The tiny decoder, seeded and perturbed, on the GPU. Built without the reference package (the GPU machine
    has only torch, numpy, httpx, prometheus-client and pytest)."""
    torch.manual_seed(0)
    decoder = NeuCodecDecoder(CodecConfig.tiny())
    with torch.no_grad():
        perturb_parameters(decoder, scale=0.1, seed=1)
    return decoder.to("cuda").eval()


@pytest.fixture(scope="module")
def graph_runtime(gpu_decoder: NeuCodecDecoder) -> CodecRuntime:
    runtime = CodecRuntime(gpu_decoder, device="cuda", graph_buckets=BUCKETS, max_batch_size=MAX_BATCH)
    torch.cuda.synchronize()
    runtime.warmup()
    return runtime


def _windows(lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65_536, n, dtype=np.int64) for n in lengths]


def _eager(decoder: NeuCodecDecoder, codes: np.ndarray, lengths: list[int] | None = None) -> np.ndarray:
    with torch.inference_mode():
        t = torch.from_numpy(codes).cuda()
        lens = None if lengths is None else torch.tensor(lengths, device="cuda")
        return decoder(t, lens).float().clamp(-1, 1).cpu().numpy()


def test_every_captured_graph_replays_like_eager(graph_runtime: CodecRuntime, gpu_decoder: NeuCodecDecoder) -> None:
    graphs = graph_runtime._graphs
    assert graphs is not None and len(graphs) == MAX_BATCH * len(BUCKETS)
    rng = np.random.default_rng(0)
    for bucket in BUCKETS:
        for batch in range(1, MAX_BATCH + 1):
            lengths = [bucket] + rng.integers(max(1, bucket // 2), bucket + 1, batch - 1).tolist()  # mixed
            windows = _windows(lengths, seed=bucket * 10 + batch)
            codes = np.zeros((batch, bucket), dtype=np.int64)
            for row, w in enumerate(windows):
                codes[row, : w.shape[0]] = w
            replay = graphs.run(torch.from_numpy(codes), torch.tensor(lengths)).clamp(-1, 1).numpy()
            eager = _eager(gpu_decoder, codes, lengths)
            for row, n in enumerate(lengths):
                np.testing.assert_allclose(replay[row, : n * 480], eager[row, : n * 480], rtol=0, atol=1e-5)
                alone = _eager(gpu_decoder, windows[row][None])[0]
                np.testing.assert_allclose(replay[row, : n * 480], alone, rtol=0, atol=ALONE_ATOL)


def test_runtime_routes_bucketed_batches_to_graphs(graph_runtime: CodecRuntime, gpu_decoder: NeuCodecDecoder) -> None:
    before = graph_runtime.stats.graph_batches
    windows = _windows([3, 16, 12, 25, 40], seed=5)
    audio = graph_runtime.decode(windows)
    assert graph_runtime.stats.graph_batches - before >= 2  # 40 tokens exceeds every bucket: eager
    for w, out in zip(windows, audio, strict=True):
        np.testing.assert_allclose(out, _eager(gpu_decoder, w[None])[0], rtol=0, atol=ALONE_ATOL)


def test_two_threads_cannot_corrupt_a_static_buffer(graph_runtime: CodecRuntime, gpu_decoder: NeuCodecDecoder) -> None:
    graphs = graph_runtime._graphs
    assert graphs is not None
    inputs = [_windows([16, 16], seed=s) for s in (11, 12)]
    codes = [torch.from_numpy(np.stack(w)) for w in inputs]
    lengths = torch.tensor([16, 16])
    expected = [graphs.run(c, lengths).numpy() for c in codes]
    assert not np.allclose(expected[0], expected[1])
    errors: list[str] = []

    def hammer(k: int) -> None:
        for _ in range(50):
            out = graphs.run(codes[k], lengths).numpy()
            if not np.array_equal(out, expected[k]):
                errors.append(f"thread {k} got another thread's audio")
                return

    threads = [threading.Thread(target=hammer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_graph_memory_stays_within_budget(gpu_decoder: NeuCodecDecoder) -> None:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    graphs = CudaGraphDecoder(gpu_decoder, "cuda", range(1, MAX_BATCH + 1), BUCKETS)
    graphs.capture()
    assert len(graphs) == MAX_BATCH * len(BUCKETS)
    assert 0 <= graphs.pool_bytes <= GRAPH_MEMORY_BUDGET, f"{graphs.pool_bytes / 2**20:.0f} MiB"


def test_compile_on_cuda_equals_eager_and_never_recompiles(gpu_decoder: NeuCodecDecoder) -> None:
    runtime = CodecRuntime(
        gpu_decoder,
        device="cuda",
        graph_buckets=BUCKETS,
        max_batch_size=MAX_BATCH,
        torch_compile=True,
        max_window_tokens=40,
    )
    runtime.warmup()
    assert runtime.stats.compiles >= 1 and runtime._compiled is not None
    rng = np.random.default_rng(9)
    for step in range(20):
        lengths = rng.integers(1, 41, int(rng.integers(1, MAX_BATCH + 1))).tolist()
        windows = _windows(lengths, seed=200 + step)
        for w, out in zip(windows, runtime.decode(windows), strict=True):
            np.testing.assert_allclose(out, _eager(gpu_decoder, w[None])[0], rtol=0, atol=ALONE_ATOL)
    assert runtime.stats.recompiles == 0


def test_bf16_on_cuda_stays_close_to_float32(gpu_decoder: NeuCodecDecoder) -> None:
    bf16 = apply_precision(copy.deepcopy(gpu_decoder), torch.bfloat16)
    codes = np.stack(_windows([50, 50], seed=3))
    ref, out = _eager(gpu_decoder, codes), _eager(bf16, codes)
    snr = 10 * np.log10(np.sum(ref**2) / np.sum((ref - out) ** 2))
    assert snr > 25.0, snr
