"""`CodecRuntime`: the codec as the service uses it (numpy in, numpy out, one worker thread).

- `decode(windows)`: token windows of any lengths -> 24 kHz float32 audio, batched by `app.codec.batching`
  (exact: padding is masked). With TORCH_COMPILE=true every batch runs through `torch.compile` on any device
  (`app.codec.compiled`: its shape policy, mode and cache); otherwise, on CUDA, batches that fit a
  `CUDA_GRAPH_BATCH` bucket replay a captured graph; everything else is eager. Precision (`CODEC_DTYPE=auto`)
  is chosen by `app.codec.precision`.
- `encode(clips)`: 16 kHz mono clips -> FSQ codes, clips of equal length batched together.

It implements `app.codec.interface.Codec`, which is all the engine reads of it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from app.codec.batching import DecodeBatch, plan_batches
from app.codec.decoder import NeuCodecDecoder
from app.codec.encoder import NeuCodecEncoder
from app.codec.interface import TOKEN_DTYPE, CodecStats, Geometry
from app.codec.precision import DTYPES, resolve_dtype

__all__ = ["DTYPES", "CodecRuntime", "resolve_device"]

if TYPE_CHECKING:
    from app.codec.compiled import CompiledDecoder
    from app.codec.graphs import CudaGraphDecoder
    from app.settings import EngineSettings

logger = logging.getLogger(__name__)

MIN_CLIP_SAMPLES = 400  # w2v-bert's feature extractor needs one 25 ms frame


def resolve_device(name: str) -> torch.device:
    """'auto' (cuda:0 when available, else cpu), 'cpu', 'cuda' or 'cuda:N' -> a checked torch.device."""
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"CODEC_DEVICE={name} but CUDA is not available")
        device = torch.device("cuda:0" if name == "cuda" else name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"CODEC_DEVICE={name} but only {torch.cuda.device_count()} CUDA devices exist")
        return device
    raise ValueError(f"CODEC_DEVICE must be auto, cpu, cuda or cuda:N, got {name!r}")


def service_window_tokens(settings: EngineSettings, tokens_per_second: int) -> int:
    """The longest decode window the service plans with its default chunking (a window that catches up included),
    with 50 % margin (>= 160 tokens): the range torch.compile's warm-up covers."""
    return max(160, math.ceil(1.5 * settings.warmup_window_seconds * tokens_per_second))


