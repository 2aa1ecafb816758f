"""Chaos run: `tts-api` with two front-end workers under load and a CPU hog, while its parts are killed.

    python -m benchmarks.chaos [--backend vllm|fake] [--recovery-timeout 150] [--clients 4] [--max-requests 1000]
                               [--models .cache/models]

The vLLM backend is the dev backend's (tools.vllm_server: its venv is .venv-vllm or TTS_DEV_VLLM_VENV).

Everything runs on loopback, bounded in time and request count. The run starts the backend (the real vLLM dev
backend on the tiny model, or the fake vLLM), `tts-api` with API_WORKERS=2 on the tiny codec and a CPU hog on
every core; clients loop over streamed pcm, non-streamed wav, SSE and WebSocket requests. Then, one after the
other, each waiting for the service to be ready again: vLLM is killed (SIGKILL of its process group) and
restarted 3 s later, the codec engine is killed (its supervisor restarts it), one front-end worker is killed
(uvicorn starts another). It prints the requests attempted, completed, failed as expected (a 5xx or a broken
stream while a part is down or dying) and failed otherwise (must be 0), and how long each recovery took.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from websockets.sync.client import connect

REPO = Path(__file__).resolve().parents[1]
KINDS = ("pcm", "wav", "sse", "ws")
GRACE = 1.0  # a failure this long after a part is back still counts as its fault's
# a stream cut mid-body says nothing of its cause: it counts for whichever part was down
CUT = ("broken: RemoteProtocolError", "broken: ReadError", "broken: ConnectionClosed")
BACKEND_DOWN = ("backend_unavailable", "backend_error", "backend_timeout", *CUT)
ENGINE_DOWN = ("engine_unavailable", *CUT)


@dataclass
class Outcome:
    kind: str
    start: float
    end: float
    result: str  # "complete", "5xx CODE", "broken: ...", or anything else (unexpected)
    audio: int = 0


@dataclass
class Fault:
    name: str
    start: float
    causes: tuple[str, ...]  # what a request that failed because of it says (a part of its result)
    recovered: float | None = None  # /ready 200 again and a request completed
    expected: int = 0
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one request of each kind -----------------------------------------------------------------------------


def request(url: str, kind: str, n: int) -> tuple[str, int]:
    if kind == "ws":
        return request_ws(url, n)
    body: dict = {"input": f"Chaos request number {n}, spoken in full.", "response_format": "pcm"}
    if kind == "wav":
        body["response_format"] = "wav"
    if kind == "sse":
        body["stream_format"] = "sse"
    got, text = 0, b""
    try:
        with httpx.stream("POST", f"{url}/v1/audio/speech", json=body, timeout=60) as r:
            if r.status_code != 200:
                r.read()
                code = r.json().get("error", {}).get("code") if r.headers.get("content-type", "").startswith(
                    "application/json") else ""
                return f"{r.status_code} {code}", 0
            for piece in r.iter_bytes():
                got += len(piece)
                text += piece if kind == "sse" else b""
    except httpx.HTTPError as exc:
        return f"broken: {type(exc).__name__}", got
    if kind != "sse":
        return ("complete" if got > 44 else "empty"), got
    events = [json.loads(line[6:]) for line in text.decode().splitlines() if line.startswith("data: ")]
    audio = sum(len(base64.b64decode(e["audio"])) for e in events if e["type"] == "speech.audio.delta")
    end = events[-1]["type"] if events else "nothing"
    if end == "speech.audio.done":
        return "complete", audio
    if end == "error":
        return f"broken: sse error {events[-1]['error'].get('code')}", audio
    return f"sse {end}", audio


def request_ws(url: str, n: int) -> tuple[str, int]:
    got, last, errors = 0, "nothing", []
    try:
        with connect(url.replace("http://", "ws://") + "/v1/audio/speech/stream", open_timeout=30) as ws:
            ws.send(json.dumps({"type": "config"}))
            ws.send(json.dumps({"type": "text", "text": f"Chaos websocket number {n}, spoken in full."}))
            ws.send(json.dumps({"type": "close"}))
            for message in ws:
                if isinstance(message, bytes):
                    got += len(message)
                else:
                    event = json.loads(message)
                    if event["type"] == "error":  # a failed segment: the session goes on without its audio
                        errors.append(str(event["error"].get("code")))
                    last = event["type"]
            code = ws.close_code
    except Exception as exc:  # noqa: BLE001 - any transport failure of the socket is a broken stream
        return f"broken: {type(exc).__name__}", got
    if errors:
        return f"broken: ws error {','.join(errors)}", got
    if last == "done" and code == 1000:
        return "complete", got
    return (f"broken: ws close {code}" if code != 1000 else f"ws {last} {code}"), got


# -- the parts --------------------------------------------------------------------------------------------


class Backend:
    def __init__(self, kind: str, port: int, models: Path) -> None:
        self.kind, self.port, self.models = kind, port, models
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None

    def start(self) -> float:
        t0 = time.monotonic()
        if self.kind == "fake":
            cmd = [sys.executable, "-m", "tools.fake_vllm", "--port", str(self.port), "--rate", "100",
                   "--n-tokens", "150"]
            self.proc = subprocess.Popen(cmd, cwd=REPO, start_new_session=True, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
            self.pid = self.proc.pid
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{self.url}/v1/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        else:
            from tools import vllm_server

            backend = vllm_server.start(self.models / "tiny-tts-lm", port=self.port)
            self.pid = backend.pid
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        if self.kind == "vllm":
            from tools import vllm_server

            vllm_server.stop(self.port)
        else:
            self.kill()


class Service:
    """`tts-api` with API_WORKERS=2; the engine's pid is read from its log."""

    def __init__(self, backend_url: str, port: int, models: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.mkstemp(prefix="chaos-tts-api-", suffix=".log")[1])
        env = dict(os.environ, PYTHONPATH=str(REPO), TTS_API=backend_url, PORT=str(port), HOST="127.0.0.1",
                   API_WORKERS="2", CODEC_MODEL=str(models / "codec-tiny"), CODEC_LOAD_ENCODER="false",
                   CODEC_THREADS="1", TEXT_NORMALIZER="none", LOG_LEVEL="info", SHUTDOWN_GRACE_SECONDS="5",
                   MODEL_NAME="TTS-model")
        self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--env-file", "/dev/null"], cwd=REPO, env=env,
                                     stdout=self.log.open("w"), stderr=subprocess.STDOUT)

    def engine_pid(self) -> int | None:
        pids = re.findall(r"serving on \S+ \(pid (\d+)\)", self.log.read_text(errors="replace"))
        return int(pids[-1]) if pids else None

    def workers(self) -> list[int]:
        engine = self.engine_pid()
        pids = []
        for child in psutil.Process(self.proc.pid).children():
            with contextlib.suppress(psutil.Error):  # a zombie (just killed, not reaped yet) is no worker
                if child.pid != engine and "resource_tracker" not in " ".join(child.cmdline()):
                    pids.append(child.pid)
        return pids

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"tts-api exited with {self.proc.returncode}; its log: {self.log}")
        try:
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait(predicate, timeout: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# -- the run ----------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--backend", choices=("vllm", "fake"), default="vllm")
    parser.add_argument("--recovery-timeout", type=float, default=150.0, help="longest wait for a part to come back")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=1000)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--models", type=Path, default=REPO / ".cache/models", help="codec-tiny and tiny-tts-lm")
    args = parser.parse_args(argv)

    backend = Backend(args.backend, free_port(), args.models.resolve())
    print(f"backend {args.backend} up in {backend.start():.1f} s at {backend.url}", flush=True)
    service = Service(backend.url, free_port(), args.models.resolve())
    hogs: list[subprocess.Popen] = []
    outcomes: list[Outcome] = []
    faults: list[Fault] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        if not wait(service.ready, 240):
            print(f"tts-api did not get ready; its log: {service.log}")
            return 2
        t_zero = time.monotonic()
        limit = args.recovery_timeout
        code = f"import time\nend = time.monotonic() + {60 + 3 * limit}\nwhile time.monotonic() < end: pass"
        hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(args.hogs)]

        def client(i: int) -> None:
            n = 0
            while not stop.is_set():
                with lock:
                    if len(outcomes) >= args.max_requests:
                        return
                kind = KINDS[(i + n) % len(KINDS)]
                t0 = time.monotonic()
                result, audio = request(service.url, kind, n)
                with lock:
                    outcomes.append(Outcome(kind, t0, time.monotonic(), result, audio))
                n += 1
                if not result.startswith("complete"):
                    time.sleep(1.0)  # as a client would before it retries

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
        for t in threads:
            t.start()

        def recovered_after(fault: Fault, timeout: float) -> None:
            def back() -> bool:
                if not service.ready():
                    return False
                return request(service.url, "pcm", -1)[0] == "complete"

            if wait(back, timeout):
                fault.recovered = time.monotonic()

        time.sleep(15)  # warm, under load
        # 1. vLLM killed under load, restarted 3 s later
        fault = Fault("vLLM killed, restarted after 3 s", time.monotonic(), BACKEND_DOWN)
        faults.append(fault)
        backend.kill()
        time.sleep(3)
        fault.notes.append(f"vLLM start {backend.start():.1f} s")
        recovered_after(fault, limit)
        time.sleep(10)
        # 2. the codec engine killed
        pid = service.engine_pid()
        fault = Fault("codec engine killed", time.monotonic(), ENGINE_DOWN)
        faults.append(fault)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait(lambda: service.engine_pid() not in (None, pid), limit)
        recovered_after(fault, limit)
        time.sleep(10)
        # 3. one of the two front-end workers killed
        workers = service.workers()
        fault = Fault("one of 2 front-end workers killed", time.monotonic(), ("broken:",))
        faults.append(fault)
        os.kill(workers[0], signal.SIGKILL)
        wait(lambda: len(service.workers()) >= 2 and workers[0] not in service.workers(), limit)
        recovered_after(fault, limit)
        fault.notes.append(f"workers {workers} -> {service.workers()}")
        time.sleep(5)
    finally:
        stop.set()
        for proc in hogs:
            proc.kill()
        time.sleep(0.5)
        service.stop()
        backend.stop()

    for t in threads:
        t.join(70)
    silences = [float(x) for x in re.findall(r"no heartbeat for ([\d.]+) s", service.log.read_text(errors="replace"))]
    code = report(outcomes, faults, t_zero, args)
    print(f"front-ends saw the engine silent past ENGINE_HEARTBEAT_TIMEOUT {len(silences)} times"
          + (f", longest {max(silences):.1f} s (its log: {service.log})" if silences else ""))
    return code


