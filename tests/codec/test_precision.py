"""CODEC_DTYPE=auto and the float32 islands (issue 11, point 4): detection from CPU flags, never from names."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from app.codec.decoder import NeuCodecDecoder
from app.codec.precision import (
    FLOAT32_MODULES,
    apply_precision,
    cpu_bf16_features,
    cpu_flags,
    resolve_dtype,
)
from app.codec.runtime import CodecRuntime

SAPPHIRE_RAPIDS = (
    "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse avx512f avx512_bf16 amx_bf16 amx_tile\n"
)
ZEN4 = "processor\t: 0\nmodel name\t: AMD EPYC 9654\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
SKYLAKE = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Gold 6148\nflags\t\t: fpu sse avx2 avx512f avx512bw\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd bf16 sve\n"
CPU = torch.device("cpu")


def test_cpu_flags_parse_x86_and_arm() -> None:
    assert {"avx512_bf16", "amx_bf16"} <= cpu_flags(SAPPHIRE_RAPIDS)
    assert "bf16" in cpu_flags(ARM) and cpu_flags("model name : x\n") == set()
    assert cpu_bf16_features(cpu_flags(SAPPHIRE_RAPIDS)) == ["avx512_bf16", "amx_bf16"]
    assert cpu_bf16_features(cpu_flags(ZEN4)) == ["avx512_bf16"]
    assert cpu_bf16_features(cpu_flags(SKYLAKE)) == [] and cpu_bf16_features(cpu_flags(ARM)) == []


@pytest.mark.parametrize(
    ("cpuinfo", "capability", "expected"),
    [
        (SAPPHIRE_RAPIDS, "AVX512", torch.bfloat16),
        (ZEN4, "AVX512", torch.bfloat16),
        (SKYLAKE, "AVX512", torch.float32),  # AVX-512 but no bf16 instructions: emulated bf16 is slower
        (ZEN4, "AVX2", torch.float32),  # a torch without AVX-512 kernels does not use the flag
        (ARM, "DEFAULT", torch.float32),
    ],
)
def test_auto_follows_the_flags(cpuinfo: str, capability: str, expected: torch.dtype) -> None:
    assert resolve_dtype("auto", CPU, cpu_flags(cpuinfo), capability) == expected


def test_auto_is_float32_on_cuda_and_names_are_explicit() -> None:
    assert resolve_dtype("auto", torch.device("cuda", 0), cpu_flags(SAPPHIRE_RAPIDS), "AVX512") == torch.float32
    assert resolve_dtype("bfloat16", CPU, set(), "") == torch.bfloat16
    assert resolve_dtype("float32", CPU, cpu_flags(ZEN4), "AVX512") == torch.float32
    with pytest.raises(ValueError, match="CODEC_DTYPE"):
        resolve_dtype("int8", CPU)


def test_apply_precision_keeps_the_islands_float32(tiny_decoder: NeuCodecDecoder) -> None:
    decoder = apply_precision(copy.deepcopy(tiny_decoder), torch.bfloat16)
    island_params = {id(p) for name in FLOAT32_MODULES for p in decoder.get_submodule(name).parameters()}
    assert island_params
    for name, param in decoder.named_parameters():
        assert param.dtype == (torch.float32 if id(param) in island_params else torch.bfloat16), name
    assert all(b.dtype in (torch.float32, torch.int64) for b in decoder.buffers())
    assert CodecRuntime(decoder).dtype == torch.bfloat16


def _snr(reference: np.ndarray, other: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / max(float(np.sum((reference - other) ** 2)), 1e-30)))


def test_bf16_decode_stays_close_to_float32_and_is_exact_under_padding(tiny_decoder: NeuCodecDecoder) -> None:
    bf16 = CodecRuntime(apply_precision(copy.deepcopy(tiny_decoder), torch.bfloat16), max_batch_size=4)
    fp32 = CodecRuntime(tiny_decoder, max_batch_size=4)
    rng = np.random.default_rng(3)
    windows = [rng.integers(0, 65_536, n, dtype=np.int64) for n in (40, 36, 33, 31)]  # one padded batch
    ref = np.concatenate(fp32.decode(windows))
    batched = bf16.decode(windows)
    assert all(a.dtype == np.float32 for a in batched)
    snr = _snr(ref, np.concatenate(batched))
    print(f"bf16 vs float32 SNR {snr:.1f} dB")
    assert snr > 25.0  # full size, random weights: 35 dB (docs/performance.md, section 6)
    alone = [bf16.decode([w])[0] for w in windows]
    for a, b in zip(batched, alone, strict=True):  # bf16 batching is exact up to bf16 rounding order
        assert _snr(b, a) > 30.0
