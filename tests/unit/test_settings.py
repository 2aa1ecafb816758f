"""Settings: the spec's variables and defaults, parsing, and start-up failures that name the variable."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from app.env import Settings, SettingsError, load_settings
from tools.harness import free_port

REPO = Path(__file__).resolve().parents[2]

SPEC_DEFAULTS = {
    "TTS_API": "http://tts-engine:9093",
    "MODEL_NAME": "TTS-model",
    "DEFAULT_SPEAKER": "husein",
    "SPEAKERS": ["husein", "idayu", "jenny"],
    "DEFAULT_TEMPERATURE": 0.6,
    "DEFAULT_REPETITION_PENALTY": 1.15,
    "DEFAULT_MAX_TOKENS": 3072,
    "DEFAULT_PLAYBACK_SPEED": 1.5,
    "DEFAULT_PLAYBACK_OVERLAP_SPEED": 0.2,
    "DYNAMIC_BATCHING": False,
    "MICROSLEEP": 1e-4,
    "MAX_BATCH_SIZE": 16,
    "CUDA_GRAPH_BATCH": [],
    "TORCH_COMPILE": False,
    "DEBUG_AUDIO": False,
    "SENTRY_DSN": "",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def test_spec_defaults() -> None:
    s = Settings(_env_file=None)
    for name, default in SPEC_DEFAULTS.items():
        assert getattr(s, name.lower()) == default, name


def test_environment_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERS", "a, b ,c")
    monkeypatch.setenv("DEFAULT_SPEAKER", "b")
    monkeypatch.setenv("CUDA_GRAPH_BATCH", "[0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0]")
    monkeypatch.setenv("DYNAMIC_BATCHING", "true")
    monkeypatch.setenv("TTS_API", "http://localhost:9093/")
    s = load_settings(_env_file=None)
    assert s.speakers == ["a", "b", "c"]
    assert s.cuda_graph_buckets_tokens == [5, 10, 25, 50, 75, 100, 150, 500]
    assert s.dynamic_batching is True
    assert s.tts_api == "http://localhost:9093"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CUDA_GRAPH_BATCH", "oops"),
        ("CUDA_GRAPH_BATCH", "__import__('os').system('true')"),
        ("CUDA_GRAPH_BATCH", "[0, 1]"),
        ("MAX_BATCH_SIZE", "0"),
        ("MICROSLEEP", "-1"),
        ("DEFAULT_TEMPERATURE", "warm"),
        ("TTS_API", "tts-engine:9093"),
        ("SPEAKERS", " , "),
        ("CODEC_DTYPE", "int8"),
    ],
)
def test_bad_values_name_the_variable(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings(_env_file=None)


def test_default_speaker_must_be_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPEAKERS", "a,b")
    with pytest.raises(SettingsError, match="DEFAULT_SPEAKER"):
        load_settings(_env_file=None)


def run_tts_api(env: dict[str, str], tmp_path: Path, timeout: float) -> subprocess.CompletedProcess:
    """`tts-api` in a fresh interpreter with only `env` (no .env file)."""
    return subprocess.run(
        [sys.executable, "-m", "app.main", "--env-file", str(tmp_path / "none.env")],
        env={"PATH": "/usr/bin:/bin", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_setting_stops_tts_api_with_a_message(tmp_path: Path) -> None:
    proc = run_tts_api({"CUDA_GRAPH_BATCH": "oops", "MAX_BATCH_SIZE": "0"}, tmp_path, timeout=60)
    assert proc.returncode == 2
    assert "CUDA_GRAPH_BATCH" in proc.stderr and "MAX_BATCH_SIZE" in proc.stderr


def test_every_setting_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    example = (REPO / ".env_example").read_text()
    for name in Settings.model_fields:
        assert re.search(rf"`{name.upper()}`", readme), f"{name.upper()} missing from the README table"
        assert re.search(rf"^#?\s*{name.upper()}=", example, re.M), f"{name.upper()} missing from .env_example"


def test_import_is_light() -> None:
    code = "import sys, app.main, app.env; print('torch' in sys.modules, 'malaya' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False False", out.stderr


def test_failed_start_up_exits_1(tmp_path: Path) -> None:
    """A codec that cannot load is logged and stops the process with status 1 (models load after start)."""
    env = {
        "CODEC_MODEL": str(tmp_path / "no-such-codec"),
        "PORT": str(free_port()),
        "HOST": "127.0.0.1",
        "HOME": str(tmp_path),
    }
    proc = run_tts_api(env, tmp_path, timeout=180)
    assert proc.returncode == 1
    assert "start-up failed" in proc.stderr and "no-such-codec" in proc.stderr
