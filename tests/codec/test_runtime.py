"""`CodecRuntime` as the service calls it: decode/encode contracts, counters, CPU fallbacks (issue point 6)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from app.audio.resample import resample_to_16k
from app.codec.decoder import NeuCodecDecoder
from app.codec.graphs import CudaGraphDecoder
from app.codec.interface import CodecStats, Geometry
from app.codec.runtime import CodecRuntime, resolve_device


@pytest.fixture
def runtime(tiny_decoder: NeuCodecDecoder) -> CodecRuntime:
    return CodecRuntime(tiny_decoder, max_batch_size=3)


def _windows(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65_536, n, dtype=np.int64) for n in lengths]


def test_decode_mixed_lengths_matches_decoder_alone(runtime: CodecRuntime, tiny_decoder: NeuCodecDecoder) -> None:
    windows = _windows([5, 12, 5, 1, 11, 5, 30])
    audio = runtime.decode(windows)
    assert len(audio) == len(windows)
    for window, out in zip(windows, audio, strict=True):
        assert out.dtype == np.float32 and out.shape == (window.shape[0] * 480,)
        with torch.inference_mode():
            alone = tiny_decoder(torch.from_numpy(window)[None])[0].clamp(-1, 1).numpy()
        np.testing.assert_allclose(out, alone, rtol=0, atol=1e-4)
    stats = runtime.stats
    assert stats.windows == 7 and stats.tokens == sum(w.shape[0] for w in windows)
    assert stats.batches >= 3 and stats.graph_batches == 0


def test_decode_pad_to_is_exact(runtime: CodecRuntime) -> None:
    windows = _windows([9, 4, 7])
    exact = runtime.decode(windows)
    padded = runtime.decode(windows, pad_to=16)
    for a, b in zip(exact, padded, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert runtime.stats.padded_tokens >= 3 * 16 - 20
    with pytest.raises(ValueError):
        runtime.decode(windows, pad_to=5)


def test_decode_clips_to_unit_range(tiny_decoder: NeuCodecDecoder) -> None:
    runtime = CodecRuntime(tiny_decoder)
    loud = NeuCodecDecoder(tiny_decoder.config).eval()
    loud.load_state_dict(tiny_decoder.state_dict())
    with torch.no_grad():
        loud.generator.head.out.bias[:961] += 6.0  # magnitudes near the 1e2 clip -> samples beyond [-1, 1]
    out = CodecRuntime(loud).decode(_windows([6]))[0]
    assert np.abs(out).max() == pytest.approx(1.0)
    assert np.abs(runtime.decode(_windows([6]))[0]).max() <= 1.0


@pytest.mark.parametrize(
    "window",
    [np.array([], dtype=np.int64), np.array([65_536]), np.array([-1, 3]), np.array([1.0, 2.0]), np.zeros((2, 3), int)],
)
def test_decode_rejects_bad_windows(runtime: CodecRuntime, window: np.ndarray) -> None:
    with pytest.raises(ValueError):
        runtime.decode([_windows([3])[0], window])


def test_decode_empty_list(runtime: CodecRuntime) -> None:
    assert runtime.decode([]) == []


def test_cpu_graph_fallback_logs_and_warmup(tiny_decoder: NeuCodecDecoder, caplog: pytest.LogCaptureFixture) -> None:
    """CUDA graphs need CUDA: on CPU the buckets are ignored (eager). torch.compile does run on CPU (test_compile)."""
    with caplog.at_level(logging.INFO, logger="app.codec"):
        graphs = CodecRuntime(tiny_decoder, graph_buckets=[25, 50], max_batch_size=2)
        graphs.warmup()
    assert caplog.text.count("CUDA_GRAPH_BATCH needs CUDA") == 1
    assert caplog.text.count("eager warmup") == 1
    # On CPU buckets do not pad: windows run at their own lengths.
    graphs.decode(_windows([10, 10]))
    assert graphs.stats.padded_tokens == 0 and graphs.stats.graph_batches == 0
    assert graphs.stats.compiles == 0


def test_graph_decoder_requires_cuda(tiny_decoder: NeuCodecDecoder) -> None:
    with pytest.raises(ValueError, match="cuda"):
        CudaGraphDecoder(tiny_decoder, "cpu", [1, 2], [25])


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            resolve_device("cuda:0")


def test_interface_attributes(runtime: CodecRuntime) -> None:
    assert runtime.geometry == Geometry(24_000, 480) and runtime.geometry.tokens_per_second == 50
    assert runtime.has_encoder is False and runtime.device == "cpu"
    assert isinstance(runtime.stats, CodecStats)


@pytest.mark.parametrize("rate", [8_000, 22_050, 24_000, 44_100, 48_000])
def test_resample_to_16k_keeps_frequency(rate: int) -> None:
    seconds, freq = 0.5, 1_000.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    out = resample_to_16k(tone, rate)
    assert out.dtype == np.float32 and abs(out.shape[0] - 8_000) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.shape[0])))
    assert abs(np.argmax(spectrum) * 16_000 / out.shape[0] - freq) < 5
    assert abs(np.sqrt(np.mean(out[500:-500] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_resample_stereo_layouts() -> None:
    left = np.linspace(-1, 1, 4_800, dtype=np.float32)
    stereo = np.stack([left, -left * 0.5], axis=1)  # (N, C)
    mono = resample_to_16k(stereo, 16_000)
    np.testing.assert_allclose(mono, left * 0.25, atol=1e-6)
    np.testing.assert_allclose(resample_to_16k(stereo.T, 16_000), mono)  # (C, N)
    with pytest.raises(ValueError):
        resample_to_16k(np.zeros((2, 2, 2)), 16_000)


class _FakeGraphs:
    """Stands in for `CudaGraphDecoder` (no CUDA here): captured shapes (B, 16); replays run the decoder."""

    def __init__(self, decoder: NeuCodecDecoder):
        self.decoder = decoder
        self.calls: list[tuple[tuple[int, int], list[int]]] = []

    def __contains__(self, shape: tuple[int, int]) -> bool:
        return shape[1] == 16

    def run(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.calls.append((tuple(codes.shape), lengths.tolist()))
        return self.decoder(codes, lengths)


def test_bucketed_batches_replay_graphs_and_long_windows_run_eager(tiny_decoder: NeuCodecDecoder) -> None:
    runtime = CodecRuntime(tiny_decoder, max_batch_size=4)
    fake = _FakeGraphs(tiny_decoder)
    runtime._plan_buckets, runtime._graphs = [16], fake  # what warmup() sets up on CUDA
    windows = _windows([5, 20, 12, 16])
    audio = runtime.decode(windows)
    assert fake.calls == [((3, 16), [16, 12, 5])]  # one padded graph batch; the 20-token window ran eager
    assert runtime.stats.graph_batches == 1 and runtime.stats.batches == 2
    assert runtime.stats.padded_tokens == 3 * 16 - 33
    for window, out in zip(windows, audio, strict=True):
        with torch.inference_mode():
            alone = tiny_decoder(torch.from_numpy(window)[None])[0].clamp(-1, 1).numpy()
        np.testing.assert_allclose(out, alone, rtol=0, atol=1e-4)
