"""Shared fixtures of the codec tests: seeded, CPU, tiny unless a test is marked slow (full size)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from tests.codec.reference import build_reference_codec, perturb_parameters, reference_or_skip

SEMANTIC_LAYERS_REF = 18  # more than the 16 NeuCodec reads, so truncation is exercised against the reference


@contextmanager
def one_thread() -> Iterator[None]:
    """Run on one intra-op thread (restored after).

    The CI/dev machines have 2 cores shared with other jobs: two OpenMP threads spinning at each op's barrier
    while the other core is busy made these tests up to 50x slower than one thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    torch.manual_seed(0)
    with one_thread():
        yield


def make_semantic(dim: int, layers: int = SEMANTIC_LAYERS_REF, seed: int = 0) -> tuple[nn.Module, Any]:
    """A small random w2v-bert (width `dim`) and a feature extractor like w2v-bert-2.0's."""
    from app.codec.semantic import tiny_semantic_model

    return tiny_semantic_model(dim, layers, seed=seed)


def reference_kwargs(config: CodecConfig) -> dict[str, Any]:
    return {
        "hidden_dim": config.hidden_dim,
        "depth": config.depth,
        "heads": config.heads,
        "vq_dim": config.vq_dim,
        "hop_length": config.hop_length,
        "encoder_ngf": config.encoder_ngf,
        "encoder_strides": config.encoder_strides,
        "encoder_dim": config.encoder_dim,
        "semantic_code_dim": config.semantic_code_dim,
    }


@pytest.fixture(scope="session")
def tiny_config() -> CodecConfig:
    return CodecConfig.tiny()


@pytest.fixture(scope="session")
def tiny_reference(tiny_config: CodecConfig) -> nn.Module:
    """Reference NeuCodec of the tiny size, every parameter perturbed (seeded), semantic model of 18 layers."""
    reference_or_skip()
    torch.manual_seed(1)
    with one_thread():
        semantic, extractor = make_semantic(tiny_config.semantic_dim)
        codec = build_reference_codec(
            **reference_kwargs(tiny_config), semantic_model=semantic, feature_extractor=extractor
        )
        perturb_parameters(codec, scale=0.1, seed=1)
    return codec


@pytest.fixture(scope="session")
def full_reference() -> nn.Module:
    """Reference NeuCodec of the official size (random weights, perturbed; a tiny semantic model)."""
    reference_or_skip()
    torch.manual_seed(2)
    with one_thread():
        semantic, extractor = make_semantic(32)
        codec = build_reference_codec(semantic_model=semantic, feature_extractor=extractor)
        perturb_parameters(codec.generator, scale=0.02, seed=2)
        perturb_parameters(codec.fc_post_a, scale=0.02, seed=3)
    return codec


def decoder_from(reference: nn.Module, config: CodecConfig) -> NeuCodecDecoder:
    """Our decoder holding the reference's weights (built on meta, tensors assigned: no random init)."""
    with torch.device("meta"):
        decoder = NeuCodecDecoder(config)
    own = decoder.state_dict()
    decoder.load_state_dict({k: v for k, v in reference.state_dict().items() if k in own}, strict=True, assign=True)
    return decoder.eval()


@pytest.fixture(scope="session")
def tiny_decoder(tiny_reference: nn.Module, tiny_config: CodecConfig) -> NeuCodecDecoder:
    return decoder_from(tiny_reference, tiny_config)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint with encoder, written by `tts-make-codec`'s function."""
    from app.codec.checkpoint import make_checkpoint

    with one_thread():
        return make_checkpoint(tmp_path_factory.mktemp("codec") / "tiny", "tiny", with_encoder=True, seed=0)
