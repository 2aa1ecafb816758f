"""CUDA graphs of the decoder, one per (batch size, padded token length), kept outside the nn.Module.

Capture (per the PyTorch CUDA-graph recipe): static input buffers (codes, lengths) allocated before capture,
a few warmup calls on a side stream (cuBLAS/cuFFT plans, allocator), then capture into one shared memory pool,
largest shapes first so smaller graphs reuse their blocks. Replay: copy the batch into the static buffers,
replay, copy the static output out before any other graph runs (graphs share the pool). The decoder masks
padding, so replaying a bucket longer than the windows changes none of their samples. A lock makes the
copy-in/replay/copy-out one step: two threads can never interleave on a static buffer.

Nothing here runs without CUDA; `CodecRuntime` falls back to eager on CPU.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

logger = logging.getLogger(__name__)


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    codes: Tensor  # (B, T) int64, static input
    lengths: Tensor  # (B,) int64, static input
    audio: Tensor  # (B, T * hop) float32, static output


class CudaGraphDecoder:
    """Captured decoder graphs for every (batch size, bucket); `run` replays the matching one."""

    def __init__(
        self,
        decoder: nn.Module,
        device: torch.device | str,
        batch_sizes: Iterable[int],
        buckets: Iterable[int],
        warmup_iters: int = 2,
    ):
        self.decoder = decoder
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a cuda device, got {self.device}")
        self.batch_sizes = sorted(set(batch_sizes), reverse=True)
        self.buckets = sorted(set(buckets), reverse=True)
        self.warmup_iters = warmup_iters
        self._graphs: dict[tuple[int, int], _Graph] = {}
        self._lock = threading.Lock()
        self.capture_seconds = 0.0
        self.pool_bytes = 0  # memory reserved by the capture (all graphs share one pool)

    def __contains__(self, shape: tuple[int, int]) -> bool:
        return shape in self._graphs

    def __len__(self) -> int:
        return len(self._graphs)

    @torch.inference_mode()
    def capture(self) -> None:
        """Capture every (batch size, bucket) graph. Logs the count, time and pool memory."""
        start = time.perf_counter()
        reserved = torch.cuda.memory_reserved(self.device)
        pool = torch.cuda.graph_pool_handle()
        side = torch.cuda.Stream(device=self.device)
        current = torch.cuda.current_stream(self.device)
        for length in self.buckets:
            for batch in self.batch_sizes:
                codes = torch.zeros((batch, length), dtype=torch.int64, device=self.device)
                lengths = torch.full((batch,), length, dtype=torch.int64, device=self.device)
                side.wait_stream(current)
                with torch.cuda.stream(side):
                    for _ in range(self.warmup_iters):
                        self.decoder(codes, lengths)
                current.wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, pool=pool):
                    audio = self.decoder(codes, lengths)
                self._graphs[(batch, length)] = _Graph(graph, codes, lengths, audio)
        torch.cuda.synchronize(self.device)
        self.capture_seconds = time.perf_counter() - start
        self.pool_bytes = torch.cuda.memory_reserved(self.device) - reserved
        logger.info(
            "codec: captured %d CUDA graphs (batch sizes 1..%d x buckets %s tokens) in %.1f s; %.0f MiB reserved",
            len(self._graphs),
            max(self.batch_sizes, default=0),
            sorted(self.buckets),
            time.perf_counter() - start,
            torch.cuda.memory_reserved(self.device) / 2**20,
        )

    @torch.inference_mode()
    def run(self, codes: Tensor, lengths: Tensor) -> Tensor:
        """codes `(B, T)` int64, lengths `(B,)` int64 (any device) -> audio `(B, T * hop)` float32 on the CPU.

        `(B, T)` must be a captured shape.
        """
        entry = self._graphs[(codes.shape[0], codes.shape[1])]
        with self._lock:  # graphs share static buffers and one memory pool
            entry.codes.copy_(codes, non_blocking=True)
            entry.lengths.copy_(lengths, non_blocking=True)
            entry.graph.replay()
            return entry.audio.to("cpu", copy=True)  # synchronises; the next replay may reuse the pool