def report(outcomes: list[Outcome], faults: list[Fault], t_zero: float, args: argparse.Namespace) -> int:
    def blamed(o: Outcome) -> Fault | None:
        for f in faults:
            until = (f.recovered or float("inf")) + GRACE
            if o.start <= until and o.end >= f.start and any(c in o.result for c in f.causes):
                return f
        return None

    completed = [o for o in outcomes if o.result == "complete"]
    expected: list[Outcome] = []
    otherwise: list[Outcome] = []
    # the tiny random-weight LM sometimes ends at once: a 502 `no_audio` by design, nothing to do with liveness
    silent = [o for o in outcomes if "no_audio" in o.result]
    for o in outcomes:
        if o.result == "complete" or o in silent:
            continue
        f = blamed(o)
        if f is not None and o.result.startswith(("broken", "5")) and any(c in o.result for c in f.causes):
            f.expected += 1
            expected.append(o)
        else:
            otherwise.append(o)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"\nchaos run: backend {args.backend}, {args.clients} clients, {args.hogs} CPU hogs, "
          f"{os.cpu_count()} cores ({cpu})\n")
    print("| fault | at (s) | recovered after (s) | failed as expected | notes |")
    print("|---|---:|---:|---:|---|")
    for f in faults:
        rec = f"{f.recovered - f.start:.1f}" if f.recovered else "not in time"
        print(f"| {f.name} | {f.start - t_zero:.1f} | {rec} | {f.expected} | {'; '.join(f.notes)} |")
    kinds = {k: sum(1 for o in completed if o.kind == k) for k in KINDS}
    print(f"\nrequests attempted {len(outcomes)}, completed {len(completed)} ({kinds}), "
          f"failed as expected {len(expected)}, failed otherwise {len(otherwise)}, "
          f"no speech from the model (502 no_audio) {len(silent)}")
    causes: dict[str, int] = {}
    for o in expected:
        causes[f"{o.kind} {o.result}"] = causes.get(f"{o.kind} {o.result}", 0) + 1
    print("expected failures:", ", ".join(f"{k} x{v}" for k, v in sorted(causes.items())) or "none")
    for o in otherwise:
        print(f"  FAILED OTHERWISE: {o.kind} at {o.start - t_zero:.1f}-{o.end - t_zero:.1f} s: {o.result}")
    return 1 if otherwise or not all(f.recovered for f in faults) else 0


if __name__ == "__main__":
    raise SystemExit(main())
