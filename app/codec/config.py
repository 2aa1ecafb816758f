"""NeuCodec sizes: one frozen dataclass, the official (full) size, the tiny test size, and inference of the
size from a state dict's shapes (the official checkpoint ships no config).

No torch import at module level beyond typing: `infer_config` only reads `.shape` of the tensors it is given.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.codec.interface import Geometry

CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class CodecConfig:
    """Every size of the NeuCodec decoder and encoder. Defaults are the published `neuphonic/neucodec`."""

    # decoder: FSQ indices -> fc_post_a -> Vocos backbone -> ISTFT head
    hidden_dim: int = 1024  # backbone width
    depth: int = 12  # transformer blocks
    heads: int = 16  # attention heads (head_dim = hidden_dim / heads, must be even)
    vq_dim: int = 2048  # FSQ projection width (quantizer project_in/out, fc_post_a input, fc_prior output)
    fsq_levels: tuple[int, ...] = (4,) * 8  # codebook of prod(levels) = 65,536 ids
    hop_length: int = 480  # samples per token at `sample_rate`
    n_fft: int = 1920  # ISTFT size (the reference uses 4 x hop)
    sample_rate: int = 24_000
    groupnorm_groups: int = 32
    # encoder (voice cloning only)
    encoder_sample_rate: int = 16_000
    encoder_ngf: int = 48  # first conv width of the acoustic encoder; doubles at every stride
    encoder_strides: tuple[int, ...] = (2, 2, 4, 4, 5)  # product = samples per token at 16 kHz (320)
    encoder_dilations: tuple[int, ...] = (1, 3, 9)
    encoder_dim: int = 1024  # acoustic embedding width
    semantic_dim: int = 1024  # w2v-bert-2.0 hidden size (SemanticEncoder input)
    semantic_code_dim: int = 1024  # SemanticEncoder width
    semantic_layer: int = 16  # w2v-bert hidden state used (hidden_states[16])
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # unknown config.json keys

    def __post_init__(self) -> None:
        if self.hidden_dim % self.heads:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not a multiple of heads {self.heads}")
        if (self.hidden_dim // self.heads) % 2:
            raise ValueError(f"head_dim {self.hidden_dim // self.heads} must be even (rotary pairs)")
        if self.hidden_dim % self.groupnorm_groups:
            raise ValueError(f"hidden_dim {self.hidden_dim} is not a multiple of {self.groupnorm_groups} groups")
        if self.n_fft % self.hop_length or self.n_fft < 2 * self.hop_length:
            raise ValueError(f"n_fft {self.n_fft} must be a multiple (>= 2) of hop_length {self.hop_length}")
        if self.sample_rate % self.hop_length:
            raise ValueError(f"sample_rate {self.sample_rate} is not a multiple of hop_length {self.hop_length}")

    # --- derived -------------------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.heads

    @property
    def codebook_size(self) -> int:
        size = 1
        for level in self.fsq_levels:
            size *= level
        return size

    @property
    def geometry(self) -> Geometry:
        return Geometry(self.sample_rate, self.hop_length)

    @property
    def encoder_hop(self) -> int:
        """Samples per token at `encoder_sample_rate` (320)."""
        hop = 1
        for stride in self.encoder_strides:
            hop *= stride
        return hop

    # --- sizes ---------------------------------------------------------------------------------------
    @classmethod
    def full(cls) -> CodecConfig:
        """The published `neuphonic/neucodec` size."""
        return cls()

    @classmethod
    def tiny(cls) -> CodecConfig:
        """A fast size for tests and the dev stack; still 24 kHz, hop 480, n_fft 1920 and 65,536 codes."""
        return cls(
            hidden_dim=128,
            depth=2,
            heads=4,
            vq_dim=64,
            encoder_ngf=8,
            encoder_dim=64,
            semantic_dim=32,
            semantic_code_dim=64,
        )

    @classmethod
    def named(cls, size: str) -> CodecConfig:
        sizes = {"full": cls.full, "tiny": cls.tiny}
        if size not in sizes:
            raise ValueError(f"unknown codec size {size!r}; allowed: {sorted(sizes)}")
        return sizes[size]()

    # --- json ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: CodecConfig | None = None) -> CodecConfig:
        """`base` (default: full size) updated with the known keys of `data`; unknown keys go to `extra`."""
        base = base or cls()
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names}
        extra = {k: v for k, v in data.items() if k not in names}
        return dataclasses.replace(base, **known, extra=extra)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / CONFIG_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path


def read_config_file(path: str | Path | None) -> dict[str, Any]:
    """The JSON object in `path`, or {} when there is no file."""
    if path is None or not Path(path).is_file():
        return {}
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return data


def infer_config(shapes: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> CodecConfig:
    """The config whose modules have the shapes of `shapes` (a state dict, or key -> torch.Size).

    Shapes decide every size they can (widths, depth, n_fft, number of FSQ levels, encoder strides...).
    What shapes cannot tell (heads, level values, dilation values, semantic layer) comes from `overrides`
    (a config.json beside the checkpoint), else the full-size default. Shape-derived values win over the
    file, which may be partial or stale (the hub's config.json of the mixin holds only sample_rate/hop).
    """
    overrides = dict(overrides or {})
    base = CodecConfig.from_dict(overrides) if overrides else CodecConfig()

    def shape(key: str) -> tuple[int, ...] | None:
        value = shapes.get(key)
        if value is None:
            return None
        return tuple(value.shape) if hasattr(value, "shape") else tuple(value)

    found: dict[str, Any] = {}
    if (s := shape("fc_post_a.weight")) is not None:
        found["hidden_dim"], found["vq_dim"] = s
    if (s := shape("generator.quantizer.project_out.weight")) is not None:
        found["vq_dim"] = s[0]
        if len(base.fsq_levels) != s[1]:
            found["fsq_levels"] = (4,) * s[1]
    if (s := shape("generator.head.out.weight")) is not None:
        found["n_fft"] = s[0] - 2
        if "hop_length" not in overrides:
            found["hop_length"] = (s[0] - 2) // 4
    blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"generator\.backbone\.transformers\.(\d+)\.", k))}
    if blocks:
        found["depth"] = max(blocks) + 1
    hidden = found.get("hidden_dim", base.hidden_dim)
    if "heads" not in overrides and hidden != CodecConfig().hidden_dim:
        # The default 16 heads give head_dim 64 at width 1024; keep head_dim 64 for other widths.
        found["heads"] = max(1, hidden // 64)

    if (s := shape("CodecEnc.conv_blocks.0.weight_v")) is not None:
        found["encoder_ngf"] = s[0]
        found |= _encoder_blocks(shapes, shape, base)
    if (s := shape("CodecEnc.conv_final_block.1.weight_v")) is not None:
        found["encoder_dim"] = s[0]
    if (s := shape("SemanticEncoder_module.initial_conv.weight")) is not None:
        found["semantic_code_dim"], found["semantic_dim"] = s[0], s[1]
    return dataclasses.replace(base, **found)


def _encoder_blocks(
    shapes: Mapping[str, Any], shape: Callable[[str], tuple[int, ...] | None], base: CodecConfig
) -> dict[str, Any]:
    """The encoder's strides (each block's final conv: kernel 2 x stride, its last WNConv1d) and, when the number
    of residual units differs from `base`'s, their dilations."""
    found: dict[str, Any] = {}
    strides = []
    i = 1
    while True:
        last = [k for k in shapes if k.startswith(f"CodecEnc.conv_blocks.{i}.block.") and k.endswith("weight_v")]
        if not last:
            break
        final = max(last, key=lambda k: int(k.split(".")[4]))
        strides.append(shape(final)[2] // 2)
        i += 1
    if strides:
        found["encoder_strides"] = tuple(strides)
        units = {
            int(k.split(".")[4])
            for k in shapes
            if k.startswith("CodecEnc.conv_blocks.1.block.") and k.split(".")[5] == "block"
        }
        if units and len(base.encoder_dilations) != len(units):
            found["encoder_dilations"] = tuple(3**i for i in range(len(units)))
    return found
