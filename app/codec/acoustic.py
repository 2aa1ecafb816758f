"""The acoustic encoder of NeuCodec (`CodecEnc`): 16 kHz waveform -> 50 Hz embeddings.

Weight-normalised convs and anti-aliased SnakeBeta activations, as `neucodec.codec_encoder.CodecEncoder`
(module paths and parameter names identical: `weight_g`/`weight_v`, `act.alpha`/`act.beta`,
`upsample.filter`, `downsample.lowpass.filter`). Used by voice cloning only; not on the decode path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def kaiser_sinc_filter1d(cutoff: float, half_width: float, kernel_size: int) -> Tensor:
    """Kaiser-windowed sinc low-pass filter `(1, 1, kernel_size)` with unit DC gain (alias-free-torch)."""
    even = kernel_size % 2 == 0
    half_size = kernel_size // 2
    delta_f = 4 * half_width
    attenuation = 2.285 * (half_size - 1) * math.pi * delta_f + 7.95
    if attenuation > 50.0:
        beta = 0.1102 * (attenuation - 8.7)
    elif attenuation >= 21.0:
        beta = 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    time = torch.arange(-half_size, half_size) + 0.5 if even else torch.arange(kernel_size) - half_size
    filter_ = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    filter_ /= filter_.sum()
    return filter_.view(1, 1, kernel_size)


class SnakeBeta(nn.Module):
    """`x + 1 / (exp(beta) + 1e-9) * sin(x * exp(alpha))^2`, per channel (log-scale parameters)."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(channels))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, T)`."""
        alpha = torch.exp(self.alpha[None, :, None])
        beta = torch.exp(self.beta[None, :, None])
        return x + (1.0 / (beta + 1e-9)) * torch.pow(torch.sin(x * alpha), 2)


class UpSample1d(nn.Module):
    """2x upsampling by a transposed low-pass filter (replicate padding)."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, ratio * T)`."""
        channels = x.shape[1]
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(channels, -1, -1), stride=self.ratio, groups=channels)
        return x[..., self.pad_left : -self.pad_right]


class LowPassFilter1d(nn.Module):
    """Strided low-pass filter (replicate padding)."""

    def __init__(self, cutoff: float, half_width: float, stride: int, kernel_size: int = 12):
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter1d(cutoff, half_width, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, T // stride)`."""
        channels = x.shape[1]
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(channels, -1, -1), stride=self.stride, groups=channels)


class DownSample1d(nn.Module):
    """2x downsampling by a low-pass filter."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(0.5 / ratio, 0.6 / ratio, ratio, kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, T // ratio)`."""
        return self.lowpass(x)


class Activation1d(nn.Module):
    """Anti-aliased activation: upsample 2x, SnakeBeta, downsample 2x."""

    def __init__(self, channels: int):
        super().__init__()
        self.act = SnakeBeta(channels)
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, T)`."""
        return self.downsample(self.act(self.upsample(x)))


class WNConv1d(nn.Conv1d):
    """A weight-normalised `nn.Conv1d` with the parameters `torch.nn.utils.weight_norm` gives it.

    `weight = weight_g * weight_v / ||weight_v||` (norm over all dims but the first), recomputed per call.
    """

    def __init__(self, *args: object, **kwargs: object):
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        weight = self.weight.detach()
        del self.weight
        self.weight_g = nn.Parameter(torch.norm_except_dim(weight, 2, 0))
        self.weight_v = nn.Parameter(weight.clone())

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C_in, T) -> (B, C_out, T')`."""
        return self._conv_forward(x, torch._weight_norm(self.weight_v, self.weight_g, 0), self.bias)


class ResidualUnit(nn.Module):
    """x + conv1(act(conv7_dilated(act(x))))."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            Activation1d(channels),
            WNConv1d(channels, channels, kernel_size=7, dilation=dilation, padding=3 * dilation),
            Activation1d(channels),
            WNConv1d(channels, channels, kernel_size=1),
        )

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C, T) -> (B, C, T)`."""
        return x + self.block(x)


class EncoderBlock(nn.Module):
    """Residual units at `channels // 2`, then a strided conv to `channels` (time / stride)."""

    def __init__(self, channels: int, stride: int, dilations: tuple[int, ...]):
        super().__init__()
        half = channels // 2
        self.block = nn.Sequential(
            *(ResidualUnit(half, d) for d in dilations),
            Activation1d(half),
            WNConv1d(half, channels, kernel_size=2 * stride, stride=stride, padding=stride // 2 + stride % 2),
        )

    def forward(self, x: Tensor) -> Tensor:
        """`(B, C / 2, T) -> (B, C, T / stride)`."""
        return self.block(x)


class AcousticEncoder(nn.Module):
    """Waveform -> embeddings at `sample_rate / prod(strides)` Hz."""

    def __init__(
        self,
        ngf: int = 48,
        strides: tuple[int, ...] = (2, 2, 4, 4, 5),
        dilations: tuple[int, ...] = (1, 3, 9),
        dim: int = 1024,
    ):
        super().__init__()
        width = ngf
        blocks: list[nn.Module] = [WNConv1d(1, width, kernel_size=7, padding=3)]
        for stride in strides:
            width *= 2
            blocks.append(EncoderBlock(width, stride, dilations))
        self.conv_blocks = nn.Sequential(*blocks)
        self.conv_final_block = nn.Sequential(Activation1d(width), WNConv1d(width, dim, kernel_size=3, padding=1))
        for module in self.modules():  # the reference's init leaves conv biases at zero
            if isinstance(module, nn.Conv1d) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, audio: Tensor) -> Tensor:
        """audio `(B, 1, N)` (N a multiple of prod(strides)) -> `(B, N / prod(strides), dim)`."""
        return self.conv_final_block(self.conv_blocks(audio)).transpose(1, 2)
