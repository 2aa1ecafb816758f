"""torch.compile of the decoder on CPU (tiny codec): it really compiles, equals eager, and never recompiles
after warm-up (issue 11, point 1). One warmed runtime per module: compiling costs tens of seconds."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from app.codec.compiled import MIN_TOKENS, configure_compile_cache
from app.codec.decoder import NeuCodecDecoder
from app.codec.runtime import CodecRuntime

MAX_BATCH = 18  # past the float32 conv heuristic's batch-16 threshold
MAX_TOKENS = 200  # past its channels * time <= 20480 threshold (160 tokens at width 128)


@pytest.fixture(scope="module")
def compiled(tiny_decoder: NeuCodecDecoder) -> Iterator[tuple[CodecRuntime, str]]:
    runtime = CodecRuntime(tiny_decoder, max_batch_size=MAX_BATCH, torch_compile=True, max_window_tokens=MAX_TOKENS)
    handler = _Collect()
    logger = logging.getLogger("app.codec")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        torch.set_num_threads(1)
        runtime.warmup()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    yield runtime, "\n".join(handler.lines)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _windows(lengths: list[int], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 65_536, n, dtype=np.int64) for n in lengths]


def _alone(decoder: NeuCodecDecoder, window: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return decoder(torch.from_numpy(window)[None])[0].clamp(-1, 1).numpy()


def test_warmup_compiles_the_planned_graphs_and_logs_the_time(compiled: tuple[CodecRuntime, str]) -> None:
    runtime, log = compiled
    batches, lengths = runtime._compiled.regions
    assert batches[:2] == [1, 2] and lengths[0] == MIN_TOKENS  # batch 1 is specialised, batch 2 is not
    assert len(batches) + len(lengths) - 1 <= runtime.stats.compiles <= len(batches) * len(lengths)
    assert runtime.stats.recompiles == 0 and runtime.stats.compile_seconds > 0
    assert f"torch.compile warm-up on cpu (float32): {runtime.stats.compiles} graphs" in log
    assert "eager" not in log


def test_compiled_decode_equals_eager_for_padded_mixed_batches(
    compiled: tuple[CodecRuntime, str], tiny_decoder: NeuCodecDecoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime, _ = compiled
    windows = _windows([1, 37, 30, 29, 12, 11, 10, 3, 64, 50], seed=1)  # padded batches, a 1-token window
    expected = [_alone(tiny_decoder, w) for w in windows]

    def no_eager(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiled runtime fell back to the eager decoder")

    monkeypatch.setattr(tiny_decoder, "forward", no_eager)
    before = runtime.stats.batches
    audio = runtime.decode(windows)
    assert runtime.stats.batches - before >= 4  # several batches, some padded (lengths within 25 %)
    for out, ref in zip(audio, expected, strict=True):
        assert out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-4)
    assert runtime.stats.recompiles == 0


def test_serving_run_adds_no_recompiles(compiled: tuple[CodecRuntime, str]) -> None:
    runtime, _ = compiled
    rng = np.random.default_rng(7)
    compiles = runtime.stats.compiles
    plan = [(MAX_BATCH, MAX_TOKENS), (MAX_BATCH, 1), (1, 1), (1, MAX_TOKENS)]  # the corners, then random
    plan += [(int(rng.integers(1, MAX_BATCH + 1)), int(rng.integers(1, MAX_TOKENS + 1))) for _ in range(30)]
    for step, (batch, longest) in enumerate(plan):  # a serving run: batches of 1..MAX_BATCH mixed windows
        lengths = [longest] + rng.integers(max(1, longest * 3 // 4), longest + 1, batch - 1).tolist()
        audio = runtime.decode(_windows(lengths, seed=100 + step))
        assert [a.shape[0] for a in audio] == [n * 480 for n in lengths]
    assert runtime.stats.compiles == compiles and runtime.stats.recompiles == 0


def test_a_compile_after_warmup_is_counted_as_a_recompile(compiled: tuple[CodecRuntime, str]) -> None:
    """The counter can fail: a call outside inference mode misses the guards and compiles once more."""
    runtime, _ = compiled
    compiles = runtime.stats.compiles
    codes = torch.zeros((2, 8), dtype=torch.int64)
    with torch.no_grad():
        runtime._compiled(codes, torch.tensor([8, 5]))
    assert runtime.stats.compiles == compiles + 1 and runtime.stats.recompiles == 1


def test_configure_compile_cache(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR", raising=False)
    monkeypatch.delenv("TRITON_CACHE_DIR", raising=False)
    path = configure_compile_cache(tmp_path / "cache")
    assert path.is_dir()
    import os

    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(path)
    assert os.environ["TRITON_CACHE_DIR"] == str(path / "triton")
