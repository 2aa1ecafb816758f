"""The NeuCodec decoder: FSQ indices -> embeddings -> `fc_post_a` -> Vocos backbone -> ISTFT head -> 24 kHz audio.

The state dict has the official key names (`fc_post_a.*`, `generator.quantizer.project_out.*`,
`generator.backbone.*`, `generator.head.*`): the decoder part of `neuphonic/neucodec`'s `pytorch_model.bin`
loads into it unchanged. No `transformers`, no semantic model.
"""

from __future__ import annotations

from torch import Tensor, nn

from app.codec.config import CodecConfig
from app.codec.fsq import FiniteScalarQuantizer
from app.codec.istft import ISTFTHead
from app.codec.masking import lengths_to_mask
from app.codec.vocos import VocosBackbone


class VocosGenerator(nn.Module):
    """`generator` of the official model, decode side: quantizer (project_out only), backbone, head."""

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.quantizer = FiniteScalarQuantizer(config.vq_dim, config.fsq_levels, project_in=False)
        self.backbone = VocosBackbone(config.hidden_dim, config.depth, config.heads, config.groupnorm_groups)
        self.head = ISTFTHead(config.hidden_dim, config.n_fft, config.hop_length)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """x `(B, T, hidden_dim)`, mask `(B, T)` bool or None -> audio `(B, T * hop)` float32."""
        return self.head(self.backbone(x, mask), mask)


class NeuCodecDecoder(nn.Module):
    """FSQ token ids -> audio. Exact for padded batches when `lengths` is given."""

    def __init__(self, config: CodecConfig | None = None):
        super().__init__()
        self.config = config or CodecConfig()
        self.generator = VocosGenerator(self.config)
        self.fc_post_a = nn.Linear(self.config.vq_dim, self.config.hidden_dim)
        self.reset_parameters()

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def reset_parameters(self) -> None:
        """The reference's init: convs truncated-normal (std 0.02) with zero bias; other layers torch defaults."""
        for module in self.generator.modules():
            if isinstance(module, nn.Conv1d):
                nn.init.trunc_normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)

    def forward(self, codes: Tensor, lengths: Tensor | None = None) -> Tensor:
        """codes `(B, T)` int64 in [0, codebook), lengths `(B,)` int64 or None -> audio `(B, T * hop)` float32.

        Without `lengths` every row is a full-length sequence. With `lengths`, row `b` is valid for its first
        `lengths[b]` tokens (>= 1): its first `lengths[b] * hop` samples equal its unpadded decode, the rest is 0.
        """
        real, imag = self.spectrum(codes, lengths)
        return self.synthesize(real, imag, lengths)

    def spectrum(self, codes: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The network part of `forward` (all but the inverse FFT): codes, lengths -> real and imaginary spectra
        `(B, n_fft // 2 + 1, T)` float32. Real tensors only: this is what `CodecRuntime` hands to torch.compile.
        """
        mask = None if lengths is None else lengths_to_mask(lengths, codes.shape[1])
        x = self.generator.quantizer(codes)  # in project_out's dtype (float32 under `app.codec.precision`)
        x = self.fc_post_a(x.to(self.fc_post_a.weight.dtype))
        return self.generator.head.spectrum(self.generator.backbone(x, mask), mask)

    def synthesize(self, real: Tensor, imag: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Spectra from `spectrum` -> audio `(B, T * hop)` float32: inverse FFT and overlap-add (float32)."""
        mask = None if lengths is None else lengths_to_mask(lengths, real.shape[-1])
        return self.generator.head.synthesize(real, imag, mask)
