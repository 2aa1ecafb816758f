"""Debian's haproxy on loopback in front of several `tts-api` front-ends, as a load balancer runs in production:
health checks on `/ready` (a draining front-end leaves at once), new connections to the least busy server, and
a request that a front-end refused with 503 (its drain, `shutting_down`) or whose connection failed sent again to
another (L7 retries; the request is buffered first, and ours are small). WebSockets pass through as tunnels.

Used by the rolling-restart test (tests/process/test_rolling_restart.py) and the chaos run's replicas mode.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx

STATS = "/haproxy-stats"
INSTALL_HINT = "haproxy is not installed: `apt-get install haproxy` (the Makefile's system-deps target does)"


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or next((p for p in ("/usr/sbin/haproxy",) if Path(p).exists()), None)


def config(port: int, servers: Sequence[str], *, check_ms: int = 400, forwardfor: bool = False) -> str:
    """haproxy's configuration: `port` on loopback in front of `servers` (host:port each); `forwardfor`: the
    client's address in `X-Forwarded-For`, as an ingress sends it."""
    lines = [
        "global",
        "  maxconn 4096",
        "defaults",
        "  mode http",
        "  timeout connect 2s",
        "  timeout client 120s",
        "  timeout server 120s",
        "  timeout tunnel 300s",  # a WebSocket
        "  timeout http-request 10s",
        "  timeout check 3s",  # a slow /ready on a busy box is not a down server (the default is `inter`)
        "  option http-buffer-request",  # the whole request in hand, so that it can be sent again
        "  retries 3",
        "  option redispatch 1",  # a retry goes to another server
        "  retry-on conn-failure empty-response 503",
        "frontend api",
        f"  bind 127.0.0.1:{port}",
        f"  stats uri {STATS}",  # the servers' states, for `servers_up`
        *(["  option forwardfor"] if forwardfor else []),
        "  default_backend front_ends",
        "backend front_ends",
        "  balance leastconn",
        "  option httpchk GET /ready",
        "  http-check expect status 200",
        # out after 3 failed checks in a row (a draining front-end: within 3 x check_ms of its SIGTERM, inside its
        # DRAIN_GRACE_SECONDS), back after 2 good ones
        f"  default-server inter {check_ms}ms fall 3 rise 2",
    ]
    lines += [f"  server fe{i} {address} check" for i, address in enumerate(servers)]
    return "\n".join(lines) + "\n"


@contextmanager
def haproxy(port: int, servers: Sequence[str], *, check_ms: int = 400, forwardfor: bool = False) -> Iterator[str]:
    """haproxy on 127.0.0.1:`port` in front of `servers`; yields its URL once it answers. Stopped at the end."""
    binary = haproxy_binary()
    if binary is None:
        raise RuntimeError(INSTALL_HINT)
    with tempfile.TemporaryDirectory(prefix="haproxy-") as tmp:
        cfg = Path(tmp) / "haproxy.cfg"
        cfg.write_text(config(port, servers, check_ms=check_ms, forwardfor=forwardfor))
        subprocess.run([binary, "-c", "-q", "-f", str(cfg)], check=True)
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(f"{url}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"haproxy did not start on port {port}") from None
                    time.sleep(0.05)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def servers_up(url: str) -> int:
    """How many front-ends the haproxy at `url` sends requests to now (its stats page)."""
    rows = httpx.get(f"{url}{STATS};csv", timeout=5).text.splitlines()
    header = rows[0].lstrip("# ").split(",")
    status, name = header.index("status"), header.index("svname")
    return sum(1 for row in rows[1:] if row.split(",")[name].startswith("fe") and row.split(",")[status] == "UP")
