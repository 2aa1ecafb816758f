"""The API image of docker-compose-cpu.yaml, built and run as the compose file says (issue 36).

Its own entry point, as its USER, in its WORKDIR, with its ENV and the compose file's environment, read-only root,
tmpfs and named volumes (tools/images_run.py), against the shared dev vLLM: it must become ready, answer the
README's curl example, save a voice into the voices volume, and exit cleanly on SIGTERM.

What differs from `docker compose -f docker-compose-cpu.yaml up`: no network namespace, so the server listens on
a port of this suite's range (PORT) instead of the image's 9091 behind the port mapping; TTS_API names the dev
vLLM instead of the tts-engine service; CODEC_MODEL and SEMANTIC_MODEL name the tiny offline codec, mounted
read-only (the compose file passes both through from .env; the image would download the real ones).
"""

from __future__ import annotations

import io
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from tools import images
from tools.images_run import Container, service_spec, wait_http

# the first test of a session builds every image (about 10 min from scratch on 2 cores): more than the default
pytestmark = pytest.mark.timeout(2400)

API_PORT = 9331
SERVICE = "tts-api"
CODEC = (images.REPO / ".cache" / "models" / "codec-tiny").resolve()
READY_TIMEOUT_S = 600.0  # the compose file's start_period (10 min): models load in the background


def readme_quick_start_curl(port: int) -> list[list[str]]:
    """The README's quick-start curl commands, addressed to `port`."""
    text = (images.REPO / "README.md").read_text()
    block = text.split("Then, from another shell:", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = block.replace("\\\n", " ").strip().splitlines()
    return [shlex.split(cmd.replace("localhost:9091", f"127.0.0.1:{port}")) for cmd in commands]


def wav_clip(seconds: float = 2.0, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)), rate, format="WAV")
    return buf.getvalue()


def readable_copy(source: Path, dest: Path) -> Path:
    """The tiny codec as a downloaded model would be: readable by the image's user (make models may leave a
    file private to root)."""
    shutil.copytree(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


@pytest.fixture
def api(built: dict, vllm_url: str, tmp_path: Path):
    shell_env = {"TTS_API": vllm_url, "CODEC_MODEL": "/models/codec-tiny",
                 "SEMANTIC_MODEL": "/models/codec-tiny/semantic", "CODEC_THREADS": "1"}  # fmt: skip
    spec = service_spec(images.compose_config(), SERVICE, shell_env, tmp_path / "volumes")
    assert spec.image == built[SERVICE].image
    spec.environment["PORT"] = str(API_PORT)  # the port mapping's stand-in (no network namespace)
    spec.binds["/models/codec-tiny"] = readable_copy(CODEC, tmp_path / "codec-tiny")
    with Container(spec, tmp_path / "api.log") as box:
        proc = box.start()
        url = f"http://127.0.0.1:{API_PORT}"

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/ready", timeout=3).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            wait_http(ready, READY_TIMEOUT_S, proc, "the API image", box.log_tail)
        except images.ImageError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield box, url, spec


def test_base_stand_in_answers_to_the_dockerfiles_from_names(built: dict) -> None:
    for spec in built.values():
        for name in images.from_names(spec.dockerfile):
            assert name in images.BASE_NAMES
            assert images.inspect_image(name) is not None, name


def test_build_settings_stay_out_of_the_layers(built: dict) -> None:
    """The host's pip.conf, trust store and wheel folder reach the RUN steps only: no layer holds a byte of them.
    (Debian bookworm's buildah 1.28 leaves the empty mount points behind: a 0-byte /etc/pip.conf, empty
    /run/host-pip entries; a later buildah removes them.)"""
    for spec in built.values():
        name = images.buildah("from", "--pull-never", spec.image)
        try:
            root = Path(images.buildah("mount", name))
            conf = root / "etc" / "pip.conf"
            assert not conf.exists() or conf.stat().st_size == 0, (spec.image, conf.read_text())
            mounted = root / images.BUILD_MOUNT.lstrip("/")
            leaked = [p for p in mounted.rglob("*") if p.is_file() and p.stat().st_size] if mounted.exists() else []
            assert leaked == [], (spec.image, leaked)
            assert not any(mounted.rglob("*.whl")), spec.image
        finally:
            images.buildah("rm", name, check=False)
    history = " ".join(h for spec in built.values() for h in images.image_history(spec.image))
    assert "pip.conf" not in history and images.BUILD_MOUNT not in history


def test_api_image_speaks_saves_a_voice_and_stops_cleanly(api, tmp_path: Path) -> None:
    box, url, spec = api
    config = box.config
    assert config["User"] == "app" and config["WorkingDir"] == "/home/app"

    # The README's quick start, word for word but the address.
    for argv in readme_quick_start_curl(API_PORT):
        res = subprocess.run(argv, cwd=tmp_path, capture_output=True, timeout=300)
        assert res.returncode == 0, (argv, res.stderr)
        if "/v1/audio/speaker" in argv[-1]:
            assert b"jenny" in res.stdout
    audio, rate = sf.read(tmp_path / "out.wav")
    assert rate == 24000 and len(audio) > 0

    # A saved voice lands in the voices volume, written by the image's user.
    files = {"audio": ("clip.wav", wav_clip(), "audio/wav")}
    data = {"name": "image-voice", "text": "Saya suka makan nasi lemak.", "consent": "true"}
    saved = httpx.post(f"{url}/v1/audio/voices", files=files, data=data, timeout=120)
    assert saved.status_code == 201, saved.text
    spoken = httpx.post(f"{url}/v1/audio/speech", json={"input": "Terima kasih.", "voice": "image-voice"}, timeout=300)
    assert spoken.status_code == 200 and len(spoken.content) > 0, spoken.text
    db = spec.volumes["/home/app/data"] / "voices.db"
    assert db.stat().st_uid == 1000
    assert sqlite3.connect(db).execute("select count(*) from tts_voices").fetchone() == (1,)

    # `docker stop`: SIGTERM, SIGKILL after the compose file's stop_grace_period. uvicorn shuts down gracefully,
    # then re-raises the signal, so the status is SIGTERM's (Docker's exit code 143), or 0.
    status = box.stop(grace=45.0)
    log = box.log_tail(400)
    assert not box.killed and status in (0, -signal.SIGTERM), (status, log)
    assert "Application shutdown complete" in log and "service stopped" in log, log
    assert not re.search(r"Traceback|Read-only file system|Permission denied", log), log
