"""FSQ indices <-> embeddings against `vector_quantize_pytorch.ResidualFSQ` (the reference's quantizer)."""

from __future__ import annotations

import torch

from app.codec.fsq import FiniteScalarQuantizer
from tests.codec.reference import reference_or_skip

LEVELS = (4,) * 8
DIM = 32


def _pair() -> tuple[torch.nn.Module, FiniteScalarQuantizer]:
    reference_or_skip()
    from vector_quantize_pytorch import ResidualFSQ

    reference = ResidualFSQ(dim=DIM, levels=list(LEVELS), num_quantizers=1).eval()
    ours = FiniteScalarQuantizer(DIM, LEVELS).eval()
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def test_codebook_size() -> None:
    assert FiniteScalarQuantizer(DIM, LEVELS).codebook_size == 65_536


def test_decode_matches_reference() -> None:
    reference, ours = _pair()
    ids = torch.cat([torch.tensor([[0, 1, 65_535, 12_345]]), torch.randint(0, 65_536, (1, 4))], dim=1)
    with torch.no_grad():
        expected = reference.get_output_from_indices(ids[..., None])
        torch.testing.assert_close(ours.decode(ids), expected, rtol=1e-6, atol=1e-6)


def test_encode_matches_reference() -> None:
    reference, ours = _pair()
    x = torch.randn(3, 40, DIM) * 3
    with torch.no_grad():
        _, expected = reference(x)
        got = ours.encode(x)
    assert got.dtype == torch.int64
    torch.testing.assert_close(got, expected[..., 0].long(), rtol=0, atol=0)
    assert got.unique().numel() > 20  # the inputs spread over many codes


def test_indices_codes_roundtrip() -> None:
    fsq = FiniteScalarQuantizer(DIM, LEVELS)
    ids = torch.arange(0, 65_536, 97)
    codes = fsq.indices_to_codes(ids)
    assert set(codes.unique().tolist()) <= {-1.0, -0.5, 0.0, 0.5}
    digits = (codes * 2 + 2).long()
    torch.testing.assert_close((digits * fsq._basis).sum(-1), ids)
