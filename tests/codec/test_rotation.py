"""The rotary trap: the reference rotates q/k by HEAD index (torchtune RoPE on `(b, h, t, d)`), not by time.

Proved against the reference code itself (torchtune's `RotaryPositionalEmbeddings` and neucodec's `Attention`).
"""

from __future__ import annotations

import pytest
import torch

from app.codec.vocos import Attention, HeadRotation
from tests.codec.reference import reference_or_skip

HEADS, HEAD_DIM = 4, 16


def test_reference_rotary_on_bhtd_is_our_per_head_rotation() -> None:
    ref = reference_or_skip()
    rope = ref.RotaryPositionalEmbeddings(dim=HEAD_DIM)
    x = torch.randn(2, HEADS, 7, HEAD_DIM)  # (b, h, t, d): how neucodec calls it
    torch.testing.assert_close(HeadRotation(HEADS, HEAD_DIM)(x), rope(x), rtol=0, atol=0)


def test_reference_rotation_ignores_time_and_follows_heads() -> None:
    ref = reference_or_skip()
    rope = ref.RotaryPositionalEmbeddings(dim=HEAD_DIM)
    step = torch.randn(1, HEADS, 1, HEAD_DIM)
    rotated = rope(step.expand(1, HEADS, 9, HEAD_DIM).contiguous())
    # Same vector at every time step -> same output at every time step: no time position.
    torch.testing.assert_close(rotated, rotated[:, :, :1].expand_as(rotated), rtol=0, atol=0)
    # Head 0 has angle 0 (identity); other heads are rotated by different angles.
    torch.testing.assert_close(rotated[:, 0], step[:, 0].expand(1, 9, HEAD_DIM))
    assert not torch.allclose(rotated[:, 1], rotated[:, 2])
    # A time-indexed RoPE (the intended (b, t, h, d) layout) would give something else.
    time_rope = rope(step.expand(1, HEADS, 9, HEAD_DIM).transpose(1, 2).contiguous()).transpose(1, 2)
    assert (time_rope - rotated).abs().max() > 0.1


def _reference_attention(dim: int, heads: int) -> torch.nn.Module:
    ref = reference_or_skip()
    rope = ref.RotaryPositionalEmbeddings(dim=dim // heads)
    return ref.bs_roformer5.Attention(dim=dim, n_heads=heads, rotary_embed=rope).eval()


def test_attention_matches_reference_attention() -> None:
    dim, heads = 64, HEADS
    reference = _reference_attention(dim, heads)
    ours = Attention(dim, heads).eval()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 11, dim)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-6)


def test_attention_carries_no_time_position() -> None:
    """q and k of a head share its rotation, so scores are those of no rotation: permuting time permutes output."""
    dim, heads = 64, HEADS
    reference = _reference_attention(dim, heads)
    x = torch.randn(1, 10, dim)
    perm = torch.randperm(10)
    with torch.no_grad():
        torch.testing.assert_close(reference(x)[:, perm], reference(x[:, perm]), rtol=1e-5, atol=1e-6)
        ours = Attention(dim, heads).eval()
        ours.load_state_dict(reference.state_dict())
        ours.rotation.cos.fill_(1.0)
        ours.rotation.sin.fill_(0.0)  # no rotation at all
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("heads,head_dim", [(16, 64), (4, 32)])
def test_rotation_buffers_match_torchtune_cache_rows(heads: int, head_dim: int) -> None:
    ref = reference_or_skip()
    cache = ref.RotaryPositionalEmbeddings(dim=head_dim).cache[:heads]  # (heads, head_dim/2, 2)
    rotation = HeadRotation(heads, head_dim)
    torch.testing.assert_close(rotation.cos[:, 0], cache[..., 0], rtol=0, atol=0)
    torch.testing.assert_close(rotation.sin[:, 0], cache[..., 1], rtol=0, atol=0)
    assert "cos" not in rotation.state_dict()  # not a checkpoint key
