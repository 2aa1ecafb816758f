"""Run an image of tools/images.py's storage as a compose service would, without a Docker engine.

`buildah mount` gives the image's root filesystem (in a throwaway container); a new mount namespace
(`unshare --mount`) then mounts what Docker would: /proc, /dev with a /dev/shm of the service's `shm_size`, /sys,
the service's `tmpfs` entries, its named volumes (host folders, filled from the image on first use, as Docker
fills an empty named volume) and any extra bind mounts; the root is remounted read-only when the service says
`read_only`. The image's entry point then runs under chroot as the image's USER (uid and gid from the image's
/etc/passwd: no capabilities, `no-new-privileges`), in its WORKDIR, with exactly the image's ENV plus the
service's `environment` (entries without a value taken from the given variables, as Compose takes them from the
shell). Every step replaces the process (exec), so the Popen's pid is the entry point's: SIGTERM reaches it as
`docker stop` would.

What an engine would add and this cannot: cgroup limits, the port mapping (with `network="host"` the server
listens on the host's ports, so the caller picks a free PORT; with `network="private"` it gets its own network
namespace with a loopback only, reached through `exec_in_netns`), DNS names of other services.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tools.images import CACHE, ImageError, buildah, image_config

SHM_DEFAULT = "64m"  # Docker's default /dev/shm
ERROR_LINE = re.compile(r"Error\b|error:|fatal error")


@dataclass
class RunSpec:
    """What to run: the image and the compose service's settings that apply without an engine."""

    image: str
    environment: dict[str, str] = field(default_factory=dict)
    volumes: dict[str, Path] = field(default_factory=dict)  # container path -> host folder (a named volume)
    binds: dict[str, Path] = field(default_factory=dict)  # container path -> host path, read-only
    tmpfs: tuple[str, ...] = ()
    read_only: bool = False
    cap_drop_all: bool = False  # Compose's `cap_drop: [ALL]`
    no_new_privileges: bool = False  # Compose's `security_opt: [no-new-privileges:true]`
    shm_size: str = SHM_DEFAULT
    network: str = "host"  # or "private": its own network namespace, loopback only
    command: list[str] | None = None  # replaces the image's CMD (Compose's `command`)
    entrypoint: list[str] | None = None  # replaces the image's ENTRYPOINT (Compose's `entrypoint`)


def service_spec(config: dict, service: str, shell_env: dict[str, str], volume_root: Path) -> RunSpec:
    """A RunSpec from `docker-compose config`'s record of a service: its image, environment (a null value: the
    shell's, when set there), named volumes (as folders under volume_root), tmpfs, read_only, shm_size,
    entrypoint and command."""
    svc = config["services"][service]
    env = {}
    for key, value in (svc.get("environment") or {}).items():
        if value is None:
            if key in shell_env:
                env[key] = shell_env[key]
        else:
            env[key] = _unescape(value)
    volumes = {}
    for vol in svc.get("volumes") or []:
        source, target = (vol["source"], vol["target"]) if isinstance(vol, dict) else vol.split(":")[:2]
        volumes[target] = volume_root / source
    tmpfs = svc.get("tmpfs") or ()
    return RunSpec(
        image=svc["image"],
        environment=env,
        volumes=volumes,
        tmpfs=tuple([tmpfs] if isinstance(tmpfs, str) else tmpfs),
        read_only=bool(svc.get("read_only")),
        cap_drop_all="ALL" in (svc.get("cap_drop") or ()),
        no_new_privileges="no-new-privileges:true" in (svc.get("security_opt") or ()),
        shm_size=str(svc.get("shm_size") or SHM_DEFAULT),
        command=_unescape(svc.get("command")),
        entrypoint=_unescape(svc.get("entrypoint")),
    )


def _unescape(value):
    """`docker-compose config` writes a literal `$` as `$$` (its output stays a compose file): the value the
    container gets has `$`."""
    if value is None:
        return None
    if isinstance(value, list):
        return [_unescape(v) for v in value]
    return str(value).replace("$$", "$")


