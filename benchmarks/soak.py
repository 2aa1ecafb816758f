"""Soak: N concurrent streams for T minutes against the service and the fake vLLM; does anything grow?

Starts the fake vLLM and `tts-api` (tiny random codec by default) as subprocesses, keeps `--streams` clients
streaming PCM back to back (a `--leave` fraction of them hang up mid-stream, to exercise cancellation), and
every `--every` seconds prints the API process's RSS, open file descriptors, requests in flight and the
backend streams open. At the end it prints the growth between the first and the last sample, and what is
left in flight once the clients stop (should be 0).

    python -m benchmarks.soak                      # defaults: 16 streams for 8 minutes (about 9 with start-up)
    python -m benchmarks.soak --streams 8 --minutes 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.service_bench import wait_http

REPO = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    return [int(c) for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]


def total(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels` (Prometheus text format)."""
    value = 0.0
    for line in text.splitlines():
        named = line.startswith((name + "{", name + " "))
        if named and all(f'{k}="{v}"' in line for k, v in labels.items()):
            value += float(line.rsplit(" ", 1)[1])
    return value


async def client(url: str, stop: float, leave: float, counts: dict[str, int], rng: random.Random) -> None:
    async with httpx.AsyncClient(timeout=60) as http:
        while time.monotonic() < stop:
            body = {"input": f"Soak request {rng.randrange(10**6)}: hello there.", "response_format": "pcm"}
            leaving = rng.random() < leave
            try:
                async with http.stream("POST", f"{url}/v1/audio/speech", json=body) as resp:
                    if resp.status_code != 200:
                        counts[f"http_{resp.status_code}"] = counts.get(f"http_{resp.status_code}", 0) + 1
                        await resp.aread()
                        await asyncio.sleep(0.5)
                        continue
                    got = 0
                    async for piece in resp.aiter_bytes():
                        got += len(piece)
                        if leaving and got > 48_000:  # one second of audio, then hang up
                            break
                counts["left" if leaving else "completed"] += 1
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                counts[key] = counts.get(key, 0) + 1


async def sample(
    url: str, fake_url: str, pid: int, start: float, stop: float, every: float, rows: list[dict]
) -> None:
    # tts-api (API_WORKERS=1) runs the codec engine as its child process (beside multiprocessing's resource tracker)
    engine = next(c for c in children(pid) if b"resource_tracker" not in Path(f"/proc/{c}/cmdline").read_bytes())
    async with httpx.AsyncClient(timeout=10) as http:
        while True:
            metrics = (await http.get(f"{url}/metrics")).text
            fake = (await http.get(f"{fake_url}/_fake/stats")).json()
            row = {
                "t": time.monotonic() - start,
                "rss_mib": rss_mib(pid),
                "fds": open_fds(pid),
                "engine_rss_mib": rss_mib(engine),
                "engine_fds": open_fds(engine),
                "in_flight": int(total(metrics, "tts_requests_in_flight")),
                "backend_open": fake["active_streams"],
                "completed": int(total(metrics, "tts_requests_total", outcome="completed")),
                "cancelled": int(total(metrics, "tts_requests_total", outcome="cancelled")),
            }
            rows.append(row)
            print(
                f"{row['t']:7.0f} {row['rss_mib']:8.1f} {row['fds']:5d} {row['engine_rss_mib']:10.1f} "
                f"{row['engine_fds']:7d} {row['in_flight']:9d} {row['backend_open']:8d}"
                f" {row['completed']:9d} {row['cancelled']:9d}",
                flush=True,
            )
            if time.monotonic() >= stop:
                return
            await asyncio.sleep(min(every, max(0.0, stop - time.monotonic())))


