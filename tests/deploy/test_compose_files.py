"""The deployment files: every compose file validates and says what the README promises; every .env parses.

Validation runs `docker-compose -f FILE config` (Debian's docker-compose v1, installed by the Makefile), and
also Compose v2 when one is found (`docker compose` plugin, or the binary named by COMPOSE_V2_BIN). No
Docker engine is needed.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yaml", "docker-compose-cpu.yaml", "vllm.yaml", "stress-test.yaml")
ENV_FILES = (
    ".env_example",
    ".env_dynamicbatching",
    ".env_dynamicbatching_cudagraph",
    ".env_dynamicbatching_torchcompile",
    ".env_nodynamicbatching",
)
NETWORK = "tts-network"
DEFAULT_MODEL = "Scicom-intl/Multilingual-TTS-1.7B-Base"
# The API's variables that the compose files pass through: every name app/settings.py reads but HOST and PORT, which the
# image fixes (0.0.0.0:9091), plus the Hugging Face token.
FIXED_IN_IMAGE = {"HOST", "PORT"}
PASSED_THROUGH = set(Settings.env_names()) - FIXED_IN_IMAGE | {"HF_TOKEN"}
INSTALL_HINT = "install it with `apt-get install docker-compose` (the Makefile's deps target does)"

Compose = tuple[str, tuple[str, ...]]  # (label, argv prefix)


def _version(argv: tuple[str, ...]) -> str | None:
    try:
        proc = subprocess.run([*argv, "version", "--short"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip().lstrip("v") if proc.returncode == 0 and proc.stdout.strip() else None


@pytest.fixture(scope="module")
def implementations() -> list[Compose]:
    """docker-compose (required), then any Compose v2 found beside it."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail(f"docker-compose is not installed: {INSTALL_HINT}", pytrace=False)
    found: list[Compose] = []
    version = _version((binary,))
    if version is None:
        pytest.fail(f"`docker-compose version` failed: {INSTALL_HINT}", pytrace=False)
    found.append((f"docker-compose {version}", (binary,)))
    candidates = [(os.environ["COMPOSE_V2_BIN"],)] if os.environ.get("COMPOSE_V2_BIN") else []
    if shutil.which("docker"):
        candidates.append(("docker", "compose"))
    for argv in candidates:
        v2 = _version(argv)
        if v2 and v2.startswith("2") and not version.startswith("2"):
            found.append((f"compose {v2}", argv))
            break
    return found


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the deployment files in a directory with no .env."""
    for name in (*COMPOSE_FILES, *ENV_FILES, "Dockerfile", ".dockerignore"):
        shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "docker", tmp_path / "docker")
    return tmp_path


def config(compose: Compose, project: Path, name: str, extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """`compose -f NAME config` in `project`, with a bare environment; returns the resolved file."""
    label, argv = compose
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(project), **(extra_env or {})}
    proc = subprocess.run(
        [*argv, "-f", str(project / name), "config"], cwd=project, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"{label}: {name} is invalid:\n{proc.stderr}"
    assert "is not set" not in proc.stderr, f"{label}: {name} uses a variable with no default:\n{proc.stderr}"
    return yaml.safe_load(proc.stdout)


def ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host ip or "", published, target) from v1's short strings or v2's long form."""
    out = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            host = parts[0] if len(parts) == 3 else ""
            out.add((host, int(parts[-2]), int(parts[-1])))
    return out


