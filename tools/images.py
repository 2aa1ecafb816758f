"""Build the images and run them without a Docker engine (issue 36): buildah, debootstrap, chroot.

`python -m tools.images build` makes, in a local buildah storage under .cache/images (never pushed):

1. a stand-in for the Dockerfiles' base image, `python:3.11-slim`, from Debian's packages: debootstrap's
   minimal bookworm, Debian's python3.11 (bookworm's Python; the official image builds CPython 3.11 from
   source into /usr/local) made the /usr/local interpreter by a venv there, so `python` and `pip` are where
   the official image has them, and pip installs into /usr/local. It is tagged with the exact names the
   Dockerfiles' `FROM` lines use, and labelled with the digest of what went into it: the next run reuses it.
2. the images of docker-compose-cpu.yaml's `build` sections (the API from Dockerfile, the CPU vLLM from
   docker/vllm-cpu.Dockerfile), with their context, Dockerfile, build args and image name as
   `docker-compose config` reads them, by `buildah bud --layers --isolation chroot --network host`: each
   step's layer is cached in that storage, keyed by buildah on the step and the files it copies.

Where the machine reaches the package index through a TLS proxy, or keeps the torch CPU wheel in a local folder
(download.pytorch.org unreachable), the build's RUN steps get the host's trust store and a pip.conf naming it
and the wheel folders, bind-mounted read-only for the duration of each RUN step (`buildah bud -v`): never part
of a layer (tests/images checks). The Dockerfiles stay free of BuildKit-only syntax (`RUN --mount=type=secret`),
so docker-compose v1's classic builder still builds them.

The images run with tools/images_run.py (the image's entry point, user, working directory and environment,
the compose file's environment and volumes, read-only root, tmpfs, no new privileges).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "images"
CPU_COMPOSE = "docker-compose-cpu.yaml"
DEFAULT_INDEX = "https://pypi.org/simple"

BASE_SUITE = "bookworm"  # the last Debian release with python3.11 (trixie has 3.13)
BASE_MIRROR = os.environ.get("TTS_IMAGES_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# libpython3.11-dev: the official image has CPython's headers (/usr/local/include/python3.11); torch.compile's C++
# kernels (the vLLM image's CPU graphs) include Python.h.
BASE_PACKAGES = ("python3.11", "python3.11-venv", "libpython3.11-dev", "ca-certificates", "netbase", "tzdata")
BASE_NAMES = ("python:3.11-slim",)  # the FROM names the stand-in answers to
BASE_ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PYTHON_VERSION": "3.11",
}
KEY_LABEL = "org.streamable-tts.standin-key"
# Run in the debootstrapped root: Debian's apt resolves python3.11-venv's dependencies (debootstrap alone cannot:
# python3.11-distutils is a virtual package), then /usr/local becomes the interpreter's prefix.
BASE_SETUP = f"""set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends {" ".join(BASE_PACKAGES)} >/dev/null
python3.11 -m venv /usr/local
ln -sf python3.11 /usr/local/bin/python
/usr/local/bin/python -m pip --version
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
"""


class ImageError(RuntimeError):
    """A build or a run failed: the message says which step, with the tool's own output."""


# --------------------------------------------------------------------------------------------- buildah


def storage_args(cache: Path = CACHE) -> list[str]:
    return ["--root", str(cache / "storage"), "--runroot", str(cache / "run"), "--storage-driver", "overlay"]


def buildah(*args: str, cache: Path = CACHE, check: bool = True, timeout: float = 600) -> str:
    """Run `buildah ARGS` on the cache's storage; its stdout, or ImageError with its stderr."""
    argv = ["nice", "-n", "10", "buildah", *storage_args(cache), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise ImageError(f"`buildah {' '.join(args[:3])} ...` failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout.strip()


def inspect_image(ref: str, cache: Path = CACHE) -> dict | None:
    """The image's buildah inspect record, or None if the storage has no such image."""
    out = buildah("inspect", "--type", "image", ref, cache=cache, check=False)
    return json.loads(out) if out.startswith("{") else None


def image_config(ref: str, cache: Path = CACHE) -> dict:
    """The image's Docker config: User, WorkingDir, Env, Entrypoint, Cmd, Labels, Healthcheck."""
    info = inspect_image(ref, cache)
    if info is None:
        raise ImageError(f"no image {ref} in {cache / 'storage'}: build it first (python -m tools.images build)")
    return (info.get("Docker") or {}).get("config") or info["OCIv1"]["config"]


def image_history(ref: str, cache: Path = CACHE) -> list[str]:
    info = inspect_image(ref, cache) or {}
    return [h.get("created_by", "") for h in (info.get("Docker") or {}).get("history", [])]


# --------------------------------------------------------------------------------------------- base stand-in


def base_key() -> str:
    """What goes into the stand-in: a new key (a change of suite, mirror, packages or setup) rebuilds it."""
    material = json.dumps([BASE_SUITE, BASE_MIRROR, BASE_PACKAGES, BASE_SETUP, BASE_ENV, BASE_NAMES])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def arg_defaults(dockerfile: Path) -> dict[str, str]:
    """Every `ARG NAME=default` of a Dockerfile."""
    found = {}
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            found[key] = value.strip('"')
    return found


def from_names(dockerfile: Path) -> list[str]:
    """The images a Dockerfile's FROM lines name, with its global ARG defaults substituted."""
    args: dict[str, str] = {}
    names = []
    for line in dockerfile.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0].upper() == "ARG" and "=" in words[1] and not names:
            key, _, value = words[1].partition("=")
            args[key] = value
        elif len(words) >= 2 and words[0].upper() == "FROM":
            names.append(re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[1]))
    return names


