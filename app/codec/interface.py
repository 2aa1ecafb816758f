"""What the engine and the service know of a codec without loading it (no torch here).

- `TOKEN_DTYPE`: the dtype of speech token ids from the synthesis loop to the decoder. int64: torch indexes with
  int64, so the ids reach `torch.from_numpy` without a conversion; a window's frame is a few hundred bytes.
- `Geometry`: output rate and samples per token (so tokens per second), reported by the loaded codec.
- `CodecStats`: the runtime's counters, carried to the front-ends in the engine's heartbeat.
- `Codec`: everything the engine reads of a codec (`app.codec.runtime.CodecRuntime`, or a stand-in in tests).
"""

from __future__ import annotations

from typing import Protocol

import msgspec
import numpy as np

TOKEN_DTYPE = np.dtype(np.int64)


class Geometry(msgspec.Struct, frozen=True, array_like=True):
    """The codec's audio per token: `samples_per_token` samples at `sample_rate` Hz for each token id."""

    sample_rate: int
    samples_per_token: int

    @property
    def tokens_per_second(self) -> int:
        return self.sample_rate // self.samples_per_token


class CodecStats(msgspec.Struct):
    """Counters since start (cheap; read them for logs or /metrics)."""

    windows: int = 0  # windows decoded
    batches: int = 0  # decode batches run
    graph_batches: int = 0  # of which CUDA-graph replays
    tokens: int = 0  # valid tokens decoded
    padded_tokens: int = 0  # padding tokens computed (bucket or batch padding)
    clips: int = 0  # clips encoded
    encode_batches: int = 0
    compiles: int = 0  # torch.compile graphs compiled since start, warm-up included
    recompiles: int = 0  # of which after warm-up: each one stalled serving (should stay 0)
    compile_seconds: float = 0.0  # warm-up time spent compiling (or capturing CUDA graphs)


class Codec(Protocol):
    """What the engine reads of a codec. Called from one worker thread (decode) and fresh threads (encode)."""

    @property
    def geometry(self) -> Geometry: ...

    @property
    def device(self) -> str: ...

    @property
    def has_encoder(self) -> bool: ...

    @property
    def stats(self) -> CodecStats: ...

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        """Token windows `(T_i,)` of `TOKEN_DTYPE` -> float32 audio `(T_i * samples_per_token,)`, in order."""
        ...

    def encode(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """16 kHz mono float32 clips -> token ids of `TOKEN_DTYPE`, in order."""
        ...
