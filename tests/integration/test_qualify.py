"""`tts-qualify` end to end on the tiny models: the real dev vLLM (the `vllm_url` fixture), the service in process
with the tiny codec and the real normalizer, a random-weight wav2vec2 CTC model as the operator's ASR (through
transformers' pipeline, as a real one loads), and a two-level sweep priced by tools/capacity.py's model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from app.qualify.cli import main
from app.qualify.render import CONTACT_SET, LINES
from app.settings import Settings
from tools.harness import serve

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))
    if not (path / "pytorch_model.bin").exists():
        from app.codec.checkpoint import make_checkpoint

        path = tmp_path_factory.mktemp("codec-tiny")
        make_checkpoint(path, size="tiny", with_encoder=True)
    return path


@pytest.fixture(scope="module")
def service_url(vllm_url: str, codec_dir: Path) -> Iterator[str]:
    settings = Settings(
        _env_file=None, tts_api=vllm_url, codec_model=str(codec_dir), semantic_model=str(codec_dir / "semantic"),
        dynamic_batching=True, max_batch_size=8, codec_threads=1,
    )  # fmt: skip
    with serve(settings) as url:
        yield url


def test_tts_qualify_end_to_end(
    service_url: str, vllm_url: str, codec_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.align.checkpoint import save_random_aligner

    asr_model = save_random_aligner(tmp_path / "asr")
    out = tmp_path / "qualify"
    rc = main([
        "--api", service_url, "--vllm", vllm_url, "--codec-model", str(codec_dir), "--out", str(out),
        "--max-tokens", "60", "--asr", str(asr_model), "--concurrency", "1,2", "--requests-per-level", "2",
        "--ttfa-target-s", "30", "--underrun-tolerance-s", "600", "--gpu-price-per-hour", "2.5", "--kv-cache-gib", "1", "--kv-dtype", "bfloat16",
    ])  # fmt: skip
    printed = capsys.readouterr().out
    assert rc == 0, printed[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] and report["model"]  # the model vLLM loaded, read from its /v1/models
    names = {c["name"] for c in report["checks"] if c["ok"]}
    assert {"speech tokens", "end of speech", "prompt format", "tokens per second", "vLLM generation"} <= names

    renders = {(r["item"], r["line"]): r for r in report["renders"]}
    assert set(renders) == {(i.id, line) for i in CONTACT_SET for line in LINES}
    for item in CONTACT_SET:
        wide, phone = renders[item.id, "24k"], renders[item.id, "8k-mulaw"]
        assert sf.info(out / wide["file"]).samplerate == 24_000
        assert (sf.info(out / phone["file"]).samplerate, sf.info(out / phone["file"]).subtype) == (8000, "ULAW")
        assert sf.info(out / phone["listen_file"]).subtype == "PCM_16"
        assert abs(wide["audio_s"] - phone["audio_s"]) < 0.01  # the same seeded speech on both lines
        assert 0 < wide["ttfa_s"] <= wide["total_s"] and wide["cer"] >= 0
    numbers = next(i for i in report["items"] if i["id"] == "numbers")
    assert "ringgit" in numbers["normalized"]  # the service's normalizer read it: the ASR's reference

    html = (out / "index.html").read_text()
    assert html.count("<audio ") == len(renders) and "您好" in html
    assert set(report["asr"]["cer"]) == set(LINES)
    assert set(report["asr"]["cer"]["24k"]) == {"ms", "en", "zh", "ms-en"}

    sweep = report["sweep"]  # targets no box misses (a busy 2-core box underruns at 2 streams): the mechanics, not the box
    assert [lv["concurrency"] for lv in sweep["levels"]] == [1, 2] and sweep["best"] == 2
    capacity = report["capacity"]
    assert capacity["measured_streams"] == 2 and capacity["measured_cost_per_call_hour"] == pytest.approx(2.5 / 4)
    assert capacity["estimate"]["kv_bytes_per_token"] == 2 * 2 * 64 * 2 * 2  # the tiny model in bfloat16
    assert "streams per GPU, measured: 2" in printed and "cost per call-hour" in printed


def test_the_backend_checks_alone_and_a_model_that_is_not_the_served_one(vllm_url: str) -> None:
    """`--steps backend` (no model files read: the end-of-speech id comes from vLLM's /tokenize), and model files
    whose speech ids differ from the served model's: a failure naming it."""
    from app.qualify.backend import check_backend

    checks, served = check_backend(vllm_url, "TTS-model", "husein")
    assert [c.name for c in checks if not c.ok] == [] and served is not None and served.max_model_len
    base = int(next(c for c in checks if c.name == "vLLM token ids").detail.split()[1].split("..")[0])
    checks, _ = check_backend(vllm_url, "TTS-model", "husein", local_base=base + 1)
    broken = {c.name: c.detail for c in checks if not c.ok}
    assert broken == {"vLLM token ids": f"vLLM's <|s_0|> is {base}, the model files' {base + 1}: another model?"}
    checks, served = check_backend(vllm_url, "no-such-model", "husein")
    assert served is None and not checks[0].ok and "serves ['TTS-model']" in checks[0].detail