def ensure_base(cache: Path = CACHE, log=print) -> bool:
    """Build the stand-in unless the storage has one with this key; True when it was built now."""
    key = base_key()
    info = inspect_image(BASE_NAMES[0], cache)
    labels = ((info or {}).get("Docker") or {}).get("config", {}).get("Labels") or {}
    if labels.get(KEY_LABEL) == key:
        return False
    log(f"building the base stand-in {', '.join(BASE_NAMES)} (Debian {BASE_SUITE}, key {key})")
    ctr = buildah("from", "--name", f"standin-{key}", "scratch", cache=cache)
    try:
        root = Path(buildah("mount", ctr, cache=cache))
        _debootstrap(root)
        config = [f"--env={k}={v}" for k, v in BASE_ENV.items()]
        buildah("config", *config, "--cmd", '["python3"]', "--label", f"{KEY_LABEL}={key}", ctr, cache=cache)
        buildah("commit", "--format", "docker", "--rm", ctr, f"docker.io/library/{BASE_NAMES[0]}", cache=cache)
    except BaseException:
        buildah("rm", ctr, cache=cache, check=False)
        raise
    return True


def _debootstrap(root: Path) -> None:
    cmd = ["nice", "-n", "10", "debootstrap", "--variant=minbase", BASE_SUITE, str(root), BASE_MIRROR]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise ImageError(f"debootstrap failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    resolv = root / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)  # the setup's apt-get; emptied after, as images ship it
    try:
        proc = subprocess.run(["nice", "-n", "10", "chroot", str(root), "/bin/sh", "-c", BASE_SETUP],
                              capture_output=True, text=True, timeout=1800)  # fmt: skip
    finally:
        resolv.write_text("")
    if proc.returncode != 0:
        raise ImageError(
            f"the stand-in's setup failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}"
        )


# --------------------------------------------------------------------------------------------- compose builds


@dataclass
class BuildSpec:
    """One compose service's `build` section, as `docker-compose config` resolves it."""

    service: str
    context: Path
    dockerfile: Path
    image: str
    args: dict[str, str] = field(default_factory=dict)


def compose_config(compose_file: str = CPU_COMPOSE, env: dict[str, str] | None = None) -> dict:
    """`docker-compose -f FILE config`: the file as Compose reads it (interpolated, paths resolved)."""
    exe = shutil.which("docker-compose")
    if exe is None:
        raise ImageError("docker-compose is not installed (make system-deps installs it)")
    run_env = {**os.environ, **(env or {})}
    proc = subprocess.run([exe, "-f", str(REPO / compose_file), "config"], capture_output=True, text=True,
                          env=run_env, cwd=REPO, timeout=120)  # fmt: skip
    if proc.returncode != 0:
        raise ImageError(f"docker-compose config failed:\n{proc.stderr}")
    return yaml.safe_load(proc.stdout)


def build_specs(config: dict) -> dict[str, BuildSpec]:
    specs = {}
    for name, service in config["services"].items():
        build = service.get("build")
        if not build:
            continue
        context = Path(build["context"])
        specs[name] = BuildSpec(
            service=name,
            context=context,
            dockerfile=context / build.get("dockerfile", "Dockerfile"),
            image=service["image"],
            args={k: str(v) for k, v in (build.get("args") or {}).items()},
        )
    return specs


BUILD_MOUNT = "/run/host-pip"  # where the RUN steps see the host's trust store and wheel folders


def pip_settings() -> tuple[str, dict[str, str]]:
    """The host's pip trust store and wheel folders, as pip reads them here: a pip.conf for the RUN steps, and
    {host path: path in the RUN steps} for the files it names.

    Only what a build needs to reach the index from this machine: `cert` (a TLS proxy's authority) and local
    `find-links` folders (the torch CPU wheel where download.pytorch.org is unreachable)."""
    values: dict[str, list[str]] = {}
    for key in ("cert", "find-links"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_"))
        if not value:
            proc = subprocess.run([sys.executable, "-m", "pip", "config", "get", f"global.{key}"],
                                  capture_output=True, text=True)  # fmt: skip
            value = proc.stdout.strip() if proc.returncode == 0 else ""
        found = [p for p in value.split() if Path(p).exists()]
        if found:
            values[key] = found
    paths: dict[str, str] = {}
    lines = ["[global]"]
    for key, found in values.items():
        inside = [f"{BUILD_MOUNT}/{key}-{i}" for i in range(len(found))]
        paths |= dict(zip(found, inside, strict=True))
        lines.append(f"{key} = {' '.join(inside)}")
    return "\n".join(lines) + "\n", paths


def secret_mounts(cache: Path = CACHE) -> list[str]:
    """`buildah bud -v` arguments: the host's pip settings and what they name, read-only, RUN steps only."""
    conf, paths = pip_settings()
    if not paths:
        return []
    conf_file = cache / "build-settings" / "pip.conf"
    conf_file.parent.mkdir(parents=True, exist_ok=True)
    conf_file.write_text(conf)
    mounts = [f"{conf_file}:/etc/pip.conf:ro"]
    mounts += [f"{os.path.realpath(host)}:{inside}:ro" for host, inside in paths.items()]
    return [arg for mount in mounts for arg in ("-v", mount)]


def _resolves(url: str) -> bool:
    host = urlsplit(url).hostname
    try:
        return host is None or bool(socket.getaddrinfo(host, 443))
    except OSError:
        return False


def reachable_args(args: dict[str, str], log=print) -> dict[str, str]:
    """Overrides for the build args (the Dockerfile's defaults and the compose file's): an index URL whose host does not resolve here (download.pytorch.org on this machine)
    replaced by the index pip uses here: the torch CPU wheel then comes from the host's find-links folder (the
    same file), torch's own dependencies from that index. A user's build keeps the compose file's URL."""
    out = {}
    for key, value in args.items():
        if value.startswith(("http://", "https://")) and not _resolves(value):
            proc = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                                  capture_output=True, text=True)  # fmt: skip
            out[key] = os.environ.get("PIP_INDEX_URL") or proc.stdout.strip() or DEFAULT_INDEX
            log(f"build arg {key}={value}: its host does not resolve here, building with {key}={out[key]}")
    return out


def build(spec: BuildSpec, cache: Path = CACHE, tag: str | None = None, timeout: float = 3600, log=print) -> float:
    """Build one service's image as Compose would (its context, Dockerfile, args); the seconds it took."""
    missing = [name for name in from_names(spec.dockerfile) if name not in BASE_NAMES]
    if missing:
        raise ImageError(f"{spec.dockerfile} starts FROM {missing}: no stand-in for it (tools/images.py BASE_NAMES)")
    argv = ["nice", "-n", "10", "buildah", *storage_args(cache), "bud", "--layers", "--force-rm", "--pull=never",
            "--isolation", "chroot", "--network", "host", "--format", "docker",
            "-f", str(spec.dockerfile), "-t", tag or spec.image]  # fmt: skip
    args = spec.args | reachable_args(arg_defaults(spec.dockerfile) | spec.args, log)
    for key, value in args.items():
        argv += ["--build-arg", f"{key}={value}"]
    argv += [*secret_mounts(cache), str(spec.context)]
    log(f"building {tag or spec.image} ({spec.service}): {shlex.join(argv[10:])}")
    t0 = time.monotonic()
    logfile = cache / "logs" / f"{spec.service}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("w") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    if proc.returncode != 0:
        tail = "\n".join(logfile.read_text(errors="replace").splitlines()[-40:])
        raise ImageError(f"building {spec.image} from {spec.dockerfile.name} failed (exit {proc.returncode}):\n{tail}")
    return time.monotonic() - t0


def build_all(services: list[str] | None = None, cache: Path = CACHE, log=print) -> dict[str, float]:
    """The stand-in base, then each (or the named) build section of docker-compose-cpu.yaml; seconds each."""
    t0 = time.monotonic()
    ensure_base(cache, log)
    times = {"base": time.monotonic() - t0}
    for name, spec in build_specs(compose_config()).items():
        if services is None or name in services:
            times[name] = build(spec, cache, log=log)
    prune(cache)
    return times


def prune(cache: Path = CACHE, rounds: int = 8) -> None:
    """Drop the images no tag reaches any more (earlier builds, an earlier stand-in): each round removes the
    untagged images without children, which frees their parents for the next. The cached layers of the tagged
    images stay."""
    for _ in range(rounds):
        if not buildah("rmi", "--prune", cache=cache, check=False).strip():
            return


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.images", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="the stand-in base and docker-compose-cpu.yaml's images")
    b.add_argument("services", nargs="*", help="only these compose services (default: every build section)")
    sub.add_parser("images", help="list the images in the cache's storage")
    args = parser.parse_args(argv)
    if args.cmd == "images":
        print(buildah("images", cache=CACHE))
        return 0
    try:
        times = build_all(args.services or None)
    except ImageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(", ".join(f"{k} {v:.0f} s" for k, v in times.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
