"""`/metrics` in multiprocess mode: two processes write, one exposition counts both."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.service.test_metrics import REPO, parse, total

MULTIPROC_SCRIPT = """
import multiprocessing as mp
from app.observability.metrics import CodecMetrics, ServiceMetrics, exposition

def child():
    m = ServiceMetrics()
    m.requests.labels("speech", "pcm", "completed").inc()
    m.ttfa.labels("speech").observe(0.3)
    m.in_flight.inc()
    CodecMetrics().batch_size.labels("decode").observe(4)

if __name__ == "__main__":
    mine = ServiceMetrics()
    mine.requests.labels("speech", "pcm", "completed").inc(2)
    mine.in_flight.inc()
    p = mp.get_context("spawn").Process(target=child)
    p.start()
    p.join()
    assert p.exitcode == 0
    print(exposition(mine.registry).decode())
"""


def test_multiprocess_mode_aggregates_every_process(tmp_path: Path) -> None:
    script = tmp_path / "two_processes.py"
    script.write_text(MULTIPROC_SCRIPT)
    data = tmp_path / "metrics"
    data.mkdir()
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "PROMETHEUS_MULTIPROC_DIR": str(data)}
    out = subprocess.run([sys.executable, str(script)], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    values, types = parse(out.stdout)
    assert total(values, "tts_requests_total", outcome="completed") == 3  # 2 here + 1 in the child
    assert total(values, "tts_time_to_first_audio_seconds_count") == 1
    assert total(values, "tts_codec_batch_size_sum", kind="decode") == 4  # written by the other process
    assert types["tts_requests_in_flight"] == "gauge"
    assert total(values, "tts_requests_in_flight") == 2  # livesum: the child's file stays until marked dead
    assert list(data.glob("*.db"))
