"""`tts-make-codec`: write a random-weight NeuCodec checkpoint in the official format.

    tts-make-codec --size tiny --out .cache/codec-tiny [--with-encoder] [--seed 0]

Layout of DIR:

- `pytorch_model.bin`: `torch.save` of a state dict with the official key names (decoder keys; with
  `--with-encoder` also the encoder keys `CodecEnc.*`, `SemanticEncoder_module.*`, `fc_prior.*`,
  `generator.quantizer.project_in.*`). No `semantic_model.*`, `fc_post_s.*` or `SemanticDecoder.*` keys.
- `config.json`: the `CodecConfig` fields, written only for non-default sizes (`--size tiny`); the full size
  has none, like the published checkpoint, and is inferred from the shapes.
- `semantic/` (with `--with-encoder`): a small random `Wav2Vec2BertModel` (width `semantic_dim`, 16 layers)
  and a `SeamlessM4TFeatureExtractor` config, written with `save_pretrained`; point `SEMANTIC_MODEL` there.

Load it like the real one: `CODEC_MODEL=DIR` (and `SEMANTIC_MODEL=DIR/semantic`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from app.codec.encoder import NeuCodecEncoder
from app.codec.pretrained import CHECKPOINT_FILE

logger = logging.getLogger(__name__)
SEMANTIC_DIR = "semantic"


def make_checkpoint(out: str | Path, size: str = "tiny", *, with_encoder: bool = False, seed: int = 0) -> Path:
    """Write a seeded random checkpoint of `size` ('tiny' or 'full') to `out`; returns the directory."""
    config = CodecConfig.named(size)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = NeuCodecDecoder(config).state_dict()
        if with_encoder:
            state.update(NeuCodecEncoder(config).state_dict())
    torch.save(state, out / CHECKPOINT_FILE)
    config_path = out / "config.json"
    if config != CodecConfig.full():
        config.save(out)
    elif config_path.exists():
        config_path.unlink()  # a stale tiny config would shadow the inferred full size
    if with_encoder:
        from app.codec.semantic import tiny_semantic_model

        semantic, feature_extractor = tiny_semantic_model(config.semantic_dim, config.semantic_layer, seed=seed)
        semantic.save_pretrained(out / SEMANTIC_DIR)
        feature_extractor.save_pretrained(out / SEMANTIC_DIR)
    logger.info(
        "wrote a random %s NeuCodec checkpoint (%d tensors%s) to %s",
        size,
        len(state),
        ", with encoder" if with_encoder else "",
        out,
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tts-make-codec", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--out", required=True, type=Path, help="directory to write")
    parser.add_argument("--with-encoder", action="store_true", help="add encoder weights and DIR/semantic")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    make_checkpoint(args.out, args.size, with_encoder=args.with_encoder, seed=args.seed)
    print(f"CODEC_MODEL={args.out}")
    if args.with_encoder:
        print(f"SEMANTIC_MODEL={args.out / SEMANTIC_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
