"""Loads the reference NeuCodec implementation (PyPI `neucodec==0.0.6`) for the parity tests.

The reference is test-only (see requirements-reference.txt) and cannot be imported as is here:
`import torchtune` fails (its `__init__` imports torchao, which does not import on this torch), and
`neucodec.model` imports `torchaudio`, which has no wheel for this torch. So, without modifying any
reference file:

- `torchtune/modules/position_embeddings.py` is loaded by file path and exposed through stub packages
  `torchtune` and `torchtune.modules` (only `RotaryPositionalEmbeddings` is needed);
- `torchaudio` gets an import-time stub (the tests hand tensors to the reference, never file paths);
- `NeuCodec` is built without downloads: `build_reference_codec` patches `Wav2Vec2BertModel.from_pretrained`
  and `AutoFeatureExtractor.from_pretrained` to return the small random models it is given.

`reference_or_skip()` skips the calling test when the reference package is not installed.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
import warnings
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
import torch
from torch import nn

_CACHE: dict[str, SimpleNamespace] = {}
STUB_NAMES = (
    "torchtune",
    "torchtune.modules",
    "torchtune.modules.position_embeddings",
    "torchaudio",
    "torchaudio.transforms",
)
REQUIRED = ("neucodec", "torchtune", "vector_quantize_pytorch", "einops", "einx")


def reference_available() -> bool:
    """True when the reference packages are installed (they are only found, not imported)."""
    return all(importlib.util.find_spec(name) is not None for name in REQUIRED)


def _load_rotary_module() -> types.ModuleType:
    """The real `torchtune.modules.position_embeddings`, loaded by path under stub parent packages."""
    name = "torchtune.modules.position_embeddings"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec("torchtune")  # finds the package without running its __init__
    assert spec is not None and spec.submodule_search_locations
    path = Path(next(iter(spec.submodule_search_locations))) / "modules" / "position_embeddings.py"
    if "torchtune" not in sys.modules:
        pkg = types.ModuleType("torchtune")
        pkg.__spec__ = importlib.machinery.ModuleSpec("torchtune", None, is_package=True)
        pkg.__path__ = []  # a namespace-like stub: nothing else of torchtune is importable through it
        sys.modules["torchtune"] = pkg
    if "torchtune.modules" not in sys.modules:
        sub = types.ModuleType("torchtune.modules")
        sub.__spec__ = importlib.machinery.ModuleSpec("torchtune.modules", None, is_package=True)
        sub.__path__ = []
        sys.modules["torchtune.modules"] = sub
        sys.modules["torchtune"].modules = sub
    file_spec = importlib.util.spec_from_file_location(name, path)
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    sys.modules[name] = module
    file_spec.loader.exec_module(module)
    sys.modules["torchtune.modules"].RotaryPositionalEmbeddings = module.RotaryPositionalEmbeddings
    sys.modules["torchtune.modules"].position_embeddings = module
    return module


def _stub_torchaudio() -> None:
    """Register an import-time stand-in for torchaudio unless the real one imports."""
    if "torchaudio" in sys.modules:
        return
    try:
        import torchaudio  # noqa: F401

        return
    except Exception:
        pass

    def _unavailable(*args: object, **kwargs: object) -> None:
        raise RuntimeError("torchaudio is stubbed in the codec tests: pass tensors, not paths")

    stub = types.ModuleType("torchaudio")
    transforms = types.ModuleType("torchaudio.transforms")
    stub.__spec__ = importlib.machinery.ModuleSpec("torchaudio", None)
    transforms.__spec__ = importlib.machinery.ModuleSpec("torchaudio.transforms", None)
    transforms.Resample = _unavailable
    stub.load = _unavailable
    stub.transforms = transforms
    sys.modules["torchaudio"] = stub
    sys.modules["torchaudio.transforms"] = transforms


def load_reference() -> SimpleNamespace:
    """Import the reference modules once; returns a namespace of them."""
    if "ref" in _CACHE:
        return _CACHE["ref"]
    # transformers decides at import which optional packages exist: import it before any stub is registered.
    import transformers  # noqa: F401
    from transformers import AutoFeatureExtractor, Wav2Vec2BertModel  # noqa: F401

    before = set(sys.modules)
    rotary = _load_rotary_module()
    _stub_torchaudio()
    stubs = [name for name in STUB_NAMES if name in sys.modules and name not in before]
    import neucodec.bs_roformer5 as bs_roformer5
    import neucodec.codec_decoder_vocos as vocos
    import neucodec.codec_encoder as codec_encoder
    import neucodec.model as model
    import neucodec.module as module

    # The reference modules hold what they imported; take the stubs out of sys.modules so nothing else in the
    # test session mistakes them for the real torchtune/torchaudio.
    for name in stubs:
        sys.modules.pop(name, None)

    ns = SimpleNamespace(
        RotaryPositionalEmbeddings=rotary.RotaryPositionalEmbeddings,
        bs_roformer5=bs_roformer5,
        vocos=vocos,
        codec_encoder=codec_encoder,
        module=module,
        model=model,
        NeuCodec=model.NeuCodec,
    )
    _CACHE["ref"] = ns
    return ns


def reference_or_skip() -> SimpleNamespace:
    """The reference namespace, or skip the test with the reason."""
    if not reference_available():
        pytest.skip("reference implementation not installed (pip install --no-deps -r requirements-reference.txt)")
    return load_reference()


def build_reference_codec(
    *,
    hidden_dim: int = 1024,
    depth: int = 12,
    heads: int = 16,
    vq_dim: int = 2048,
    hop_length: int = 480,
    encoder_ngf: int = 48,
    encoder_strides: tuple[int, ...] = (2, 2, 4, 4, 5),
    encoder_dim: int = 1024,
    semantic_code_dim: int = 1024,
    semantic_model: nn.Module | None = None,
    feature_extractor: object | None = None,
) -> nn.Module:
    """A reference `NeuCodec` with the given sizes, built through its own `__init__` (no download).

    `NeuCodec.__init__` always builds the full-size parts; when a size differs from the official one they
    are replaced by reference modules of that size (the same classes, constructor arguments only). The
    semantic model (a `Wav2Vec2BertModel`) and feature extractor are the given small ones.
    """
    ref = reference_or_skip()
    if semantic_model is None or feature_extractor is None:
        raise ValueError("build_reference_codec needs a semantic_model and a feature_extractor")
    full = (hidden_dim, depth, heads, vq_dim, encoder_ngf, tuple(encoder_strides), encoder_dim, semantic_code_dim) == (
        1024,
        12,
        16,
        2048,
        48,
        (2, 2, 4, 4, 5),
        1024,
        1024,
    )
    with ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=".*weight_norm.*is deprecated", category=FutureWarning)
        stack.enter_context(
            mock.patch.object(ref.model.Wav2Vec2BertModel, "from_pretrained", lambda *a, **k: semantic_model)
        )
        stack.enter_context(
            mock.patch.object(ref.model.AutoFeatureExtractor, "from_pretrained", lambda *a, **k: feature_extractor)
        )
        if full:
            codec = ref.NeuCodec(24_000, hop_length)
        else:
            # Skip the full-size __init__ (seconds of random init) and assemble the same attributes.
            codec = ref.NeuCodec.__new__(ref.NeuCodec)
            nn.Module.__init__(codec)
            codec.sample_rate = 24_000
            codec.hop_length = hop_length
            codec.semantic_model = ref.model.Wav2Vec2BertModel.from_pretrained("facebook/w2v-bert-2.0")
            codec.feature_extractor = ref.model.AutoFeatureExtractor.from_pretrained("facebook/w2v-bert-2.0")
            semantic_dim = semantic_model.config.hidden_size
            codec.SemanticEncoder_module = ref.module.SemanticEncoder(
                semantic_dim, semantic_code_dim, semantic_code_dim
            )
            codec.CodecEnc = ref.codec_encoder.CodecEncoder(
                ngf=encoder_ngf, up_ratios=list(encoder_strides), hidden_dim=encoder_dim
            )
            codec.generator = ref.vocos.CodecDecoderVocos(
                hidden_dim=hidden_dim,
                depth=depth,
                heads=heads,
                pos_meb_dim=hidden_dim // heads,
                hop_length=hop_length,
                vq_dim=vq_dim,
            )
            codec.fc_prior = nn.Linear(semantic_code_dim + encoder_dim, vq_dim)
            codec.fc_post_a = nn.Linear(vq_dim, hidden_dim)
    return codec.eval()


@torch.no_grad()
def perturb_parameters(module: nn.Module, scale: float = 0.05, seed: int = 0) -> None:
    """Add seeded noise to every parameter so that no weight keeps its constant init (ones/zeros).

    Buffers (filters, windows) are left alone. Parity then also proves that each weight lands in the
    right place (a swapped pair of GroupNorms initialised to ones would otherwise go unnoticed).
    """
    gen = torch.Generator().manual_seed(seed)
    for _, param in sorted(module.named_parameters()):
        param.add_(torch.randn(param.shape, generator=gen, dtype=param.dtype) * scale)
