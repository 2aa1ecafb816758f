"""Random-weight aligner models of the real shapes, for tests and benchmarks (no hub here): MMS forced
alignment's vocabulary (the 26 letters and the apostrophe, `<blank>` first) over a tiny wav2vec2 or the
300M-parameter one of `MahmoudAshraf/mms-300m-1130-forced-aligner` (wav2vec2-large, layer-normalized)."""

from __future__ import annotations

import json
from pathlib import Path

# the order of MMS forced alignment's vocabulary (by letter frequency)
MMS_LABELS = ["<blank>", "<pad>", "</s>", "<unk>", *"aienoutsrmklgdhybpwcvjzf", "'", "q", "x"]

SIZES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                 conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4),
    "mms-300m": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                     conv_dim=(512,) * 7, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16),
}


def random_model(size: str = "tiny", *, seed: int = 0):  # -> Wav2Vec2ForCTC
    """A random-weight `Wav2Vec2ForCTC` of `size` ("tiny" or "mms-300m") over MMS's vocabulary, in eval mode."""
    import torch
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    config = Wav2Vec2Config(
        vocab_size=len(MMS_LABELS), pad_token_id=MMS_LABELS.index("<pad>"), feat_extract_norm="layer",
        do_stable_layer_norm=True, conv_bias=True, **SIZES[size],
    )
    torch.manual_seed(seed)
    return Wav2Vec2ForCTC(config).eval()


def save_random_aligner(directory: str | Path, size: str = "tiny", *, seed: int = 0) -> Path:
    """Save a random-weight model with its tokenizer and feature extractor, loadable by
    `CTCAligner.from_pretrained(directory)` as a hub model would be."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    random_model(size, seed=seed).save_pretrained(path)
    (path / "vocab.json").write_text(json.dumps({label: i for i, label in enumerate(MMS_LABELS)}))
    Wav2Vec2CTCTokenizer(str(path / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                         word_delimiter_token="|").save_pretrained(path)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, do_normalize=True,
                             return_attention_mask=True).save_pretrained(path)
    return path
