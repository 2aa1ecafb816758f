"""Test checkpoints and loading (issue points 2 and 7): `tts-make-codec` writes the official format and the
service loads it through the same path as the published weights."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from app.codec.checkpoint import main, make_checkpoint
from app.codec.config import CodecConfig, infer_config
from app.codec.decoder import NeuCodecDecoder
from app.codec.encoder import NeuCodecEncoder
from app.codec.pretrained import CHECKPOINT_FILE, load_codec, resolve_checkpoint
from app.codec.runtime import CodecRuntime
from app.settings import load_settings


def test_layout_and_keys(tiny_checkpoint: Path, tiny_config: CodecConfig) -> None:
    assert (tiny_checkpoint / CHECKPOINT_FILE).is_file()
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    assert CodecConfig.from_dict(config) == tiny_config
    assert (tiny_checkpoint / "semantic" / "config.json").is_file()
    assert (tiny_checkpoint / "semantic" / "preprocessor_config.json").is_file()
    state = torch.load(tiny_checkpoint / CHECKPOINT_FILE, weights_only=True)
    with torch.device("meta"):
        expected = set(NeuCodecDecoder(tiny_config).state_dict()) | set(NeuCodecEncoder(tiny_config).state_dict())
    assert set(state) == expected
    assert not any(k.startswith("semantic_model.") for k in state)


def test_cli_decoder_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size", "tiny", "--out", str(tmp_path / "c")]) == 0
    assert f"CODEC_MODEL={tmp_path / 'c'}" in capsys.readouterr().out
    assert not (tmp_path / "c" / "semantic").exists()
    state = torch.load(tmp_path / "c" / CHECKPOINT_FILE, weights_only=True)
    assert not any(k.startswith(("CodecEnc.", "fc_prior.", "SemanticEncoder_module.")) for k in state)


def test_from_settings_loads_decoder_and_encoder(tiny_checkpoint: Path) -> None:
    settings = load_settings(
        codec_model=str(tiny_checkpoint),
        semantic_model=str(tiny_checkpoint / "semantic"),
        codec_device="cpu",
        codec_load_encoder=True,
        _env_file=None,
    )
    runtime = CodecRuntime.from_settings(settings.engine)
    assert runtime.has_encoder and runtime.device == "cpu"
    assert not runtime.decoder.training and not runtime.encoder.training
    audio = runtime.decode([np.arange(7, dtype=np.int64)])[0]
    assert audio.shape == (7 * 480,) and audio.dtype == np.float32
    codes = runtime.encode([np.zeros(3_200, np.float32)])[0]
    assert codes.dtype == np.int64 and codes.shape[0] == 10


def test_decode_only_loading_skips_encoder(tiny_checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="app.codec"):
        decoder, encoder = load_codec(str(tiny_checkpoint), with_encoder=False)
    assert encoder is None
    assert not any(k.startswith(("CodecEnc.", "fc_prior.")) for k in decoder.state_dict())
    assert "generator.quantizer.project_in.weight" not in decoder.state_dict()
    text = caplog.text
    assert "decoder ready" in text and "skipped" in text and "encoder" in text
    assert "loading" in text


def test_loaded_weights_are_the_file_weights(tiny_checkpoint: Path) -> None:
    decoder, _ = load_codec(str(tiny_checkpoint))
    state = torch.load(tiny_checkpoint / CHECKPOINT_FILE, weights_only=True)
    for key, value in decoder.state_dict().items():
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)


def test_official_extras_ignored_and_missing_keys_rejected(
    tiny_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = torch.load(tiny_checkpoint / CHECKPOINT_FILE, weights_only=True)
    state["fc_post_s.weight"] = torch.zeros(4, 4)
    state["SemanticDecoder.layer.weight"] = torch.zeros(3)
    state["discriminator.weight"] = torch.zeros(2)
    del state["generator.head.istft.window"]  # a deterministic buffer: rebuilt when absent
    target = tmp_path / "official-like"
    target.mkdir()
    shutil.copy(tiny_checkpoint / "config.json", target / "config.json")
    torch.save(state, target / CHECKPOINT_FILE)
    with caplog.at_level(logging.INFO, logger="app.codec"):
        decoder, _ = load_codec(str(target))
    assert "1 unexpected tensors" in caplog.text and "2 ignored" in caplog.text
    torch.testing.assert_close(decoder.generator.head.istft.window, torch.hann_window(1920))

    del state["generator.backbone.embed.weight"]
    torch.save(state, target / CHECKPOINT_FILE)
    with pytest.raises(ValueError, match="lacks"):
        load_codec(str(target))


def test_dtype_setting(tiny_checkpoint: Path) -> None:
    decoder, _ = load_codec(str(tiny_checkpoint), dtype=torch.bfloat16)
    assert decoder.fc_post_a.weight.dtype == torch.bfloat16
    assert decoder.generator.head.istft.window.dtype == torch.float32
    reference, _ = load_codec(str(tiny_checkpoint))
    codes = torch.randint(0, 65_536, (1, 20))
    with torch.inference_mode():
        low, high = decoder(codes), reference(codes)
    assert low.dtype == torch.float32
    snr = 10 * torch.log10(high.square().sum() / (low - high).square().sum())
    assert snr > 10, f"bfloat16 decode too far from float32 (SNR {snr:.1f} dB)"


def test_infer_config_full_and_hub_mixin_config() -> None:
    with torch.device("meta"):
        state = {**NeuCodecDecoder().state_dict(), **NeuCodecEncoder().state_dict()}
    assert infer_config(state) == CodecConfig.full()
    assert infer_config(state, {"sample_rate": 24_000, "hop_length": 480}) == CodecConfig.full()
    tiny = CodecConfig.tiny()
    with torch.device("meta"):
        tiny_state = {**NeuCodecDecoder(tiny).state_dict(), **NeuCodecEncoder(tiny).state_dict()}
    assert infer_config(tiny_state, {"heads": 4}) == tiny  # only what shapes cannot tell is needed


def test_resolve_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no pytorch_model.bin"):
        resolve_checkpoint(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="neither"):
        resolve_checkpoint(str(tmp_path / "missing"))
    files = resolve_checkpoint(str(make_checkpoint(tmp_path / "x")))
    assert files.weights.name == CHECKPOINT_FILE and files.config is not None


def test_encoder_needs_encoder_weights(tmp_path: Path) -> None:
    path = make_checkpoint(tmp_path / "dec")
    with pytest.raises(ValueError, match="no encoder weights"):
        load_codec(str(path), with_encoder=True, semantic_model=str(path))


def test_hub_id_goes_through_hf_hub_download(tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hub path cannot reach the hub here: a stand-in `hf_hub_download` serves the files of a local dir."""
    import huggingface_hub
    from huggingface_hub.errors import EntryNotFoundError

    calls: list[tuple[str, str]] = []

    def fake_download(repo_id: str, filename: str, **kwargs: object) -> str:
        calls.append((repo_id, filename))
        path = tiny_checkpoint / filename
        if filename == "config.json" and repo_id == "neuphonic/no-config":
            raise EntryNotFoundError(f"{filename} not in {repo_id}")
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    files = resolve_checkpoint("neuphonic/neucodec")
    assert calls == [("neuphonic/neucodec", CHECKPOINT_FILE), ("neuphonic/neucodec", "config.json")]
    assert files.weights == tiny_checkpoint / CHECKPOINT_FILE and files.config is not None
    assert resolve_checkpoint("neuphonic/no-config").config is None
    decoder, _ = load_codec("neuphonic/neucodec")
    assert decoder.config == CodecConfig.tiny()


def test_decode_path_imports_neither_transformers_nor_hub(tiny_checkpoint: Path) -> None:
    """Decode-only loading and decoding from a local dir never import `transformers` (nor huggingface_hub)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from app.codec.runtime import CodecRuntime\n"
        "from app.settings import load_settings\n"
        f"s = load_settings(codec_model={str(tiny_checkpoint)!r}, codec_load_encoder=False, codec_device='cpu',"
        " _env_file=None)\n"
        "rt = CodecRuntime.from_settings(s.engine)\n"
        "rt.decode([np.arange(5)])\n"
        "bad = [m for m in ('transformers', 'huggingface_hub') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
