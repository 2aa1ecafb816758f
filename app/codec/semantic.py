"""The semantic half of the NeuCodec encoder: w2v-bert-2.0 (through `transformers`) and `SemanticEncoder`.

`transformers` is imported inside the functions that need it, so the decode path never imports it.
The w2v-bert model is truncated to the layers NeuCodec reads (hidden state 16 of 24): the reference runs all
24 and keeps `hidden_states[16]`, which the first 16 layers alone produce.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SemanticEncoder(nn.Module):
    """conv3 -> ReLU -> (conv3 -> ReLU -> conv3) + skip -> conv3 over w2v-bert hidden states."""

    def __init__(self, input_channels: int, code_dim: int, encode_channels: int, kernel_size: int = 3):
        super().__init__()
        pad = (kernel_size - 1) // 2
        self.initial_conv = nn.Conv1d(input_channels, encode_channels, kernel_size, padding=pad, bias=False)
        self.residual_blocks = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(encode_channels, encode_channels, kernel_size, padding=pad),
            nn.ReLU(),
            nn.Conv1d(encode_channels, encode_channels, kernel_size, padding=pad),
        )
        self.final_conv = nn.Conv1d(encode_channels, code_dim, kernel_size, padding=pad, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """`(B, input_channels, T) -> (B, code_dim, T)`."""
        # The reference's first ReLU is in place, so its skip connection adds relu(initial_conv(x)).
        x = F.relu(self.initial_conv(x))
        x = self.residual_blocks(x) + x
        return self.final_conv(x)


def truncate_semantic_model(model: nn.Module, layers: int) -> nn.Module:
    """Keep the first `layers` encoder layers of a `Wav2Vec2BertModel` (in place); returns it in eval mode."""
    available = len(model.encoder.layers)
    if available < layers:
        raise ValueError(f"the semantic model has {available} layers; NeuCodec reads hidden state {layers}")
    model.encoder.layers = model.encoder.layers[:layers]
    model.config.num_hidden_layers = layers
    return model.eval()


def load_semantic_model(name_or_path: str, layers: int) -> tuple[nn.Module, Any]:
    """`Wav2Vec2BertModel` (truncated to `layers`) and its feature extractor, from a hub id or directory."""
    from transformers import AutoFeatureExtractor, Wav2Vec2BertModel

    model = Wav2Vec2BertModel.from_pretrained(name_or_path)
    feature_extractor = AutoFeatureExtractor.from_pretrained(name_or_path)
    return truncate_semantic_model(model, layers), feature_extractor


def tiny_semantic_model(dim: int, layers: int = 16, seed: int = 0) -> tuple[nn.Module, Any]:
    """A random `Wav2Vec2BertModel` of width `dim` (w2v-bert-2.0's architecture) and a feature extractor.

    Small feed-forward and attention sizes; used by test checkpoints (`tts-make-codec --with-encoder`).
    """
    from transformers import SeamlessM4TFeatureExtractor, Wav2Vec2BertConfig, Wav2Vec2BertModel

    heads = max(1, dim // 64)
    config = Wav2Vec2BertConfig(
        hidden_size=dim,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=2 * dim if dim <= 64 else 64,
        conv_depthwise_kernel_size=3,
        output_hidden_states=True,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Wav2Vec2BertModel(config)
    feature_extractor = SeamlessM4TFeatureExtractor(padding_value=1.0)
    return model.eval(), feature_extractor


def semantic_features(feature_extractor: Any, clips: list[np.ndarray]) -> Tensor:
    """16 kHz clips of one length `(N,)` -> w2v-bert input features `(B, F, 160)` float32 (CPU, numpy maths).

    Each clip is featurised (fbank + per-clip normalisation) exactly as alone: with equal lengths the
    extractor adds no padding.
    """
    if len({clip.shape[0] for clip in clips}) > 1:
        raise ValueError("semantic_features needs clips of one length (group them first)")
    batch = feature_extractor(
        [np.asarray(clip, dtype=np.float32) for clip in clips], sampling_rate=16_000, return_tensors="pt"
    )
    return batch.input_features
