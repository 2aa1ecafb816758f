"""Which dtype the codec decoder runs in, detected from the machine, and the layers that stay float32.

`CODEC_DTYPE=auto` resolves to:

- **bfloat16 on a CPU with native bf16 maths**: the `avx512_bf16` (AVX-512 BF16: Intel Cooper Lake and later,
  AMD Zen 4 and later) or `amx_bf16` (Intel AMX: Sapphire Rapids and later) flag. oneDNN then runs the
  decoder's matmuls and convolutions in bf16, several times faster than float32 (docs/performance.md, section 6).
  CPUs without these flags emulate bf16 and get slower, so they stay on float32.
- **float32 everywhere else**, CUDA included, until `benchmarks/gpu_check.py` has measured bf16 on a GPU.

Flags are read from `/proc/cpuinfo` (never assumed from the CPU's name); torch's own check of the instruction set
(`torch.backends.cpu.get_cpu_capability()`) must agree that it runs AVX-512 kernels, so a torch built without
them does not pick bf16 either.

Precision islands: `FLOAT32_MODULES` keep float32 parameters whatever the dtype: the FSQ `project_out` (8 -> vq_dim,
negligible cost) and the ISTFT head's `out` projection, whose log-magnitudes are exponentiated (a bf16 rounding
of 0.03 at log-magnitude 5 is a 3 % amplitude error). The inverse FFT and overlap-add always run in float32
(`ISTFTHead.synthesize`). Together they cost about 1 % of the decoder's multiply-adds.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
FLOAT32_MODULES = ("generator.quantizer.project_out", "generator.head.out")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU feature flags of `/proc/cpuinfo` text (read from the machine when None); empty when unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_bf16_features(flags: set[str] | None = None) -> list[str]:
    """The native-bf16 flags this CPU has (`CPU_BF16_FLAGS` present in `flags`, default: this machine's)."""
    flags = cpu_flags() if flags is None else flags
    return [flag for flag in CPU_BF16_FLAGS if flag in flags]


def torch_cpu_capability() -> str:
    """torch's CPU kernel level ("AVX512", "AVX2", "DEFAULT", ...); "" when torch cannot say."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return ""


def resolve_dtype(
    name: str, device: torch.device, flags: set[str] | None = None, capability: str | None = None
) -> torch.dtype:
    """`CODEC_DTYPE` -> torch dtype; "auto" per the module docstring (`flags`/`capability` default to this machine)."""
    if name != "auto":
        if name not in DTYPES:
            raise ValueError(f"CODEC_DTYPE must be auto or one of {sorted(DTYPES)}, got {name!r}")
        return DTYPES[name]
    if device.type != "cpu":
        return torch.float32
    capability = torch_cpu_capability() if capability is None else capability
    if cpu_bf16_features(flags) and capability.startswith("AVX512"):
        return torch.bfloat16
    return torch.float32


def apply_precision(decoder: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast the decoder's floating parameters to `dtype`, except `FLOAT32_MODULES` (float32). Buffers stay float32.

    Cast from float32 weights: casting a bf16 copy back to float32 would not restore the lost bits.
    """
    names = {name for name, _ in decoder.named_modules()}
    islands = {id(p) for name in FLOAT32_MODULES if name in names for p in decoder.get_submodule(name).parameters()}
    for param in decoder.parameters():
        if param.is_floating_point():
            wanted = torch.float32 if id(param) in islands else dtype
            if param.dtype != wanted:
                param.data = param.data.to(wanted)
    return decoder
