"""GPU_MEM_UTIL splits a GPU shared by vLLM and the codec engine (issue 31, item 2): the engine caps PyTorch's CUDA
allocator at the rest. No GPU here: the CPU path is checked for real (nothing is capped, torch.cuda is not touched),
the CUDA path with torch's own function recorded instead of run; on a GPU, benchmarks/gpu_check.py runs it."""

from __future__ import annotations

import pytest
import torch

from app.engine.process import cap_gpu_memory
from app.settings import Settings


def test_the_setting_reaches_the_engine_and_empty_means_no_cap() -> None:
    assert Settings(_env_file=None).engine.gpu_mem_util == 0.7  # type: ignore[call-arg]  # vllm.yaml's default
    assert Settings(_env_file=None, gpu_mem_util="").engine.gpu_mem_util is None  # type: ignore[call-arg]
    for bad in ("0", "1", "1.5", "-0.1"):
        with pytest.raises(ValueError):
            Settings(_env_file=None, gpu_mem_util=bad)  # type: ignore[call-arg]


def test_on_a_cpu_nothing_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("torch.cuda touched on a CPU codec")

    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", fail)
    assert cap_gpu_memory("cpu", 0.7) is None
    assert cap_gpu_memory("cuda", None) is None


def test_on_a_gpu_the_engine_keeps_to_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[float, torch.device]] = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda f, d: calls.append((f, d)))
    assert cap_gpu_memory("cuda", 0.7) == pytest.approx(0.3)
    assert cap_gpu_memory("cuda:1", 0.85) == pytest.approx(0.15)
    assert calls == [(0.3, torch.device("cuda")), (0.15, torch.device("cuda:1"))]