class CodecRuntime:
    """NeuCodec decode/encode for the service. Not thread-safe: call it from one worker thread."""

    def __init__(
        self,
        decoder: NeuCodecDecoder,
        encoder: NeuCodecEncoder | None = None,
        *,
        device: torch.device | str | None = None,
        graph_buckets: list[int] | tuple[int, ...] = (),
        max_batch_size: int = 16,
        torch_compile: bool = False,
        max_window_tokens: int = 160,
    ):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        first = next(decoder.parameters())
        self._device = torch.device(device) if device is not None else first.device
        self.decoder = decoder.to(self._device).eval()
        self.encoder = encoder.to(self._device).eval() if encoder is not None else None
        self.geometry: Geometry = decoder.config.geometry
        self.codebook_size = decoder.config.codebook_size
        self.dtype = decoder.fc_post_a.weight.dtype  # the backbone's (FSQ projection and head may be float32)
        self.max_batch_size = max_batch_size
        self.graph_buckets = sorted({int(b) for b in graph_buckets if b > 0})
        self.torch_compile = torch_compile
        self.max_window_tokens = max(max_window_tokens, max(self.graph_buckets, default=0))  # compile warm-up range
        self.stats = CodecStats()
        self._graphs: CudaGraphDecoder | None = None  # set by warmup() on CUDA
        self._compiled: CompiledDecoder | None = None  # set by warmup() with torch_compile
        self._warm = False
        cuda = self._device.type == "cuda"
        if not cuda and self.graph_buckets:
            logger.info("codec: CUDA_GRAPH_BATCH needs CUDA; buckets do not pad batches on %s", self._device)
        if cuda and torch_compile and self.graph_buckets:
            logger.info("codec: TORCH_COMPILE=true: torch.compile instead of CUDA graphs; buckets still pad batches")
        # Buckets pad batches only where padding is cheap (a GPU); on CPU every padded token costs compute.
        self._plan_buckets = self.graph_buckets if cuda else []

    @property
    def device(self) -> str:
        return str(self._device)

    @property
    def has_encoder(self) -> bool:
        return self.encoder is not None

    # --- construction ------------------------------------------------------------------------------
    @classmethod
    def from_settings(cls, settings: EngineSettings) -> CodecRuntime:
        """Load the codec named by the settings (CODEC_*, SEMANTIC_MODEL, CUDA_GRAPH_BATCH, ...)."""
        from app.codec.pretrained import load_codec

        if settings.threads > 0:
            torch.set_num_threads(settings.threads)
        if settings.torch_compile and settings.compile_cache_dir:
            from app.codec.compiled import configure_compile_cache

            configure_compile_cache(settings.compile_cache_dir)
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        logger.info("codec: CODEC_DTYPE=%s -> %s on %s", settings.dtype, str(dtype).removeprefix("torch."), device)
        decoder, encoder = load_codec(
            settings.codec_model,
            with_encoder=settings.load_encoder,
            semantic_model=settings.semantic_model,
            device=device,
            dtype=dtype,
        )
        return cls(
            decoder,
            encoder,
            device=device,
            graph_buckets=list(settings.cuda_graph_buckets),
            max_batch_size=settings.max_batch_size,
            torch_compile=settings.torch_compile,
            max_window_tokens=service_window_tokens(settings, decoder.config.geometry.tokens_per_second),
        )

    def warmup(self) -> None:
        """Compile (TORCH_COMPILE=true, any device), or capture CUDA graphs, or run one eager pass; logs what it
        did. After it, compilations count as recompiles (`stats.recompiles`)."""
        start = time.perf_counter()
        with torch.inference_mode():
            if self.torch_compile:
                from app.codec.compiled import CompiledDecoder

                self._compiled = CompiledDecoder(self.decoder, on_compile=self._count_compile)
                seconds = self._compiled.warmup(self._device, self.max_batch_size, self.max_window_tokens)
                self.stats.compile_seconds = seconds
                batches, lengths = self._compiled.regions
                logger.info(
                    "codec: torch.compile warm-up on %s (%s): %d graphs (dynamic batch and time; regions start at"
                    " batch %s x tokens %s) for batch <= %d x tokens <= %d in %.1f s",
                    self._device,
                    str(self.dtype).removeprefix("torch."),
                    self.stats.compiles,
                    batches,
                    lengths,
                    self.max_batch_size,
                    self.max_window_tokens,
                    seconds,
                )
            elif self._device.type == "cuda" and self.graph_buckets:
                from app.codec.graphs import CudaGraphDecoder

                graphs = CudaGraphDecoder(
                    self.decoder, self._device, range(1, self.max_batch_size + 1), self.graph_buckets
                )
                graphs.capture()
                self._graphs = graphs
                self.stats.compile_seconds = time.perf_counter() - start
            else:
                codes = torch.zeros((1, 25), dtype=torch.int64, device=self._device)
                self.decoder(codes)
                logger.info(
                    "codec: eager warmup on %s (%s) done in %.2f s",
                    self._device,
                    str(self.dtype).removeprefix("torch."),
                    time.perf_counter() - start,
                )
        self._warm = True

    def _count_compile(self) -> None:
        self.stats.compiles += 1
        if self._warm:
            self.stats.recompiles += 1
            logger.warning("codec: torch.compile recompiled after warm-up (%d so far)", self.stats.recompiles)

    # --- decode ------------------------------------------------------------------------------------
    def _check_window(self, window: np.ndarray) -> np.ndarray:
        array = np.asarray(window)
        if array.ndim != 1 or array.shape[0] < 1:
            raise ValueError(f"a window must be a non-empty 1-D array of token ids, got shape {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"token ids must be integers, got dtype {array.dtype}")
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= self.codebook_size:
            raise ValueError(f"token ids must be in [0, {self.codebook_size}), got [{low}, {high}]")
        return array.astype(TOKEN_DTYPE, copy=False)

    def _run_batch(self, codes: Tensor, lengths: Tensor, batch: DecodeBatch) -> Tensor:
        """codes `(B, T)`, lengths `(B,)` on the CPU -> audio `(B, T * hop)` float32 on the CPU."""
        if self._graphs is not None and batch.bucket is not None and (batch.size, batch.bucket) in self._graphs:
            self.stats.graph_batches += 1
            return self._graphs.run(codes, lengths)
        codes = codes.to(self._device, non_blocking=True)
        if self._compiled is not None:
            return self._compiled(codes, lengths.to(self._device, non_blocking=True)).float().cpu()
        exact = bool((lengths == codes.shape[1]).all())
        lengths_arg = None if exact else lengths.to(self._device, non_blocking=True)
        return self.decoder(codes, lengths_arg).float().cpu()

    def decode(self, windows: list[np.ndarray], *, pad_to: int | None = None) -> list[np.ndarray]:
        """Token windows `(T_i,)` int ids -> float32 audio `(T_i * samples_per_token,)` in [-1, 1], in order.

        `pad_to` (benchmarks) pads every batch to that many tokens instead of the planned length.
        Raises ValueError for empty windows or ids outside the codebook.
        """
        arrays = [self._check_window(w) for w in windows]
        if not arrays:
            return []
        lengths = [a.shape[0] for a in arrays]
        if pad_to is not None and pad_to < max(lengths):
            raise ValueError(f"pad_to={pad_to} is shorter than the longest window ({max(lengths)})")
        results: list[np.ndarray | None] = [None] * len(arrays)
        plan = plan_batches(lengths, self.max_batch_size, self._plan_buckets)
        with torch.inference_mode():
            for batch in plan:
                padded_len = pad_to or batch.padded_len
                if pad_to is not None and pad_to != batch.padded_len:
                    batch = DecodeBatch(batch.indices, pad_to, pad_to if pad_to in self._plan_buckets else None)
                codes = np.zeros((batch.size, padded_len), dtype=TOKEN_DTYPE)
                for row, i in enumerate(batch.indices):
                    codes[row, : lengths[i]] = arrays[i]
                batch_lengths = torch.tensor([lengths[i] for i in batch.indices], dtype=torch.int64)
                audio = self._run_batch(torch.from_numpy(codes), batch_lengths, batch).clamp_(-1.0, 1.0)
                for row, i in enumerate(batch.indices):
                    results[i] = audio[row, : lengths[i] * self.geometry.samples_per_token].numpy().copy()
                valid = sum(lengths[i] for i in batch.indices)
                self.stats.batches += 1
                self.stats.tokens += valid
                self.stats.padded_tokens += batch.size * padded_len - valid
        self.stats.windows += len(arrays)
        return results  # type: ignore[return-value]

    # --- encode ------------------------------------------------------------------------------------
    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz mono float32 clips `(N_i,)` -> FSQ codes of `TOKEN_DTYPE` (about N_i / 320 each), in order.

        Clips of equal length are encoded as one batch (exactly what each gets alone); different lengths are
        separate batches. Raises RuntimeError without an encoder, ValueError for a bad clip.
        """
        if self.encoder is None:
            raise RuntimeError("the codec encoder is not loaded (CODEC_LOAD_ENCODER=false)")
        arrays = []
        for clip in clips:
            array = np.asarray(clip, dtype=np.float32)
            if array.ndim != 1 or array.shape[0] < MIN_CLIP_SAMPLES:
                raise ValueError(f"a clip must be 1-D with >= {MIN_CLIP_SAMPLES} samples, got shape {array.shape}")
            if not np.isfinite(array).all():
                raise ValueError("a clip contains NaN or infinite samples")
            arrays.append(array)
        groups: dict[int, list[int]] = {}
        for i, array in enumerate(arrays):
            groups.setdefault(array.shape[0], []).append(i)
        results: list[np.ndarray | None] = [None] * len(arrays)
        with torch.inference_mode():
            for members in groups.values():
                for start in range(0, len(members), self.max_batch_size):
                    chunk = members[start : start + self.max_batch_size]
                    codes = self.encoder.encode([arrays[i] for i in chunk]).cpu().numpy()
                    for row, i in enumerate(chunk):
                        results[i] = codes[row].astype(TOKEN_DTYPE)
                    self.stats.encode_batches += 1
        self.stats.clips += len(arrays)
        return results  # type: ignore[return-value]
