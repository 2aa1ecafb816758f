"""The CPU vLLM image of docker-compose-cpu.yaml, run as the compose file says, on the tiny offline model.

Its compose `entrypoint` and `command` (the shell line that expands TTS_MODEL, SERVED_MODEL_NAME, MAX_MODEL_LEN,
...) as root, in its own network namespace where it listens on the compose file's port 9093 (reached with
`nsenter`), with the compose environment interpolated by docker-compose from the variables a user would set:
TTS_MODEL names the tiny model (mounted read-only), VLLM_CPU_KVCACHE_SPACE=1 (GiB, this machine's memory).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools import images
from tools.images_run import Container, service_spec, wait_http

# the first test of a session builds every image (about 10 min from scratch on 2 cores): more than the default
pytestmark = pytest.mark.timeout(2400)

SERVICE = "tts-engine"
MODEL = (images.REPO / ".cache" / "models" / "tiny-tts-lm").resolve()
READY_TIMEOUT_S = 600.0


def test_vllm_image_serves_the_tiny_model(built: dict, tmp_path: Path) -> None:
    if not (MODEL / "config.json").is_file():
        pytest.fail(f"no tiny model at {MODEL}: `make models` builds it", pytrace=False)
    shell_env = {"TTS_MODEL": "/models/tiny-tts-lm", "VLLM_CPU_KVCACHE_SPACE": "1"}
    spec = service_spec(images.compose_config(env=shell_env), SERVICE, {}, tmp_path / "volumes")
    assert spec.image == built[SERVICE].image
    spec.binds["/models/tiny-tts-lm"] = MODEL
    spec.network = "private"
    with Container(spec, tmp_path / "vllm.log") as box:
        proc = box.start()
        models: list[str] = []

        def ready() -> bool:
            res = box.exec_in_netns(["curl", "-sf", "http://127.0.0.1:9093/v1/models"])
            if res.returncode == 0:
                models.extend(m["id"] for m in json.loads(res.stdout)["data"])
            return res.returncode == 0

        try:
            wait_http(ready, READY_TIMEOUT_S, proc, "the vLLM image", box.log_tail)
        except images.ImageError as exc:
            pytest.fail(str(exc), pytrace=False)
        assert models == ["TTS-model"]  # the compose file's SERVED_MODEL_NAME default
        status = box.stop(grace=60.0)
        # a clean stop: its own exit, or the SIGTERM it re-raised after shutting down (Docker's 143), never SIGKILL
        assert status in (0, -15) and not box.killed, box.log_tail(60)
