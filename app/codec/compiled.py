"""torch.compile of the codec decoder, on any device, kept outside the nn.Modules; counts its compilations.

What is compiled: `NeuCodecDecoder.spectrum` (FSQ lookup, `fc_post_a`, the Vocos backbone and the ISTFT head's
projection to real/imaginary spectra). The inverse FFT and overlap-add (`NeuCodecDecoder.synthesize`) stay
eager: inductor generates no code for complex tensors (it would fall back mid-graph), and they run in float32
anyway.

Mode: inductor's default. Not "reduce-overhead" (CUDA graph trees per shape: our own `CudaGraphDecoder` is the
CUDA-graph path, and the two do not stack), not "max-autotune" (minutes of kernel autotuning per shape, too
slow for a service start or the 8-minute GPU check).

Dynamic-shape policy, chosen so steady serving never recompiles and warm-up stays short:

- Graphs with **symbolic batch and time dims** (`dynamic=True`) instead of one static graph per (batch, length):
  on CPU each static shape costs tens of seconds of C++ compilation, and the runtime's batches take every batch
  size 1..MAX_BATCH_SIZE and (on CPU, where padding costs compute) every window length.
- A symbolic graph is still guarded: dynamo specialises sizes 0 and 1, and the convolution's backend choice
  adds size thresholds (measured with torch 2.13 on CPU, float32: `batch < 16` and `channels * time <= 20480`),
  so a few graphs cover the (batch, time) plane, one per region. Windows of 1 token are padded to
  `MIN_TOKENS` = 2 (exact: padding is masked), so time has no size-1 region.
- Warm-up finds the regions instead of assuming them: it runs batch sizes 1..max_batch at `MIN_TOKENS` and
  lengths `MIN_TOKENS`..max_tokens at batch 1 (cheap shapes), keeps each size whose call compiled a graph as
  the representative of a region, then runs every (batch representative, length representative) pair, so
  every region of the bounded plane has its graph before serving starts (4 to 6 graphs measured). A window
  longer than `max_tokens` may compile once more; that is counted and logged as a recompile.
- On CUDA the runtime pads batches to the `CUDA_GRAPH_BATCH` buckets (cheap on a GPU), on CPU it does not;
  either way the shapes stay inside the warmed plane.
- `fullgraph=True`: a graph break would be a silent partial fallback to eager; it fails warm-up instead.
- On CPU inductor's kernels keep the OpenMP thread count they were compiled with: set `CODEC_THREADS` before
  warm-up (`CodecRuntime.from_settings` does); a later `torch.set_num_threads` recompiles (and is counted).
- bfloat16 graphs measured fewer regions than float32 (2 on the full-size codec: batch 1 and batch >= 2), as
  oneDNN takes every bf16 convolution whatever its size.

Every graph compiled is counted (`compiles`) through a thin backend wrapper around inductor's `compile_fx`;
the runtime counts those after warm-up as recompilations (`CodecStats.recompiles`, `/metrics`
`tts_codec_recompiles_total`): each is a serving stall of seconds, and should stay 0.

Compile cache: with a directory (`TORCH_COMPILE_CACHE_DIR`), inductor's FX-graph and AOT caches and Triton's
kernel cache live there, so a second start with the same code, torch and machine loads the compiled kernels
instead of compiling them (docs/performance.md, section 6, has the measured start times).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)

MIN_TOKENS = 2  # shorter windows are padded (dynamo specialises a dim of size 1)
RECOMPILE_LIMIT = 64


def configure_compile_cache(directory: str | Path) -> Path:
    """Point inductor's and Triton's on-disk caches at `directory` (created). Call before the first compile."""
    path = Path(directory).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(path)
    os.environ["TRITON_CACHE_DIR"] = str(path / "triton")
    return path


class CompiledDecoder:
    """`decoder.spectrum` compiled by inductor (dynamic batch and time dims), then the eager synthesis."""

    def __init__(self, decoder: nn.Module, *, on_compile: Callable[[], None] | None = None):
        self.decoder = decoder
        self.compiles = 0
        self.compile_seconds = 0.0
        self._on_compile = on_compile
        self.regions: tuple[list[int], list[int]] = ([], [])  # representatives found by warmup()
        self._lock = threading.Lock()
        # dynamo keeps at most `recompile_limit` (8) graphs per code object, across instances, then runs eager
        # silently; regions x runtimes in one process (benchmarks, tests) can pass 8.
        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
        self._spectrum = torch.compile(decoder.spectrum, backend=self._backend, dynamic=True, fullgraph=True)

    def _backend(self, gm: torch.fx.GraphModule, example_inputs: list[Any]) -> Callable[..., Any]:
        """inductor, counted once it succeeds (dynamo may abandon a first attempt and trace again)."""
        from torch._inductor.compile_fx import compile_fx

        start = time.perf_counter()
        compiled = compile_fx(gm, example_inputs)
        with self._lock:
            self.compiles += 1
        logger.info(
            "codec: torch.compile: graph %d (%d nodes) compiled in %.1f s",
            self.compiles,
            len(gm.graph.nodes),
            time.perf_counter() - start,
        )
        if self._on_compile is not None:
            self._on_compile()
        return compiled

    def __call__(self, codes: Tensor, lengths: Tensor) -> Tensor:
        """codes `(B, T)` int64, lengths `(B,)` int64 on the decoder's device -> audio `(B, T' * hop)` float32.

        T' = max(T, MIN_TOKENS): a shorter batch is padded (masked), the caller keeps its own samples.
        """
        if codes.shape[1] < MIN_TOKENS:
            codes = torch.nn.functional.pad(codes, (0, MIN_TOKENS - codes.shape[1]))
        real, imag = self._spectrum(codes, lengths)
        return self.decoder.synthesize(real, imag, lengths)

    def warmup(self, device: torch.device, max_batch_size: int, max_tokens: int) -> float:
        """Compile the graph of every region of batch 1..max_batch_size x tokens 1..max_tokens (module docstring);
        returns the seconds it took."""
        start = time.perf_counter()
        max_tokens = max(max_tokens, MIN_TOKENS)

        def run(batch: int, tokens: int) -> bool:
            before = self.compiles
            codes = torch.zeros((batch, tokens), dtype=torch.int64, device=device)
            lengths = torch.full((batch,), tokens, dtype=torch.int64, device=device)
            lengths[-1] = max(1, tokens - 1)  # a padded row: the masked path is the one serving runs
            self(codes, lengths)
            return self.compiles > before

        batches = [b for b in range(1, max_batch_size + 1) if run(b, MIN_TOKENS)] or [1]
        lengths = [MIN_TOKENS] + [t for t in range(MIN_TOKENS + 1, max_tokens + 1) if run(1, t)]
        for batch in batches:
            for tokens in lengths:
                run(batch, tokens)
        self.regions = (batches, lengths)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.compile_seconds = time.perf_counter() - start
        return self.compile_seconds
