"""Loading NeuCodec weights: a hub id or local directory -> eval-mode decoder (and encoder).

The published checkpoint is one `pytorch_model.bin`, the state dict of `neucodec.NeuCodec` with its own key
names, and no size config (the mixin's `config.json`, when present, holds only `sample_rate`/`hop_length`).
Key groups (see `classify_key`):

- decoder: `fc_post_a.*`, `generator.quantizer.project_out.*`, `generator.backbone.*`, `generator.head.*`
- encoder: `CodecEnc.*`, `SemanticEncoder_module.*`, `fc_prior.*`, `generator.quantizer.project_in.*`
- semantic: `semantic_model.*` (w2v-bert weights, when the file has them; they override `SEMANTIC_MODEL`'s, as the
  reference's `load_state_dict(strict=False)` does)
- ignored: keys containing `fc_post_s` or `SemanticDecoder` (training-only heads the reference drops too)

Sizes come from the tensor shapes (`app.codec.config.infer_config`), refined by a `config.json` beside the
weights for what shapes cannot tell (test checkpoints of non-default size write one). Decode-only loading
memory-maps the file and never touches the encoder tensors. Modules are built on the meta device and take the
loaded tensors as they are (no random init of ~190M parameters).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from app.codec.config import CONFIG_FILE, CodecConfig, infer_config, read_config_file
from app.codec.decoder import NeuCodecDecoder
from app.codec.encoder import NeuCodecEncoder
from app.codec.precision import apply_precision

logger = logging.getLogger(__name__)

CHECKPOINT_FILE = "pytorch_model.bin"
DECODER_PREFIXES = ("fc_post_a.", "generator.quantizer.project_out.", "generator.backbone.", "generator.head.")
ENCODER_PREFIXES = ("CodecEnc.", "SemanticEncoder_module.", "fc_prior.", "generator.quantizer.project_in.")
SEMANTIC_PREFIX = "semantic_model."
IGNORED_KEY_PARTS = ("fc_post_s", "SemanticDecoder")
# Deterministic buffers a checkpoint may lack; rebuilt when absent.
OPTIONAL_KEYS = ("generator.head.istft.window",)


@dataclass(frozen=True)
class CheckpointFiles:
    """Where the weights (and the optional config.json) of a codec are on disk."""

    weights: Path
    config: Path | None


def classify_key(key: str) -> str:
    """'decoder', 'encoder', 'semantic', 'ignored' or 'unexpected'."""
    if any(part in key for part in IGNORED_KEY_PARTS):
        return "ignored"
    if key.startswith(DECODER_PREFIXES):
        return "decoder"
    if key.startswith(ENCODER_PREFIXES):
        return "encoder"
    if key.startswith(SEMANTIC_PREFIX):
        return "semantic"
    return "unexpected"


def resolve_checkpoint(model: str) -> CheckpointFiles:
    """Local directory (or .bin file) as is; anything else is a hub id fetched with `hf_hub_download`."""
    path = Path(model).expanduser()
    if path.is_dir():
        weights = path / CHECKPOINT_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"CODEC_MODEL directory {path} has no {CHECKPOINT_FILE}")
        config = path / CONFIG_FILE
        return CheckpointFiles(weights, config if config.is_file() else None)
    if path.is_file():
        config = path.with_name(CONFIG_FILE)
        return CheckpointFiles(path, config if config.is_file() else None)
    if model.startswith((".", "/", "~")) or model.count("/") != 1:
        raise FileNotFoundError(f"CODEC_MODEL {model!r} is neither a local directory nor a hub id like 'org/name'")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    logger.info("codec: downloading %s/%s from the hub (cached after the first time)", model, CHECKPOINT_FILE)
    weights = Path(hf_hub_download(repo_id=model, filename=CHECKPOINT_FILE))
    try:
        config: Path | None = Path(hf_hub_download(repo_id=model, filename=CONFIG_FILE))
    except EntryNotFoundError:
        config = None
    return CheckpointFiles(weights, config)


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """`torch.load` of the weights, memory-mapped when the file allows it (tensors are read on first use)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:  # legacy (non-zip) serialisation cannot be memory-mapped
        logger.debug("codec: mmap load failed (%s); reading %s fully", exc, path)
        return torch.load(path, map_location="cpu", weights_only=True)


def cast_parameters(module: nn.Module, dtype: torch.dtype) -> nn.Module:
    """Cast floating parameters to `dtype`; buffers (ISTFT window, rotations, filters) stay float32."""
    for param in module.parameters():
        if param.is_floating_point() and param.dtype != dtype:
            param.data = param.data.to(dtype)
    return module


def _fill(
    module: nn.Module, state: dict[str, Tensor], keys: list[str], *, skip: Callable[[str], bool] = lambda k: False
) -> None:
    """Load `keys` of `state` into a meta-built `module` (assign); every other own key must be optional."""
    own = {k for k in module.state_dict() if not skip(k)}
    missing = sorted(own - set(keys) - set(OPTIONAL_KEYS))
    if missing:
        raise ValueError(f"checkpoint lacks {len(missing)} {type(module).__name__} tensors, e.g. {missing[:5]}")
    wanted = {k: state[k] for k in keys if k in own}
    for key in OPTIONAL_KEYS:
        if key in own and key not in wanted:
            wanted[key] = torch.hann_window(module.config.n_fft)
    shapes = module.state_dict()
    wrong = [
        f"{k}: {tuple(v.shape)} vs {tuple(shapes[k].shape)}" for k, v in wanted.items() if v.shape != shapes[k].shape
    ]
    if wrong:
        raise ValueError(f"checkpoint shapes do not match the inferred config: {wrong[:5]}")
    module.load_state_dict(wanted, strict=False, assign=True)


