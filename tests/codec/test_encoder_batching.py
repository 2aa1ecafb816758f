"""Batched encoding (issue point 5): several clips of any lengths get, each, the codes they get alone, and the
codes of the reference `encode_code`. Clips at other rates / stereo go through `resample_to_16k` first."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from app.audio.resample import resample_to_16k
from app.codec.config import CodecConfig
from app.codec.encoder import NeuCodecEncoder
from app.codec.runtime import CodecRuntime
from app.codec.semantic import truncate_semantic_model
from tests.codec.conftest import decoder_from


@pytest.fixture(scope="module")
def runtime(tiny_reference: torch.nn.Module, tiny_config: CodecConfig) -> CodecRuntime:
    semantic = truncate_semantic_model(copy.deepcopy(tiny_reference.semantic_model), tiny_config.semantic_layer)
    encoder = NeuCodecEncoder(tiny_config, semantic, tiny_reference.feature_extractor)
    own = encoder.state_dict()
    encoder.load_state_dict({k: v for k, v in tiny_reference.state_dict().items() if k in own})
    return CodecRuntime(decoder_from(tiny_reference, tiny_config), encoder.eval(), max_batch_size=4)


def _clips(lengths: list[int], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in lengths]


def test_batched_encode_equals_alone_and_reference(runtime: CodecRuntime, tiny_reference: torch.nn.Module) -> None:
    clips = _clips([4_800, 3_200, 4_800, 4_123, 3_200])
    before = runtime.stats.encode_batches
    batched = runtime.encode(clips)
    assert runtime.stats.encode_batches - before == 3  # one batch per distinct length
    for clip, codes in zip(clips, batched, strict=True):
        assert codes.dtype == np.int64 and codes.ndim == 1
        np.testing.assert_array_equal(codes, runtime.encode([clip])[0])
    for i in (0, 3):  # and what the reference's encode_code gives each clip alone
        with torch.inference_mode():
            expected = tiny_reference.encode_code(torch.from_numpy(clips[i])[None, None])[0, 0].numpy()
        np.testing.assert_array_equal(batched[i], expected)


def test_encode_respects_max_batch_size(runtime: CodecRuntime) -> None:
    clips = _clips([1_600] * 5, seed=1)
    before = runtime.stats.encode_batches
    codes = runtime.encode(clips)
    assert runtime.stats.encode_batches - before == 2  # 4 + 1
    np.testing.assert_array_equal(codes[4], runtime.encode([clips[4]])[0])


def test_encode_any_rate_and_stereo(runtime: CodecRuntime) -> None:
    rng = np.random.default_rng(2)
    stereo = (0.1 * rng.standard_normal((44_100 // 5, 2))).astype(np.float32)
    mono16 = resample_to_16k(stereo, 44_100)
    assert mono16.dtype == np.float32 and mono16.shape == (3_200,)
    np.testing.assert_allclose(mono16, resample_to_16k(stereo.mean(axis=1), 44_100), atol=1e-6)
    codes = runtime.encode([mono16])[0]
    assert abs(codes.shape[0] - 10) <= 1


def test_encode_rejects_bad_clips(runtime: CodecRuntime) -> None:
    with pytest.raises(ValueError):
        runtime.encode([np.zeros(100, np.float32)])
    with pytest.raises(ValueError):
        runtime.encode([np.zeros((2, 4_000), np.float32)])
    with pytest.raises(ValueError):
        runtime.encode([np.full(4_000, np.nan, np.float32)])


def test_encode_without_encoder_raises(tiny_decoder) -> None:
    with pytest.raises(RuntimeError, match="encoder"):
        CodecRuntime(tiny_decoder).encode(_clips([4_000]))
