"""Helpers for exact padded batching: masks from lengths, and a GroupNorm whose statistics skip padding.

Convention: a batch of sequences padded to one length `T` carries `lengths` `(B,)`; `mask` is `(B, T)` bool,
True on valid positions. `None` everywhere means "no padding" and takes the plain (fastest) code path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Lengths `(B,)` int -> mask `(B, max_len)` bool, True where `t < lengths[b]`."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def zero_padding(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero padded time steps so a following conv sees exactly the zeros of its own padding.

    x `(B, C, T)`, mask `(B, 1, T)` in x's dtype (or None) -> `(B, C, T)`.
    """
    return x if mask is None else x * mask


class MaskedGroupNorm(nn.GroupNorm):
    """`nn.GroupNorm` (same parameters and state-dict keys) whose statistics use valid time steps only."""

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:  # type: ignore[override]
        """x `(B, C, T)`, mask `(B, 1, T)` (1 valid, 0 padding) or None -> `(B, C, T)` in x's dtype.

        Statistics are computed in float32. Padded steps are normalised too (with the valid steps'
        statistics); their values are garbage that the caller masks before anything mixes time steps.
        """
        dtype = x.dtype
        if mask is None:
            if dtype == torch.float32:
                return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)
            return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps).to(dtype)
        batch, channels, steps = x.shape
        groups = self.num_groups
        xf = x.float().reshape(batch, groups, channels // groups, steps)
        m = mask.float().view(batch, 1, 1, steps)
        count = m.sum(dim=-1, keepdim=True) * (channels // groups)  # (B, 1, 1, 1)
        mean = (xf * m).sum(dim=(2, 3), keepdim=True) / count
        centered = xf - mean
        var = (centered.square() * m).sum(dim=(2, 3), keepdim=True) / count
        y = (centered * torch.rsqrt(var + self.eps)).reshape(batch, channels, steps)
        y = y * self.weight.float()[:, None] + self.bias.float()[:, None]
        return y.to(dtype)