async def soak(url: str, fake_url: str, pid: int, args: argparse.Namespace) -> tuple[list[dict], dict[str, int]]:
    rows: list[dict] = []
    counts = {"completed": 0, "left": 0}
    start = time.monotonic()
    stop = start + args.minutes * 60
    print(f"{'t (s)':>7} {'RSS MiB':>8} {'fds':>5} {'engine MiB':>10} {'eng fds':>7} {'in flight':>9} {'backend':>8} {'completed':>9} {'cancelled':>9}")
    rngs = [random.Random(i) for i in range(args.streams)]
    await asyncio.gather(
        sample(url, fake_url, pid, start, stop, args.every, rows),
        *(client(url, stop, args.leave, counts, rngs[i]) for i in range(args.streams)),
    )
    await asyncio.sleep(2)  # the last clients have hung up: give their requests time to end
    await sample(url, fake_url, pid, start, 0, 0, rows)
    return rows, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--minutes", type=float, default=8.0, help="how long they stream (default 8)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples (default 30)")
    parser.add_argument("--leave", type=float, default=0.25, help="fraction of requests that hang up mid-stream")
    parser.add_argument("--rate", type=float, default=50.0, help="fake vLLM tokens/s per stream (50 = real time)")
    parser.add_argument("--n-tokens", type=int, default=250, help="speech tokens per response (default 5 s)")
    parser.add_argument("--codec-dir", type=Path, default=REPO / ".cache/models/codec-tiny")
    parser.add_argument("--port", type=int, default=9291, help="API port; the fake vLLM uses the next one")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    if not (args.codec_dir / "config.json").exists() and not (args.codec_dir / "pytorch_model.bin").exists():
        raise SystemExit(f"no codec in {args.codec_dir}: run `make models` first")

    api_port, fake_port = args.port, args.port + 1
    fake = subprocess.Popen(
        [sys.executable, "-m", "tools.fake_vllm", "--port", str(fake_port), "--rate", str(args.rate),
         "--n-tokens", str(args.n_tokens), "--log-level", "warning"],
        cwd=REPO,
    )
    env = os.environ | {
        "CODEC_MODEL": str(args.codec_dir),
        "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": "1",
        "DYNAMIC_BATCHING": "true",
        "LOG_LEVEL": "warning",
        "TTS_API": f"http://127.0.0.1:{fake_port}",
        "HOST": "127.0.0.1",
        "PORT": str(api_port),
    }
    api = subprocess.Popen([sys.executable, "-m", "app.cli", "--env-file", "/dev/null"], cwd=REPO, env=env)
    try:
        wait_http(f"http://127.0.0.1:{fake_port}/health", 30, fake)
        url = f"http://127.0.0.1:{api_port}"
        wait_http(f"{url}/ready", 300, api)
        rows, counts = asyncio.run(soak(url, f"http://127.0.0.1:{fake_port}", api.pid, args))
    finally:
        for p in (api, fake):
            p.send_signal(signal.SIGTERM)
        for p in (api, fake):
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    first, last = rows[0], rows[-1]
    loaded = rows[1:-1] or rows  # under load, after the first requests warmed the process up
    print()
    print(f"# soak: {args.streams} streams for {args.minutes:g} min, fake vLLM at {args.rate:g} tokens/s, "
          f"{args.n_tokens} tokens per response, {args.leave:.0%} of clients hang up after 1 s of audio")
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs; codec {args.codec_dir.name}")
    print(f"# clients: {json.dumps(counts)}")
    print(f"# RSS idle {first['rss_mib']:.1f} MiB, first loaded sample {loaded[0]['rss_mib']:.1f}, last loaded "
          f"{loaded[-1]['rss_mib']:.1f} (growth under load {loaded[-1]['rss_mib'] - loaded[0]['rss_mib']:+.1f} MiB), "
          f"after {last['rss_mib']:.1f}; peak {max(r['rss_mib'] for r in rows):.1f} MiB")
    print(f"# codec engine process: RSS first loaded sample {loaded[0]['engine_rss_mib']:.1f} MiB, last loaded "
          f"{loaded[-1]['engine_rss_mib']:.1f} ({loaded[-1]['engine_rss_mib'] - loaded[0]['engine_rss_mib']:+.1f} MiB); "
          f"fds {loaded[0]['engine_fds']} -> {loaded[-1]['engine_fds']}")
    print(f"# open fds idle {first['fds']}, under load {loaded[0]['fds']} -> {loaded[-1]['fds']}, after {last['fds']}; "
          f"after the clients stopped: {last['in_flight']} in flight, {last['backend_open']} backend streams open")
    if args.json_out:
        args.json_out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rows": rows,
                                             "clients": counts}, indent=2))


if __name__ == "__main__":
    main()
