"""Chaos run, replicas mode (issue 32, item 5): two vLLM backends and two front-ends behind haproxy, under load
and a CPU hog, while one replica of each part after the other is killed, then both are rolled.

    python -m benchmarks.chaos_replicas [--backend vllm|fake] [--clients 4] [--recovery-timeout 240]
                                        [--base-port 9311] [--models .cache/models]

On loopback: vLLM dev backends (tools.vllm_server, the tiny random-weight LM; or the fake vLLM) on base-port and
base-port+1; two `tts-api` (API_WORKERS=1 each, its own codec engine on the tiny codec) on base-port+2 and +3,
each with both backends in `TTS_API` (failover with resume); Debian's haproxy on base-port+4 (tools/proxy.py:
/ready health checks, L7 retries of refused requests). Clients loop through haproxy over streamed pcm,
non-streamed wav, SSE and WebSocket requests (a failed one waits 1 s). A CPU hog on every core for the whole
run. Then, one after the other, each waiting until the part is back: each vLLM SIGKILLed (its process group)
and restarted 3 s later; the codec engine of one front-end SIGKILLed (its supervisor restarts it); each
front-end SIGKILLed (its process group, as a pod dies) and restarted; both front-ends rolled (SIGTERM, which
drains, then started again); both vLLMs rolled (SIGTERM, restart).

Prints a row per fault (when, how long until the part was back, requests broken and failed otherwise while it
was out) and the totals: attempted, completed, broken (a stream cut or ending in an error), failed otherwise
(any other failure), and apart: the tiny LM's 502 `no_audio` (the model, not a fault), and the streams that
were in flight on a front-end when it was SIGKILLed (no proxy can save a connection whose server process dies).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.chaos import KINDS, REPO, Backend, Outcome, free_port, request, wait
from tools.proxy import haproxy

SETTLE = 5.0  # seconds of load between one fault's recovery and the next fault


class Replica(Backend):
    """A vLLM dev backend (or the fake) that may take as long as the run allows to start on a starved box."""

    def __init__(self, kind: str, port: int, models: Path, start_timeout: float) -> None:
        super().__init__(kind, port, models)
        self.start_timeout = start_timeout

    def start(self) -> float:
        if self.kind == "fake":
            return super().start()
        from tools import vllm_server

        backend = vllm_server.start(self.models / "tiny-tts-lm", port=self.port, timeout=self.start_timeout)
        self.pid = backend.pid
        return backend.seconds


@dataclass
class Fault:
    name: str
    start: float
    recovered: float | None = None
    cut_at: float | None = None  # a front-end SIGKILLed at this moment: the streams on it end with it
    notes: list[str] = field(default_factory=list)


class FrontEnd:
    """One `tts-api` (API_WORKERS=1) in its own process group, on a fixed port, both backends in TTS_API."""

    def __init__(self, name: str, port: int, backends: list[str], models: Path) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.log = Path(tempfile.mkstemp(prefix=f"chaos-{name}-", suffix=".log")[1])
        self.env = dict(os.environ, PYTHONPATH=str(REPO), TTS_API=",".join(backends), PORT=str(port),
                        HOST="127.0.0.1", API_WORKERS="1", CODEC_MODEL=str(models / "codec-tiny"),
                        CODEC_LOAD_ENCODER="false", CODEC_THREADS="1", TEXT_NORMALIZER="none", LOG_LEVEL="info",
                        DRAIN_GRACE_SECONDS="3", SHUTDOWN_GRACE_SECONDS="30", MODEL_NAME="TTS-model")  # fmt: skip
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "app.cli", "--env-file", "/dev/null"], cwd=REPO,
                                         env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def engine_pid(self) -> int | None:
        pids = re.findall(r"serving on \S+ \(pid (\d+)\)", self.log.read_text(errors="replace"))
        return int(pids[-1]) if pids else None

    def kill(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def term(self) -> float:
        """SIGTERM (the drain), then the seconds it took to exit."""
        t0 = time.monotonic()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()
        return time.monotonic() - t0


def run_faults(
    backends: list[Backend], fronts: list[FrontEnd], limit: float, faults: list[Fault], *, restart_vllm: bool = True
) -> None:
    """The faults in turn, each appended to `faults` as it starts (a run cut short still reports those).
    `restart_vllm` False: no vLLM is restarted (where a vLLM start outlasts the run): the front-ends' faults
    first, then vLLM 1 SIGKILLed for good, vLLM 2 serving alone."""

    def fault(name: str, act, back) -> None:  # noqa: ANN001
        f = Fault(name, time.monotonic())
        faults.append(f)
        print(f"{time.strftime('%H:%M:%S')} {name}", flush=True)
        try:
            act(f)
        except Exception as exc:  # noqa: BLE001 - a part that does not come back is reported, the run goes on
            f.notes.append(f"failed: {exc!s:.120}")
        if wait(back, limit):
            f.recovered = time.monotonic()
        back_after = f"{f.recovered - f.start:.1f} s" if f.recovered else "not in time"
        print(f"{time.strftime('%H:%M:%S')}   back after {back_after}; {'; '.join(f.notes)}", flush=True)
        time.sleep(SETTLE)

    def backend_up(b: Backend):  # noqa: ANN202
        return lambda: _serves(b.url)

    for i, b in enumerate(backends if restart_vllm else []):
        def kill_backend(f: Fault, b: Backend = b) -> None:
            b.kill()
            time.sleep(3)
            f.notes.append(f"vLLM start {b.start():.1f} s")
        fault(f"vLLM {i + 1} of 2 killed (SIGKILL), restarted after 3 s", kill_backend, backend_up(b))
    fe = fronts[0]
    engine = fe.engine_pid()

    def kill_engine(f: Fault) -> None:
        if engine is not None:
            os.kill(engine, signal.SIGKILL)
    fault(f"the codec engine of {fe.name} killed (SIGKILL)", kill_engine,
          lambda: fe.engine_pid() not in (None, engine) and fe.ready())  # fmt: skip
    for fe in fronts:
        def kill_front(f: Fault, fe: FrontEnd = fe) -> None:
            f.cut_at = time.monotonic()
            fe.kill()
            fe.start()
        fault(f"{fe.name} of 2 killed (SIGKILL of its processes), restarted", kill_front, fe.ready)
    for fe in fronts:
        def roll_front(f: Fault, fe: FrontEnd = fe) -> None:
            f.notes.append(f"drained and exited in {fe.term():.1f} s")
            fe.start()
        fault(f"{fe.name} rolled (SIGTERM: drain, exit; started again)", roll_front, fe.ready)
    if not restart_vllm:
        other = backends[1]
        fault("vLLM 1 of 2 killed (SIGKILL), not restarted", lambda f: backends[0].kill(), lambda: _serves(other.url))
        time.sleep(20)  # vLLM 2 alone under the load
        return
    for i, b in enumerate(backends):
        def roll_backend(f: Fault, b: Backend = b) -> None:
            t0 = time.monotonic()
            b.stop()
            f.notes.append(f"stopped in {time.monotonic() - t0:.1f} s, start {b.start():.1f} s")
        fault(f"vLLM {i + 1} rolled (SIGTERM, restart)", roll_backend, backend_up(b))


def _serves(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v1/models", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos_replicas", description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--backend", choices=("vllm", "fake"), default="vllm")
    parser.add_argument("--recovery-timeout", type=float, default=240.0, help="longest wait for a part to come back")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--hogs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--base-port", type=int, default=9311, help="5 ports from here: 2 vLLMs, 2 front-ends, haproxy")
    parser.add_argument("--no-vllm-restart", action="store_true",
                        help="restart no vLLM (a start can outlast the run on a starved box): see run_faults")  # fmt: skip
    parser.add_argument("--proxy-port", type=int, help="haproxy's port (default base-port+4; 0: a free one)")
    parser.add_argument("--models", type=Path, default=REPO / ".cache/models", help="codec-tiny and tiny-tts-lm")
    args = parser.parse_args(argv)
    # SIGINT or SIGTERM cut the run short with a report, even when started in the background (SIGINT ignored)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    models, port = args.models.resolve(), args.base_port

    backends = [Replica(args.backend, port + i, models, args.recovery_timeout) for i in range(2)]
    fronts = [FrontEnd(f"front-end {i + 1}", port + 2 + i, [b.url for b in backends], models) for i in range(2)]
    outcomes: list[Outcome] = []
    faults: list[Fault] = []
    t_zero = time.monotonic()
    hogs: list[subprocess.Popen] = []
    stop = threading.Event()
    lock = threading.Lock()
    threads: list[threading.Thread] = []
    try:
        starts = []
        for b in backends:  # one after the other: two vLLMs loading at once on 2 cores take as long
            starts.append(b.start())
        print(f"backends {args.backend} up in {', '.join(f'{s:.1f}' for s in starts)} s", flush=True)
        for fe in fronts:
            fe.start()
        if not wait(lambda: all(fe.ready() for fe in fronts), args.recovery_timeout):
            print(f"the front-ends did not get ready; their logs: {[str(fe.log) for fe in fronts]}")
            return 2
        proxy_port = port + 4 if args.proxy_port is None else (args.proxy_port or free_port())
        with haproxy(proxy_port, [f"127.0.0.1:{fe.port}" for fe in fronts]) as url:
            t_zero = time.monotonic()
            code = "import time\nend = time.monotonic() + 3600\nwhile time.monotonic() < end: pass"
            hogs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(args.hogs)]

            def client(i: int) -> None:
                n = 0
                while not stop.is_set():
                    kind = KINDS[(i + n) % len(KINDS)]
                    t0 = time.monotonic()
                    result, audio = request(url, kind, n)
                    with lock:
                        outcomes.append(Outcome(kind, t0, time.monotonic(), result, audio))
                    n += 1
                    if result != "complete":
                        time.sleep(1.0)

            threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(args.clients)]
            for t in threads:
                t.start()
            time.sleep(15)  # warm, under load
            try:
                run_faults(backends, fronts, args.recovery_timeout, faults, restart_vllm=not args.no_vllm_restart)
            except KeyboardInterrupt:  # cut short: what happened so far is reported
                print("interrupted: reporting the faults so far", flush=True)
            stop.set()
            for t in threads:
                t.join(90)
    finally:
        stop.set()
        for proc in hogs:
            proc.kill()
        for fe in fronts:
            fe.term()
        for b in backends:
            b.stop()
    return report(outcomes, faults, t_zero, args, [str(fe.log) for fe in fronts])


def report(outcomes: list[Outcome], faults: list[Fault], t_zero: float, args: argparse.Namespace,
           logs: list[str]) -> int:  # fmt: skip
    silent = [o for o in outcomes if "no_audio" in o.result]
    cut = [o for o in outcomes if o.result.startswith("broken") and any(
        f.cut_at is not None and o.start <= f.cut_at <= o.end for f in faults)]  # fmt: skip
    broken = [o for o in outcomes if o.result.startswith("broken") and o not in cut]
    otherwise = [o for o in outcomes if o.result != "complete" and o not in silent and o not in cut + broken]
    completed = [o for o in outcomes if o.result == "complete"]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")  # fmt: skip
    print(f"\nchaos run, replicas: 2 backends ({args.backend}), 2 front-ends behind haproxy, {args.clients} clients, "
          f"{args.hogs} CPU hogs, {os.cpu_count()} cores ({cpu}), load {os.getloadavg()[0]:.1f} at the end\n")  # fmt: skip
    print("| fault | at (s) | back after (s) | broken | failed otherwise | cut with a killed front-end | notes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for f in faults:
        until = f.recovered or float("inf")

        def during(os_: list[Outcome], f: Fault = f, until: float = until) -> int:
            return sum(1 for o in os_ if o.end >= f.start and o.start <= until)

        back = f"{f.recovered - f.start:.1f}" if f.recovered else "not in time"
        print(f"| {f.name} | {f.start - t_zero:.1f} | {back} | {during(broken)} | {during(otherwise)} | "
              f"{during(cut)} | {'; '.join(f.notes)} |")  # fmt: skip
    kinds = {k: sum(1 for o in completed if o.kind == k) for k in KINDS}
    print(f"\nrequests attempted {len(outcomes)}, completed {len(completed)} ({kinds}), broken {len(broken)}, "
          f"failed otherwise {len(otherwise)}; apart: in flight on a SIGKILLed front-end {len(cut)}, "
          f"no speech from the model (502 no_audio) {len(silent)}")  # fmt: skip
    for o in broken + otherwise:
        print(f"  {'BROKEN' if o in broken else 'FAILED OTHERWISE'}: {o.kind} at {o.start - t_zero:.1f}-"
              f"{o.end - t_zero:.1f} s: {o.result}")  # fmt: skip
    print(f"front-end logs: {', '.join(logs)}")
    return 1 if broken or otherwise or not all(f.recovered for f in faults) else 0


if __name__ == "__main__":
    raise SystemExit(main())
