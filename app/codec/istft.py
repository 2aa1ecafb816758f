"""The ISTFT head: hidden states -> complex spectra -> audio by inverse FFT and overlap-add ("same" padding).

Matches `neucodec.codec_decoder_vocos.ISTFTHead`/`ISTFT(padding="same")`. With a padding mask the spectra of
padded frames are zero and the window envelope is built per sequence from its own frames, so the valid
samples of every sequence equal its unpadded decode (the envelope of a padded batch would otherwise include
the padded frames' windows over the last `(n_fft - hop) / 2` samples).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class ISTFT(nn.Module):
    """Inverse STFT with "same" padding: T frames -> T * hop samples (window = periodic Hann, n_fft long)."""

    def __init__(self, n_fft: int, hop_length: int):
        super().__init__()
        if n_fft % hop_length or n_fft < 2 * hop_length:
            raise ValueError(f"n_fft {n_fft} must be a multiple (>= 2) of hop_length {hop_length}")
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.pad = (n_fft - hop_length) // 2
        self.register_buffer("window", torch.hann_window(n_fft))  # persistent: an official key

    def _overlap_add(self, frames: Tensor) -> Tensor:
        """Frames `(B, n_fft, T)` -> trimmed signal `(B, T * hop)`."""
        steps = frames.shape[-1]
        size = (steps - 1) * self.hop_length + self.n_fft
        out = F.fold(frames, output_size=(1, size), kernel_size=(1, self.n_fft), stride=(1, self.hop_length))
        return out[:, 0, 0, self.pad : -self.pad]

    def forward(self, spec: Tensor, mask: Tensor | None = None) -> Tensor:
        """spec `(B, n_fft // 2 + 1, T)` complex, mask `(B, T)` bool or None -> audio `(B, T * hop)` float32.

        With a mask, padded frames must have zero spectra; samples past each sequence's end are set to 0.
        """
        batch, _, steps = spec.shape
        window = self.window.float()
        frames = torch.fft.irfft(spec, self.n_fft, dim=1, norm="backward") * window[None, :, None]
        audio = self._overlap_add(frames)
        window_sq = window.square()[None, :, None].expand(1 if mask is None else batch, self.n_fft, steps)
        if mask is None:
            return audio / self._overlap_add(window_sq)
        envelope = self._overlap_add(window_sq * mask[:, None, :].float())
        valid = torch.arange(steps * self.hop_length, device=spec.device)[None, :] < (
            mask.sum(dim=1, keepdim=True) * self.hop_length
        )
        envelope = torch.where(valid, envelope, torch.ones_like(envelope))
        return torch.where(valid, audio / envelope, torch.zeros_like(audio))


class ISTFTHead(nn.Module):
    """Linear to log-magnitude and phase of `n_fft // 2 + 1` bins, then ISTFT."""

    def __init__(self, dim: int, n_fft: int, hop_length: int):
        super().__init__()
        self.out = nn.Linear(dim, n_fft + 2)
        self.istft = ISTFT(n_fft, hop_length)

    def spectrum(self, x: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x `(B, T, D)`, mask `(B, T)` bool or None -> real and imaginary parts `(B, n_fft // 2 + 1, T)` float32.

        The projection runs in `out`'s dtype (kept float32 by `app.codec.precision`), the rest in float32;
        padded frames get zero spectra. Real tensors only, so `torch.compile` can fuse it with the backbone.
        """
        pred = self.out(x.to(self.out.weight.dtype)).float().transpose(1, 2)  # (B, n_fft + 2, T)
        log_mag, phase = pred.chunk(2, dim=1)
        mag = torch.exp(log_mag).clip(max=1e2)
        if mask is not None:
            mag = mag * mask[:, None, :]
        return mag * torch.cos(phase), mag * torch.sin(phase)

    def synthesize(self, real: Tensor, imag: Tensor, mask: Tensor | None = None) -> Tensor:
        """The parts of `spectrum` -> audio `(B, T * hop)` float32 (inverse FFT and overlap-add, always eager-safe)."""
        return self.istft(torch.complex(real.float(), imag.float()), mask)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x `(B, T, D)`, mask `(B, T)` bool or None -> audio `(B, T * hop)` float32 (not clipped).

        The spectrum maths runs in float32 whatever the model dtype.
        """
        return self.synthesize(*self.spectrum(x, mask), mask)
