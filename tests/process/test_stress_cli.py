"""`python -m stress_test` as a user runs it, against the stub app on a loopback port."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from tests.unit.test_stress_report import REPO, stub_app
from tools.harness import wait_until


@contextmanager
def serve_stub() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(stub_app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), 30, "the stub server to start")
    assert server.started, "stub server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_cli_smoke_run_against_a_loopback_stub(tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    with serve_stub() as url:
        env = {k: v for k, v in os.environ.items() if k not in {"LOCAL_TTS_API", "CONCURRENCY", "ALLOW_REMOTE"}}
        env.update(
            {"LOCAL_TTS_API": url, "CONCURRENCY": "1,4", "TOTAL_REQUESTS": "8", "WARMUP_COUNT": "1", "WAIT_READY": "10"}
        )
        proc = subprocess.run(
            [sys.executable, "-m", "stress_test", "--json-out", str(out)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines.count("=== SLO LATENCY REPORT ===") == 2 and lines.count("Total Requests: 8") == 2
    assert lines.count("Avg Audio Duration: 0.500s") == 2 and "Failed: 0 (timeouts: 0)" in lines
    assert "=== CONCURRENCY SWEEP ===" in lines
    doc = json.loads(out.read_text())
    assert [level["summary"]["concurrency"] for level in doc["levels"]] == [1, 4]
    assert all(r["ok"] and r["ttfa"] is not None for level in doc["levels"] for r in level["requests"])