def health_command(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def has_gpu(service: dict[str, Any]) -> bool:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return any("gpu" in device.get("capabilities", []) for device in devices)


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    env = service.get("environment", {})
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def vllm_argv(service: dict[str, Any], tmp_path: Path, **overrides: str) -> list[str]:
    """Run the service's `sh -c` command with a stand-in python that prints its arguments."""
    assert service["entrypoint"] == ["/bin/sh", "-c"]
    (script,) = service["command"]
    script = script.replace("$$", "$")  # compose's escape, as printed by `config`
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in ("python", "python3"):
        fake = bin_dir / name
        fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {k: v for k, v in environment(service).items() if v is not None}
    env.update(overrides)
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    proc = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def flag(argv: list[str], name: str) -> str:
    assert name in argv, f"{name} missing from {argv}"
    return argv[argv.index(name) + 1]


# --- the compose files ----------------------------------------------------------------------------


def test_docker_compose_is_installed(implementations: list[Compose]) -> None:
    assert implementations[0][0].startswith("docker-compose")


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_validates_without_dotenv_and_joins_the_shared_network(
    implementations: list[Compose], project: Path, name: str
) -> None:
    assert not (project / ".env").exists()
    for compose in implementations:
        doc = config(compose, project, name)
        assert doc["networks"][NETWORK]["name"] == NETWORK, "the network must be named, not project-scoped"
        assert not doc["networks"][NETWORK].get("external"), "no manual `docker network create`"
        for service_name, service in doc["services"].items():
            assert NETWORK in service["networks"], f"{service_name} is not on {NETWORK}"
            assert service.get("restart") in {"unless-stopped", "always", "no"}, service_name
            if service_name != "stress-test":
                assert "/health" in health_command(service), service_name


def test_gpu_api(implementations: list[Compose], project: Path) -> None:
    for compose in implementations:
        api = config(compose, project, "docker-compose.yaml")["services"]["tts-api"]
        assert api["build"]["dockerfile"] == "Dockerfile" and api["container_name"] == "tts-api"
        assert ("", 9091, 9091) in ports(api)
        assert "9091/health" in health_command(api)
        assert has_gpu(api)
        assert set(environment(api)) == PASSED_THROUGH
        assert any("/home/app/.cache" in str(volume) for volume in api["volumes"])


def test_gpu_vllm_arguments(implementations: list[Compose], project: Path, tmp_path: Path) -> None:
    for compose in implementations:
        doc = config(compose, project, "vllm.yaml")
        vllm = doc["services"]["tts-engine"]
        assert vllm["container_name"] == "tts-engine" and vllm["image"].startswith("vllm/vllm-openai:")
        assert has_gpu(vllm) and "9093/health" in health_command(vllm)
        assert ("127.0.0.1", 9093, 9093) in ports(vllm)
        assert any("/root/.cache/huggingface" in str(volume) for volume in vllm["volumes"])
        argv = vllm_argv(vllm, tmp_path)
        assert argv[:3] == ["-m", "vllm.entrypoints.openai.api_server", "--model"]
        assert flag(argv, "--model") == DEFAULT_MODEL
        assert flag(argv, "--dtype") == "bfloat16" and flag(argv, "--port") == "9093"
        assert flag(argv, "--max-model-len") == "4096" and flag(argv, "--served-model-name") == "TTS-model"
        assert flag(argv, "--gpu-memory-utilization") == "0.7"

        # The spec's command: STT_MODEL=... GPU_MEM_UTIL=... docker compose -f vllm.yaml up
        doc = config(compose, project, "vllm.yaml", {"STT_MODEL": "org/stt-alias", "GPU_MEM_UTIL": "0.5"})
        argv = vllm_argv(doc["services"]["tts-engine"], tmp_path)
        assert flag(argv, "--model") == "org/stt-alias" and flag(argv, "--gpu-memory-utilization") == "0.5"
        doc = config(compose, project, "vllm.yaml", {"STT_MODEL": "org/stt", "TTS_MODEL": "org/tts"})
        assert flag(vllm_argv(doc["services"]["tts-engine"], tmp_path), "--model") == "org/tts"


def test_the_gpu_stack_shares_one_gpu_as_the_k8s_unit_does(
    implementations: list[Compose], project: Path, tmp_path: Path
) -> None:
    """vLLM (vllm.yaml) and the API's codec (docker-compose.yaml) reserve the same GPU by default, and both read
    one GPU_MEM_UTIL: vLLM's share (by default the Kubernetes serving unit's, deploy/k8s/base/api.env), the
    codec engine's cap the rest (app/settings.py)."""
    unit = dict(
        line.split("=", 1) for line in (REPO / "deploy/k8s/base/api.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert float(unit["GPU_MEM_UTIL"]) == Settings(_env_file=None).gpu_mem_util  # type: ignore[call-arg]
    for compose in implementations:
        api = config(compose, project, "docker-compose.yaml")["services"]["tts-api"]
        vllm = config(compose, project, "vllm.yaml")["services"]["tts-engine"]
        devices = [[d["device_ids"] for d in s["deploy"]["resources"]["reservations"]["devices"]] for s in (api, vllm)]
        assert devices[0] == devices[1] == [["0"]]
        assert flag(vllm_argv(vllm, tmp_path), "--gpu-memory-utilization") == unit["GPU_MEM_UTIL"]
        # one value in .env (or the shell) reaches both
        env = {"GPU_MEM_UTIL": "0.6"}
        api = config(compose, project, "docker-compose.yaml", env)["services"]["tts-api"]
        vllm = config(compose, project, "vllm.yaml", env)["services"]["tts-engine"]
        assert environment(api)["GPU_MEM_UTIL"] == "0.6"
        assert flag(vllm_argv(vllm, tmp_path), "--gpu-memory-utilization") == "0.6"


def test_cpu_stack(implementations: list[Compose], project: Path, tmp_path: Path) -> None:
    for compose in implementations:
        services = config(compose, project, "docker-compose-cpu.yaml")["services"]
        api, vllm = services["tts-api"], services["tts-engine"]
        assert not has_gpu(api) and not has_gpu(vllm)
        assert api["build"]["args"]["TORCH_INDEX_URL"].endswith("/whl/cpu")
        assert api["depends_on"]["tts-engine"]["condition"] == "service_healthy"
        assert ("", 9091, 9091) in ports(api) and set(environment(api)) == PASSED_THROUGH
        # the codec's threads beside a CPU vLLM: the code's default, shipped explicitly (issue 32, item 4)
        assert environment(api)["CODEC_THREADS"] == str(Settings.model_fields["codec_threads"].default)
        assert vllm["container_name"] == "tts-engine" and vllm["build"]["dockerfile"] == "docker/vllm-cpu.Dockerfile"
        argv = vllm_argv(vllm, tmp_path)
        assert argv[:2] == ["-m", "vllm.entrypoints.openai.api_server"]
        assert flag(argv, "--model") == DEFAULT_MODEL and flag(argv, "--port") == "9093"
        assert flag(argv, "--max-model-len") == "4096" and flag(argv, "--served-model-name") == "TTS-model"
        assert flag(argv, "--dtype") == "bfloat16"


def test_stress_test_targets_the_api_container(implementations: list[Compose], project: Path) -> None:
    for compose in implementations:
        service = config(compose, project, "stress-test.yaml")["services"]["stress-test"]
        env = environment(service)
        assert env["LOCAL_TTS_API"] == "http://tts-api:9091" and env["ALLOW_REMOTE"] == "true"
        assert service["container_name"] == "stress-test" and service["restart"] == "no"
        assert service["build"]["dockerfile"] == "docker/stress-test.Dockerfile"
        env = environment(
            config(compose, project, "stress-test.yaml", {"CONCURRENCY": "1,4,8"})["services"]["stress-test"]
        )
        assert env["CONCURRENCY"] == "1,4,8"


@pytest.mark.parametrize("env_file", [".env_example", ".env_dynamicbatching_cudagraph"])
def test_dotenv_reaches_the_api_container_and_parses(
    implementations: list[Compose], project: Path, env_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compose's own .env parser must hand the API values that app/settings.py accepts."""
    shutil.copy2(project / env_file, project / ".env")
    expected = Settings(_env_file=str(REPO / env_file))  # type: ignore[call-arg]
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for compose in implementations:
        for name in ("docker-compose.yaml", "docker-compose-cpu.yaml"):
            api = config(compose, project, name)["services"]["tts-api"]
            values = {k.lower(): v for k, v in environment(api).items() if v is not None and k != "HF_TOKEN"}
            settings = Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]
            assert settings.model_dump(exclude={"host", "port"}) == expected.model_dump(exclude={"host", "port"})


# --- the .env files -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)


def load(name: str) -> Settings:
    return Settings(_env_file=str(REPO / name))  # type: ignore[call-arg]


def test_env_example_lists_every_variable_with_its_default(clean_env: None) -> None:
    lines = (REPO / ".env_example").read_text(encoding="utf-8").splitlines()
    assigned = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert sorted(assigned) == sorted(name.upper() for name in Settings.model_fields)
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert lines[i - 1].startswith("# "), f"{line.split('=')[0]} has no comment line above it"
    assert load(".env_example").model_dump() == Settings(_env_file=None).model_dump()  # type: ignore[call-arg]


def test_env_variants(clean_env: None) -> None:
    assert load(".env_dynamicbatching").dynamic_batching is True
    cuda = load(".env_dynamicbatching_cudagraph")
    assert cuda.dynamic_batching and cuda.cuda_graph_batch == [0.1, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 10.0]
    assert not cuda.torch_compile
    compiled = load(".env_dynamicbatching_torchcompile")
    assert compiled.dynamic_batching and compiled.torch_compile
    assert load(".env_nodynamicbatching").dynamic_batching is False
    for name in ENV_FILES:
        assert load(name).tts_api == "http://tts-engine:9093", name


def test_codec_threads_default_agrees_everywhere(clean_env: None) -> None:
    """CODEC_THREADS (issue 32, item 4): the code's default is .env_example's value, the README table's default
    and docker-compose-cpu.yaml's (checked resolved in test_cpu_stack, and here as written)."""
    default = Settings.model_fields["codec_threads"].default
    assert default == 1  # one thread: the engine does not fight a CPU vLLM for the cores (docs/performance.md, "CODEC_THREADS beside a CPU vLLM")
    assert load(".env_example").codec_threads == default
    row = next(line for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `CODEC_THREADS`"))
    assert row.split("|")[2].strip() == f"`{default}`", row
    compose = yaml.safe_load((REPO / "docker-compose-cpu.yaml").read_text())
    assert environment(compose["services"]["tts-api"])["CODEC_THREADS"] == f"${{CODEC_THREADS:-{default}}}"
