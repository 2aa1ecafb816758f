"""The NeuCodec encoder (voice cloning): 16 kHz audio -> FSQ codes at 50 Hz.

Same maths as `neucodec.NeuCodec.encode_code`: pad the clip by `320 - N % 320` samples, w2v-bert hidden
state 16 -> `SemanticEncoder_module`, `CodecEnc` on the waveform, concatenate (semantic first), `fc_prior`,
FSQ. Parameter names are the official ones (`CodecEnc.*`, `SemanticEncoder_module.*`, `fc_prior.*`,
`generator.quantizer.project_in.*`, and `semantic_model.*` for the w2v-bert model when attached).

Batching: every stage is exact per clip for clips of one length; clips of different lengths are encoded in
groups of equal length (the acoustic encoder's replicate padding and the feature extractor's per-clip
normalisation would make padding inexact), which `CodecRuntime.encode` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from app.codec.acoustic import AcousticEncoder
from app.codec.config import CodecConfig
from app.codec.fsq import FiniteScalarQuantizer
from app.codec.semantic import SemanticEncoder, semantic_features


class NeuCodecEncoder(nn.Module):
    """Audio -> FSQ ids. The w2v-bert model (a `transformers` module) is registered as `semantic_model`."""

    def __init__(
        self,
        config: CodecConfig | None = None,
        semantic_model: nn.Module | None = None,
        feature_extractor: Any = None,
    ):
        super().__init__()
        self.config = config = config or CodecConfig()
        self.CodecEnc = AcousticEncoder(
            config.encoder_ngf, config.encoder_strides, config.encoder_dilations, config.encoder_dim
        )
        self.SemanticEncoder_module = SemanticEncoder(
            config.semantic_dim, config.semantic_code_dim, config.semantic_code_dim
        )
        self.fc_prior = nn.Linear(config.semantic_code_dim + config.encoder_dim, config.vq_dim)
        # Kept under `generator.quantizer` so the official key `generator.quantizer.project_in.*` loads unchanged.
        self.generator = nn.ModuleDict(
            {"quantizer": FiniteScalarQuantizer(config.vq_dim, config.fsq_levels, project_out=False)}
        )
        self.semantic_model = semantic_model
        self.feature_extractor = feature_extractor

    @property
    def hop(self) -> int:
        """Input samples per code (320 at 16 kHz)."""
        return self.config.encoder_hop

    def attach_semantic_model(self, semantic_model: nn.Module, feature_extractor: Any) -> None:
        """Set the w2v-bert model (truncated to `config.semantic_layer` layers) and its feature extractor."""
        self.semantic_model = semantic_model
        self.feature_extractor = feature_extractor

    def pad(self, audio: Tensor) -> Tensor:
        """`(B, N) -> (B, N + hop - N % hop)`: the reference's padding (a whole hop when N % hop == 0)."""
        return torch.nn.functional.pad(audio, (0, self.hop - audio.shape[-1] % self.hop))

    def forward(self, audio: Tensor, features: Tensor) -> Tensor:
        """audio `(B, N)` padded by `pad`, features `(B, F, 160)` of that audio -> codes `(B, T)` int64."""
        if self.semantic_model is None:
            raise RuntimeError("no semantic model attached (attach_semantic_model)")
        acoustic = self.CodecEnc(audio[:, None, :]).transpose(1, 2)  # (B, encoder_dim, T_a)
        hidden = self.semantic_model(features, output_hidden_states=True).hidden_states[self.config.semantic_layer]
        semantic = self.SemanticEncoder_module(hidden.transpose(1, 2))  # (B, semantic_code_dim, T_s)
        steps = min(acoustic.shape[-1], semantic.shape[-1])
        x = torch.cat([semantic[..., :steps], acoustic[..., :steps]], dim=1).transpose(1, 2)
        return self.generator["quantizer"].encode(self.fc_prior(x))

    def encode(self, clips: list[np.ndarray]) -> Tensor:
        """Clips of ONE length `(N,)` float32 at 16 kHz -> codes `(B, T)` int64 on the model's device.

        T is about N / 320: the shorter of the acoustic (`N // 320 + 1`) and semantic frame counts.
        """
        if self.feature_extractor is None:
            raise RuntimeError("no feature extractor attached (attach_semantic_model)")
        device = self.fc_prior.weight.device
        audio = self.pad(torch.from_numpy(np.stack([np.asarray(c, dtype=np.float32) for c in clips])))
        features = semantic_features(self.feature_extractor, list(audio.numpy()))
        return self(audio.to(device), features.to(device))
