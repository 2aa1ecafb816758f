"""Finite scalar quantization (FSQ) as NeuCodec uses it: one `ResidualFSQ` quantizer of levels 4 x 8.

Same maths as `vector_quantize_pytorch.ResidualFSQ(dim, levels, num_quantizers=1)` (1.17.8):

- encode: `project_in` (dim -> len(levels)), then `bound` twice (once by ResidualFSQ, once inside FSQ), round,
  and the mixed-radix index `sum(digit_i * prod(levels[:i]))`;
- decode: index -> digits -> codes `(digit - levels // 2) / (levels // 2)`, then `project_out`.

The projections keep the official parameter names (`project_in`, `project_out`); either can be left out, so the
decoder holds no encoder weights and the other way round.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class FiniteScalarQuantizer(nn.Module):
    """FSQ indices <-> `dim`-wide embeddings. Levels are fixed buffers (not in the state dict)."""

    def __init__(self, dim: int, levels: tuple[int, ...], *, project_in: bool = True, project_out: bool = True):
        super().__init__()
        if not levels or any(level < 2 for level in levels):
            raise ValueError(f"levels must be integers >= 2, got {levels}")
        self.dim = dim
        self.levels = tuple(int(level) for level in levels)
        self.project_in = nn.Linear(dim, len(levels)) if project_in else None
        self.project_out = nn.Linear(len(levels), dim) if project_out else None
        self.reset_buffers()

    def reset_buffers(self, device: torch.device | str | None = None) -> None:
        """(Re)build the level and mixed-radix basis buffers (int64; also after meta-device init)."""
        with torch.device("cpu"):
            levels = torch.tensor(self.levels, dtype=torch.int64)
            basis = torch.cumprod(torch.tensor((1, *self.levels[:-1]), dtype=torch.int64), dim=0)
        self.register_buffer("_levels", levels.to(device), persistent=False)
        self.register_buffer("_basis", basis.to(device), persistent=False)

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)

    def bound(self, z: Tensor) -> Tensor:
        """Squash `(..., n_levels)` float32 values into each level's range, as FSQ.bound (eps 1e-3)."""
        levels = self._levels.to(torch.int32)
        half_l = (levels - 1) * (1 + 1e-3) / 2
        offset = torch.where(levels % 2 == 0, 0.5, 0.0)
        shift = (offset / half_l).atanh()
        return (z + shift).tanh() * half_l - offset

    def indices_to_codes(self, indices: Tensor) -> Tensor:
        """Indices `(...)` int64 -> normalised codes `(..., n_levels)` float32 in [-1, 1)."""
        digits = (indices.unsqueeze(-1) // self._basis) % self._levels
        half_width = self._levels // 2
        return (digits - half_width) / half_width

    def decode(self, indices: Tensor) -> Tensor:
        """Indices `(B, T)` int64 -> embeddings `(B, T, dim)` in `project_out`'s dtype."""
        if self.project_out is None:
            raise RuntimeError("this quantizer was built without project_out (encoder side)")
        codes = self.indices_to_codes(indices)
        return self.project_out(codes.to(self.project_out.weight.dtype))

    def encode(self, x: Tensor) -> Tensor:
        """Embeddings `(B, T, dim)` -> indices `(B, T)` int64."""
        if self.project_in is None:
            raise RuntimeError("this quantizer was built without project_in (decoder side)")
        z = self.project_in(x).float()
        levels = self.bound(self.bound(z)).round()  # in [-levels//2, levels//2)
        digits = (levels + (self._levels // 2)).to(torch.int64)
        return (digits * self._basis).sum(dim=-1)

    def forward(self, indices: Tensor) -> Tensor:
        """Indices `(B, T)` int64 -> embeddings `(B, T, dim)` (the decode direction)."""
        return self.decode(indices)
