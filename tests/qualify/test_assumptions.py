"""tts-qualify's model checks on real tokenizers and configs (tools/tiny_lm.py's builder), no vLLM: the tiny dev
model passes, and a model with a wrong speech-token range fails with the broken assumption named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.prompts import N_SPEECH_TOKENS, speech_token
from app.qualify import assumptions
from tools import tiny_lm

REPO = Path(__file__).resolve().parents[2]
CODEC = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("DEV_LM_DIR", REPO / ".cache/models/tiny-tts-lm"))
    return path if tiny_lm.is_built(path) else tiny_lm.build(tmp_path_factory.mktemp("lm") / "tiny-tts-lm")


@pytest.fixture(scope="module")
def short_range_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model built with 4,096 speech tokens instead of 65,536: a model the service cannot serve."""
    return tiny_lm.build(tmp_path_factory.mktemp("lm") / "short-range", speech_tokens=4096)


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if (CODEC / "pytorch_model.bin").exists():
        return CODEC
    from app.codec.checkpoint import make_checkpoint

    path = tmp_path_factory.mktemp("codec-tiny")
    make_checkpoint(path, size="tiny", with_encoder=False)
    return path


def test_the_dev_model_and_codec_meet_every_assumption(tiny_lm_dir: Path, codec_dir: Path) -> None:
    files = assumptions.load_model(str(tiny_lm_dir))
    checks = assumptions.check_tokenizer(files) + assumptions.check_codec(*assumptions.codec_geometry(str(codec_dir)))
    assert [c.name for c in checks if not c.ok] == []
    speech = next(c for c in checks if c.name == "speech tokens")
    base = files.tokenizer.convert_tokens_to_ids(speech_token(0))
    assert speech.detail == f"{N_SPEECH_TOKENS} tokens, ids {base}..{base + N_SPEECH_TOKENS - 1}"


def test_a_short_speech_token_range_fails_and_is_named(short_range_dir: Path) -> None:
    checks = assumptions.check_tokenizer(assumptions.load_model(str(short_range_dir)))
    broken = {c.name: c for c in assumptions.failed(checks)}
    assert set(broken) == {"speech tokens", "vocabulary"}  # the end of speech and the prompt format still hold
    assert "<|s_4096|> is missing (only 4096 speech tokens)" in broken["speech tokens"].detail
    assert "<|s_0|>..<|s_65535|>" in broken["speech tokens"].line()


def test_tts_qualify_exits_non_zero_naming_the_broken_assumption(short_range_dir: Path, codec_dir: Path,
                                                                  tmp_path: Path) -> None:  # fmt: skip
    """The command itself, on the model files alone (no vLLM, no service: `--steps model`)."""
    out = tmp_path / "q"
    proc = subprocess.run(
        [sys.executable, "-m", "app.qualify", "--model", str(short_range_dir), "--codec-model", str(codec_dir),
         "--steps", "model", "--api", "http://127.0.0.1:9", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "breaks what the service assumes" in proc.stderr
    assert "[FAIL] speech tokens: <|s_4096|> is missing" in proc.stderr
    assert (out / "report.json").is_file() and "FAILED" in (out / "index.html").read_text()


def test_non_contiguous_speech_ids_are_found() -> None:
    from tokenizers import AddedToken

    tokenizer = tiny_lm.build_tokenizer(speech_tokens=10)
    assert assumptions.speech_range(tokenizer, 10).ok
    tokenizer.add_tokens([AddedToken("<|other|>", special=False, normalized=False)])
    tokenizer.add_tokens([AddedToken(speech_token(i), special=False, normalized=False) for i in range(10, 20)])
    check = assumptions.speech_range(tokenizer, 20)
    assert not check.ok and "<|s_10|> is id" in check.detail and "not contiguous" in check.detail


def test_codec_geometry_against_the_service() -> None:
    assert all(c.ok for c in assumptions.check_codec(24_000, 480, 65_536))
    broken = {c.name: c.detail for c in assumptions.check_codec(16_000, 320, 4_096) if not c.ok}
    assert broken == {"codec codebook": "4096 codes", "sample rate": "16000 Hz"}  # 16000 / 320 is still 50
    assert not assumptions.check_codec(24_000, 320, 65_536)[1].ok  # 75 tokens a second


def test_a_model_that_never_ends_on_im_end_fails() -> None:
    """vLLM stops on the tokenizer's and the generation config's end of sequence: <|im_end|> must be one."""
    from types import SimpleNamespace

    tokenizer = tiny_lm.build_tokenizer(speech_tokens=10)
    config = SimpleNamespace(vocab_size=len(tokenizer))
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert assumptions.end_of_speech(assumptions.ModelFiles(tokenizer, config, (im_end,))).ok
    tokenizer.eos_token = "<|im_start|>"
    other = tokenizer.convert_tokens_to_ids("<|im_start|>")
    check = assumptions.end_of_speech(assumptions.ModelFiles(tokenizer, config, (other,)))
    assert not check.ok and f"<|im_end|> is id {im_end}; end-of-sequence ids [{other}]" == check.detail