def _finish(module: nn.Module, device: torch.device | str, dtype: torch.dtype) -> nn.Module:
    meta = [name for name, t in [*module.named_parameters(), *module.named_buffers()] if t.is_meta]
    if meta:
        raise RuntimeError(f"codec tensors left uninitialised after loading: {meta[:5]}")
    for buffer_name, buffer in module.named_buffers():  # loaded buffers may come in another dtype
        if buffer.is_floating_point() and buffer.dtype != torch.float32:
            owner, _, leaf = buffer_name.rpartition(".")
            module.get_submodule(owner).register_buffer(leaf, buffer.float())
    return cast_parameters(module.to(device), dtype).eval()


def load_codec(
    model: str,
    *,
    with_encoder: bool = False,
    semantic_model: str = "facebook/w2v-bert-2.0",
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[NeuCodecDecoder, NeuCodecEncoder | None]:
    """Decoder (parameters in `dtype`, but `app.codec.precision.FLOAT32_MODULES` in float32) and, when asked, encoder (float32) of `model`, both eval on `device`.

    `model` is a hub id (default `neuphonic/neucodec`) or a directory with `pytorch_model.bin`; the encoder's
    w2v-bert comes from `semantic_model` (hub id or directory), truncated to the layers NeuCodec reads.
    """
    start = time.perf_counter()
    files = resolve_checkpoint(model)
    size_mb = files.weights.stat().st_size / 2**20
    logger.info("codec: loading %s (%s, %.0f MiB)", model, files.weights, size_mb)
    state = read_state_dict(files.weights)
    groups: dict[str, list[str]] = {"decoder": [], "encoder": [], "semantic": [], "ignored": [], "unexpected": []}
    for key in state:
        groups[classify_key(key)].append(key)
    if groups["unexpected"]:
        logger.warning(
            "codec: %d unexpected tensors in the checkpoint are not used, e.g. %s",
            len(groups["unexpected"]),
            groups["unexpected"][:5],
        )
    shape_keys = groups["decoder"] + groups["encoder"]
    config = infer_config({k: state[k] for k in shape_keys}, read_config_file(files.config))
    logger.info(
        "codec: config width=%d depth=%d heads=%d vq_dim=%d hop=%d n_fft=%d levels=%s", config.hidden_dim,
        config.depth, config.heads, config.vq_dim, config.hop_length, config.n_fft, list(config.fsq_levels),
    )  # fmt: skip

    with torch.device("meta"):
        decoder = NeuCodecDecoder(config)
    _fill(decoder, state, groups["decoder"])
    decoder = apply_precision(_finish(decoder, device, torch.float32), dtype)  # float32 islands stay exact
    params = sum(p.numel() for p in decoder.parameters())
    logger.info(
        "codec: decoder ready: %d tensors, %.1fM parameters, %s on %s, %.1f s (skipped %d encoder, %d semantic,"
        " %d ignored tensors)",
        len(groups["decoder"]),
        params / 1e6,
        str(dtype).removeprefix("torch."),
        device,
        time.perf_counter() - start,
        0 if with_encoder else len(groups["encoder"]),
        0 if with_encoder else len(groups["semantic"]),
        len(groups["ignored"]),
    )
    if not with_encoder:
        return decoder, None
    if not groups["encoder"]:
        raise ValueError(f"{files.weights} has no encoder weights; set CODEC_LOAD_ENCODER=false to decode only")
    return decoder, _load_encoder(config, state, groups, semantic_model, device)


def _load_encoder(
    config: CodecConfig, state: dict[str, Tensor], groups: dict[str, list[str]], semantic_model: str,
    device: torch.device | str,
) -> NeuCodecEncoder:
    """The encoder (float32, eval on `device`) with its w2v-bert, the checkpoint's semantic tensors over it."""
    from app.codec.semantic import load_semantic_model

    start = time.perf_counter()
    logger.info("codec: loading the semantic model %s (first %d layers)", semantic_model, config.semantic_layer)
    w2v, feature_extractor = load_semantic_model(semantic_model, config.semantic_layer)
    with torch.device("meta"):
        encoder = NeuCodecEncoder(config)
    _fill(encoder, state, groups["encoder"])
    if groups["semantic"]:
        _override_semantic(w2v, state, groups["semantic"])
    encoder.attach_semantic_model(w2v, feature_extractor)
    encoder = _finish(encoder, device, torch.float32)
    logger.info(
        "codec: encoder ready: %d tensors, %.1fM parameters with the semantic model, float32 on %s, %.1f s",
        len(groups["encoder"]),
        sum(p.numel() for p in encoder.parameters()) / 1e6,
        device,
        time.perf_counter() - start,
    )
    return encoder


def _override_semantic(w2v: nn.Module, state: dict[str, Tensor], keys: list[str]) -> None:
    """Copy the checkpoint's `semantic_model.*` tensors into the (truncated) w2v-bert model."""
    own = w2v.state_dict()
    values = {k.removeprefix(SEMANTIC_PREFIX): state[k] for k in keys}
    used = {k: v for k, v in values.items() if k in own}
    wrong = [k for k, v in used.items() if v.shape != own[k].shape]
    if wrong:
        raise ValueError(f"checkpoint semantic_model tensors do not fit SEMANTIC_MODEL: {wrong[:5]}")
    w2v.load_state_dict(used, strict=False)
    logger.info("codec: %d semantic_model tensors from the checkpoint override SEMANTIC_MODEL's", len(used))
