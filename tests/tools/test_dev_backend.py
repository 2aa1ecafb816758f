"""The dev backend's command line (no vLLM needed)."""

from pathlib import Path

from tools.vllm_server import vllm_command


def test_model_path_is_absolute(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    cmd = vllm_command(Path("python"), Path(".cache/models/tiny-tts-lm"), "127.0.0.1", 9093)
    model = cmd[cmd.index("--model") + 1]
    assert Path(model).is_absolute() and model == str(tmp_path / ".cache/models/tiny-tts-lm")
    assert cmd[cmd.index("--served-model-name") + 1] == "TTS-model"
    assert cmd[cmd.index("--port") + 1] == "9093"
