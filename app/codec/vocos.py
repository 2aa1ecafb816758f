"""The Vocos backbone of the NeuCodec decoder: conv embed, 2 ResNet blocks, transformer blocks, 2 ResNet
blocks, LayerNorm. Parameter names follow `neucodec.codec_decoder_vocos.VocosBackbone` so the official
state dict loads as is.

Every `forward` takes an optional padding mask and is then exact for padded batches: padded steps are
zeroed before each conv, GroupNorm statistics skip them, and attention never attends to them.

Rotary positions: the reference applies torchtune's `RotaryPositionalEmbeddings` (which expects
`(batch, seq, heads, head_dim)`) to q/k shaped `(batch, heads, time, head_dim)`, so the rotation angle follows
the head index, not time. `HeadRotation` reproduces exactly that fixed per-head rotation. (q and k of a head
get the same rotation, so the attention scores are unchanged by it: attention in NeuCodec carries no time
position. We keep the rotation anyway so the arithmetic is the reference's.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.codec.masking import MaskedGroupNorm, zero_padding


class ResnetBlock(nn.Module):
    """GroupNorm -> swish -> conv3 -> GroupNorm -> swish -> conv3, plus the input (channels unchanged)."""

    def __init__(self, channels: int, groups: int = 32, eps: float = 1e-6):
        super().__init__()
        self.norm1 = MaskedGroupNorm(groups, channels, eps=eps)
        self.conv1 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)
        self.norm2 = MaskedGroupNorm(groups, channels, eps=eps)
        self.conv2 = nn.Conv1d(channels, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x `(B, C, T)`, mask `(B, 1, T)` in x's dtype or None -> `(B, C, T)`."""
        h = F.silu(self.norm1(x, mask))
        h = self.conv1(zero_padding(h, mask))
        h = F.silu(self.norm2(h, mask))
        h = self.conv2(zero_padding(h, mask))
        return x + h


class RMSNorm(nn.Module):
    """`x * rsqrt(mean(x^2) + eps) * weight` over the last dim (computed in float32)."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """`(..., D) -> (..., D)`."""
        if x.dtype != torch.float32:
            xf = x.float()
            return (xf * torch.rsqrt(xf.square().mean(-1, keepdim=True) + self.eps) * self.weight.float()).to(x.dtype)
        return x * torch.rsqrt(torch.mean(x**2, dim=-1, keepdim=True) + self.eps) * self.weight


class MLP(nn.Module):
    """Linear (4x, no bias) -> SiLU -> Linear (no bias)."""

    def __init__(self, dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, 4 * dim, bias=False)
        self.fc2 = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, T, D) -> (B, T, D)`."""
        return self.fc2(F.silu(self.fc1(x)))


class HeadRotation(nn.Module):
    """The reference's rotary embedding as it actually acts: a fixed rotation per head.

    Rotates interleaved pairs `(x[2i], x[2i+1])` of head `h` by angle `h * base^(-2i/head_dim)`, for every
    time step alike (torchtune's cache row `h`, computed the same way). Buffers are not in the state dict.
    """

    def __init__(self, heads: int, head_dim: int, base: int = 10_000):
        super().__init__()
        self.heads, self.head_dim, self.base = heads, head_dim, base
        self.reset_buffers()

    def reset_buffers(self, device: torch.device | str | None = None) -> None:
        """(Re)compute the cos/sin buffers `(H, 1, head_dim / 2)` in float32 (also after meta-device init)."""
        with torch.device("cpu"):
            dim = self.head_dim
            theta = 1.0 / (self.base ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
            angles = torch.einsum("i, j -> ij", torch.arange(self.heads, dtype=theta.dtype), theta).float()
        self.register_buffer("cos", torch.cos(angles)[:, None, :].to(device), persistent=False)
        self.register_buffer("sin", torch.sin(angles)[:, None, :].to(device), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, H, T, D) -> (B, H, T, D)`, computed in float32 like torchtune, returned in x's dtype."""
        pairs = x.float().unflatten(-1, (-1, 2))
        x0, x1 = pairs[..., 0], pairs[..., 1]
        cos, sin = self.cos.float(), self.sin.float()
        out = torch.stack([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1).flatten(-2)
        return out.type_as(x)


class Attention(nn.Module):
    """Multi-head self-attention over all (valid) time steps; q/k get the fixed per-head rotation."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.c_attn = nn.Linear(dim, 3 * dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)
        self.rotation = HeadRotation(heads, dim // heads)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """x `(B, T, D)`, attn_mask `(B, 1, 1, T)` bool (True = valid key) or None -> `(B, T, D)`."""
        batch, steps, dim = x.shape
        qkv = self.c_attn(x).view(batch, steps, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # (B, H, T, head_dim) each
        q, k = self.rotation(q), self.rotation(k)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.c_proj(y.transpose(1, 2).reshape(batch, steps, dim))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attn(rmsnorm(x)), then x + mlp(rmsnorm(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.att_norm = RMSNorm(dim)
        self.ffn_norm = RMSNorm(dim)
        self.att = Attention(dim, heads)
        self.mlp = MLP(dim)

    def forward(self, x: Tensor, attn_mask: Tensor | None = None) -> Tensor:
        """x `(B, T, D)`, attn_mask `(B, 1, 1, T)` bool or None -> `(B, T, D)`."""
        x = x + self.att(self.att_norm(x), attn_mask)
        return x + self.mlp(self.ffn_norm(x))


class VocosBackbone(nn.Module):
    """conv embed (k=7) -> 2 ResNet blocks -> transformer blocks -> 2 ResNet blocks -> LayerNorm."""

    def __init__(self, dim: int = 1024, depth: int = 12, heads: int = 16, groups: int = 32):
        super().__init__()
        self.embed = nn.Conv1d(dim, dim, kernel_size=7, padding=3)
        self.prior_net = nn.ModuleList([ResnetBlock(dim, groups), ResnetBlock(dim, groups)])
        self.transformers = nn.ModuleList([TransformerBlock(dim, heads) for _ in range(depth)])
        self.final_layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.post_net = nn.ModuleList([ResnetBlock(dim, groups), ResnetBlock(dim, groups)])

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x `(B, T, D)`, mask `(B, T)` bool (True = valid) or None -> `(B, T, D)`.

        With a mask, each sequence's valid steps get exactly what they get alone; padded steps hold garbage.
        """
        conv_mask = None if mask is None else mask[:, None, :].to(x.dtype)  # (B, 1, T)
        attn_mask = None if mask is None else mask[:, None, None, :]  # (B, 1, 1, T)
        h = self.embed(zero_padding(x.transpose(1, 2), conv_mask))
        for block in self.prior_net:
            h = block(h, conv_mask)
        h = h.transpose(1, 2)
        for block in self.transformers:
            h = block(h, attn_mask)
        h = h.transpose(1, 2)
        for block in self.post_net:
            h = block(h, conv_mask)
        return self.final_layer_norm(h.transpose(1, 2))
