"""Exact padded batching (issue point 3): every sequence of a padded, mixed-length batch decodes to the audio
it gets alone (max abs difference <= 1e-4, float32), on the tiny and the full-size decoder."""

from __future__ import annotations

import pytest
import torch

from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from app.codec.istft import ISTFT
from app.codec.masking import MaskedGroupNorm
from tests.codec.conftest import decoder_from

HOP = 480
TOL = 1e-4


def _assert_padded_equals_alone(decoder: NeuCodecDecoder, lengths: list[int], padded_len: int) -> None:
    codes = torch.randint(0, 65_536, (len(lengths), padded_len))
    with torch.inference_mode():
        batch = decoder(codes, torch.tensor(lengths))
        assert batch.shape == (len(lengths), padded_len * HOP)
        for row, length in enumerate(lengths):
            alone = decoder(codes[row : row + 1, :length])[0]
            assert alone.shape == (length * HOP,)
            diff = (batch[row, : length * HOP] - alone).abs().max().item()
            assert diff <= TOL, f"length {length} in a batch padded to {padded_len}: max diff {diff:.2e}"
            assert batch[row, length * HOP :].abs().max().item() == 0.0 if length < padded_len else True


@pytest.mark.parametrize(
    "lengths,padded_len",
    [([1, 7, 20, 13], 25), ([5, 5], 8), ([2, 50, 1, 33, 49], 64), ([12], 12)],
)
def test_tiny_padded_batch_equals_alone(tiny_decoder: NeuCodecDecoder, lengths: list[int], padded_len: int) -> None:
    _assert_padded_equals_alone(tiny_decoder, lengths, padded_len)


@pytest.mark.slow
def test_full_size_padded_batch_equals_alone(full_reference: torch.nn.Module) -> None:
    decoder = decoder_from(full_reference, CodecConfig.full())
    _assert_padded_equals_alone(decoder, [3, 12, 1, 8], 16)


def test_naive_padding_is_not_exact(tiny_decoder: NeuCodecDecoder) -> None:
    """Without lengths the padded tail changes the valid audio: the masking is what makes it exact."""
    codes = torch.randint(0, 65_536, (1, 30))
    with torch.inference_mode():
        alone = tiny_decoder(codes[:, :12])[0]
        naive = tiny_decoder(codes)[0, : 12 * HOP]
    snr = 10 * torch.log10(alone.square().sum() / (naive - alone).square().sum())
    assert snr < 30, f"naive padding unexpectedly exact (SNR {snr:.1f} dB)"


def test_masked_groupnorm_uses_valid_steps_only() -> None:
    norm = MaskedGroupNorm(4, 16, eps=1e-6)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    x = torch.randn(2, 16, 10)
    mask = torch.zeros(2, 1, 10)
    mask[0, :, :10] = 1
    mask[1, :, :6] = 1
    out = norm(x, mask)
    torch.testing.assert_close(out[0], norm(x[:1])[0])
    torch.testing.assert_close(out[1, :, :6], norm(x[1:, :, :6])[0])


def test_istft_per_sequence_envelope() -> None:
    """Padded frames with zero spectra and a per-sequence envelope leave the valid samples unchanged."""
    istft = ISTFT(1920, HOP)
    spec = torch.randn(2, 961, 9, dtype=torch.complex64)
    mask = torch.tensor([[True] * 9, [True] * 4 + [False] * 5])
    spec[1, :, 4:] = 0
    out = istft(spec, mask)
    torch.testing.assert_close(out[0], istft(spec[:1])[0])
    torch.testing.assert_close(out[1, : 4 * HOP], istft(spec[1:, :, :4])[0])
    assert out[1, 4 * HOP :].abs().max() == 0
    # The shared (batch) envelope would be wrong over the last (n_fft - hop) / 2 valid samples.
    shared = istft(spec[1:])[0, : 4 * HOP]
    assert (shared - out[1, : 4 * HOP]).abs()[-720:].max() > 1e-3