def size_bytes(size: str | int) -> int:
    """A Compose size ("64m", "4gb", 1024) in bytes, for a tmpfs `size=`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kmg]?)b?", str(size).strip().lower())
    if match is None:
        raise ImageError(f"not a size: {size!r}")
    return int(float(match.group(1)) * 1024 ** " kmg".index(match.group(2) or " "))


def _ids(root: Path, user: str) -> tuple[int, int]:
    """USER as uid and gid, looked up in the image's /etc/passwd (numbers pass through)."""
    name, _, group = (user or "0").partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    for line in (root / "etc" / "passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == name or (uid is not None and parts[2] == str(uid)):
            uid, gid = int(parts[2]), int(parts[3])
            break
    if uid is None:
        raise ImageError(f"the image's USER {user!r} is not in its /etc/passwd")
    if group:
        gid = int(group) if group.isdigit() else _group_id(root, group)
    return uid, gid if gid is not None else uid


def _group_id(root: Path, group: str) -> int:
    for line in (root / "etc" / "group").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == group:
            return int(parts[2])
    raise ImageError(f"group {group!r} is not in the image's /etc/group")


def _argv(config: dict, spec: RunSpec) -> list[str]:
    entry = spec.entrypoint if spec.entrypoint is not None else (config.get("Entrypoint") or [])
    if spec.command is not None:
        cmd = spec.command
    elif spec.entrypoint is not None:
        cmd = []  # Compose: an entrypoint given in the file drops the image's CMD
    else:
        cmd = config.get("Cmd") or []
    argv = [*entry, *([cmd] if isinstance(cmd, str) else cmd)]
    if not argv:
        raise ImageError(f"{spec.image} has neither ENTRYPOINT nor CMD")
    return argv


def _fill_volume(root: Path, target: str, host: Path) -> None:
    """Docker fills a new named volume with what the image has at its mount point (owners and modes kept)."""
    fresh = not host.exists() or not any(host.iterdir())
    host.mkdir(parents=True, exist_ok=True)
    inside = root / target.lstrip("/")
    if fresh and inside.is_dir():
        subprocess.run(["cp", "-a", f"{inside}/.", str(host)], check=True)
        st = inside.stat()
        os.chown(host, st.st_uid, st.st_gid)
        os.chmod(host, st.st_mode & 0o7777)


def mount_script(root: Path, spec: RunSpec) -> list[str]:
    """Shell lines, run in the new mount namespace, that give `root` the container's mounts."""
    r = shlex.quote(str(root))
    lines = ["set -e", f"mount --bind {r} {r}", f"mount -t proc proc {r}/proc", f"mount --rbind /dev {r}/dev",
             f"mount -t tmpfs -o nosuid,nodev,size={size_bytes(spec.shm_size)} shm {r}/dev/shm",
             f"mount --rbind /sys {r}/sys"]  # fmt: skip
    for target in spec.tmpfs:
        lines.append(f"mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs {r}{shlex.quote(target)}")
    for target, host in spec.volumes.items():
        lines.append(f"mount --bind {shlex.quote(str(host))} {r}{shlex.quote(target)}")
    for target, host in spec.binds.items():
        dest = f"{r}{shlex.quote(target)}"
        lines += [f"mount --bind {shlex.quote(str(host))} {dest}", f"mount -o remount,bind,ro {dest}"]
    if spec.read_only:
        lines.append(f"mount -o remount,bind,ro {r}")
    if spec.network == "private":
        lines.append("ip link set lo up")
    return lines


class Container:
    """One run of an image: `start()` returns the entry point's Popen; `remove()` unmounts and deletes."""

    def __init__(self, spec: RunSpec, log_path: Path, cache: Path = CACHE) -> None:
        self.spec, self.log_path, self.cache = spec, log_path, cache
        self.config = image_config(spec.image, cache)
        self.name: str | None = None
        self.root: Path | None = None
        self.proc: subprocess.Popen | None = None
        self.killed = False

    def start(self) -> subprocess.Popen:
        self.name = buildah("from", "--pull-never", self.spec.image, cache=self.cache)
        self.root = Path(buildah("mount", self.name, cache=self.cache))
        uid, gid = _ids(self.root, self.config.get("User") or "root")
        for target, host in self.spec.volumes.items():
            _fill_volume(self.root, target, host)
        for target in (*self.spec.tmpfs, *self.spec.volumes, *self.spec.binds):
            (self.root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)  # mount points, as Docker makes them
        env = [f"{k}={v}" for k, v in self._environment().items()]
        workdir = self.config.get("WorkingDir") or "/"
        run = [*(["setpriv", "--no-new-privs"] if self.spec.no_new_privileges else []),
               "chroot", f"--userspec={uid}:{gid}", f"--groups={gid}", str(self.root),
               *self._drop_caps(uid), "/usr/bin/env", "-i", "-C", workdir, *env, *_argv(self.config, self.spec)]  # fmt: skip
        script = "\n".join([*mount_script(self.root, self.spec), "exec " + shlex.join(run)])
        unshare = ["unshare", "--mount", "--propagation", "private"]
        if self.spec.network == "private":
            unshare.append("--net")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([*unshare, "/bin/sh", "-c", script], stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        return self.proc

    def _drop_caps(self, uid: int) -> list[str]:
        """`cap_drop: [ALL]`: a user other than root holds no capabilities once chroot switched to it; root's are
        dropped by the image's own setpriv (util-linux, in every Debian-based image) before the entry point."""
        if not self.spec.cap_drop_all or uid != 0:
            return []
        if not (self.root / "usr" / "bin" / "setpriv").exists():
            raise ImageError(f"{self.spec.image} runs as root with cap_drop ALL, and has no setpriv to drop them")
        return ["/usr/bin/setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]

    def _environment(self) -> dict[str, str]:
        env = dict(item.split("=", 1) for item in self.config.get("Env") or [])
        return env | self.spec.environment

    def stop(self, grace: float = 45.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds (Compose's stop_grace_period): the exit status, negative
        for a signal (`self.killed` says whether SIGKILL was needed)."""
        self.killed = False
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.killed = True
                os.killpg(self.proc.pid, signal.SIGKILL)
        return self.proc.wait(10)

    def exec_in_netns(self, argv: list[str], timeout: float = 10) -> subprocess.CompletedProcess:
        """Run a host command in the container's network namespace (network="private")."""
        assert self.proc is not None
        return subprocess.run(["nsenter", "--target", str(self.proc.pid), "--net", *argv], capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip

    def log_tail(self, lines: int = 40) -> str:
        """The log's last lines, after its first error lines (a server's root cause is often far above its end)."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        all_lines = text.splitlines()
        errors = [line for line in all_lines[:-lines] if ERROR_LINE.search(line)][:12]
        head = ["first error lines:", *errors, "...", "last lines:"] if errors else []
        return "\n".join([*head, *all_lines[-lines:]])

    def remove(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.name:
            buildah("umount", self.name, cache=self.cache, check=False)
            buildah("rm", self.name, cache=self.cache, check=False)
            self.name = None

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def wait_http(probe, timeout: float, proc: subprocess.Popen, what: str, log_tail) -> None:
    """Poll `probe()` (True when ready) until it answers, the process exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ImageError(f"{what} exited ({proc.returncode}) before it was ready:\n{log_tail()}")
        if probe():
            return
        time.sleep(1.0)
    raise ImageError(f"{what} not ready after {timeout:.0f} s:\n{log_tail()}")
