"""Service benchmark (prints, asserts nothing): the API under concurrency against the raw codec ceiling.

Starts the fake vLLM (its own process, tokens at a set per-stream rate) and the service (its own process, with
the tiny or full-size random NeuCodec and dynamic batching), drives `/v1/audio/speech` streams at several
concurrency levels, and prints one table: throughput (audio-seconds per wall-second), time to first audio
p50/p99, latency p50/p99, RTF p50, decoded/emitted token ratio, service CPU seconds per audio-second, and the
ratio of service throughput to the codec's raw throughput measured in the same run (its best batch size for
the service's window length). That last ratio is the figure of merit on any machine.

CPU is split between the front-end process(es) and the codec engine process (`tts_engine_process_cpu_seconds_total`
from /metrics; the front-ends are the rest of the service's process tree), per second of audio delivered.
`--api-workers 1,2` repeats everything per number of front-ends. `--levers` measures the front-end's CPU
levers one at a time at the first concurrency level (text parsing vs token ids, 1 vs N tokens per SSE event), and
`--baseline REF` adds the service as it was at git REF (run from a temporary worktree) under the same load.
`--formats pcm@24000,pcm/mulaw@8000,pcm@16000,opus@48000` measures each output format (`FORMAT[/ENCODING][@RATE]`:
`response_format`, `encoding`, `sample_rate`) at every level on the same service, and adds a table of the
front-end's CPU per audio-second side by side.

    python -m benchmarks.service_bench [--size tiny|full] [--concurrency 1,4,16,50] [--rate 400]
    python -m benchmarks.service_bench --size tiny --rate 2000 --concurrency 64,128 --api-workers 1,2 --levers
    python -m benchmarks.service_bench --concurrency 64 --formats pcm@24000,pcm/mulaw@8000,pcm@16000,opus@48000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from stress_test.stats import percentile

REPO = Path(__file__).resolve().parents[1]


def wait_http(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live descendants (Linux /proc)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            pass  # it ended meanwhile
    return total


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@dataclass(frozen=True)
class OutputSpec:
    """One `--formats` entry: `FORMAT[/ENCODING][@RATE]`, e.g. `pcm/mulaw@8000`."""

    format: str = "pcm"
    encoding: str | None = None
    rate: int | None = None

    @classmethod
    def parse(cls, text: str) -> OutputSpec:
        head, _, rate = text.strip().partition("@")
        fmt, _, encoding = head.partition("/")
        return cls(fmt or "pcm", encoding or None, int(rate) if rate else None)

    @property
    def label(self) -> str:
        return f"{self.format}{'/' + self.encoding if self.encoding else ''}@{self.rate or 24000}"

    def body(self) -> dict:
        extra = {"encoding": self.encoding} if self.encoding else {}
        return {"response_format": self.format} | extra | ({"sample_rate": self.rate} if self.rate else {})

    def seconds(self, n_bytes: int, n_tokens: int) -> float:
        """Audio-seconds in a complete response: from its size for raw samples, else the tokens sent (50/s)."""
        if self.format != "pcm":
            return n_tokens / 50 if n_bytes else 0.0
        width = 2 if self.encoding in (None, "s16le") else 1
        return n_bytes / (width * (self.rate or 24000))


async def one_stream(client: httpx.AsyncClient, url: str, text: str, out: OutputSpec, n_tokens: int) -> dict:
    t0 = time.perf_counter()
    ttfa = None
    n = 0
    try:
        async with client.stream("POST", f"{url}/v1/audio/speech", json={"input": text, **out.body()}) as r:
            if r.status_code != 200:
                await r.aread()
                return {"error": f"HTTP {r.status_code}"}
            async for piece in r.aiter_bytes():
                if ttfa is None and piece:
                    ttfa = time.perf_counter() - t0
                n += len(piece)
    except httpx.HTTPError as exc:
        return {"error": type(exc).__name__}
    latency = time.perf_counter() - t0
    audio = out.seconds(n, n_tokens)
    return {"ttfa": ttfa or latency, "latency": latency, "audio": audio, "rtf": latency / audio if audio else None}


async def run_level(
    url: str, concurrency: int, requests: int, out: OutputSpec = OutputSpec(), n_tokens: int = 0
) -> tuple[list[dict], float]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as client:
        sem = asyncio.Semaphore(concurrency)

        async def guarded(i: int) -> dict:
            async with sem:
                text = f"Benchmark sentence number {i}, please read it aloud."
                return await one_stream(client, url, text, out, n_tokens)

        t0 = time.perf_counter()
        results = await asyncio.gather(*(guarded(i) for i in range(requests)))
        return results, time.perf_counter() - t0


def codec_ceiling(codec_dir: Path, window_tokens: int, batch_sizes: list[int], dtype: str) -> tuple[float, int]:
    """Best raw decode throughput (audio-s per wall-s) and its batch size, for windows of `window_tokens`, with
    the codec as the service loads it (its device, `CODEC_DTYPE`)."""
    from benchmarks.codec_bench import build_runtime, measure_codec_ceiling

    runtime = build_runtime(model=str(codec_dir), dtype=dtype, max_batch_size=max(batch_sizes))
    best = measure_codec_ceiling(runtime, window_tokens, batch_sizes, min_seconds=2.0)["best"]
    return best["audio_s_per_s"], best["batch"]


def start_stack(
    args: argparse.Namespace, codec_dir: Path, *, workers: int, tokens_per_event: int, token_ids: bool,
    repo: Path = REPO, extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, subprocess.Popen, str]:
    fake_port, api_port = args.port + 1, args.port
    fake_args = ["--port", str(fake_port), "--rate", str(args.rate), "--n-tokens", str(args.n_tokens),
                 "--tokens-per-event", str(tokens_per_event), "--log-level", "warning"]
    if not token_ids:
        fake_args.append("--no-token-ids")
    fake = subprocess.Popen([sys.executable, "-m", "tools.fake_vllm", *fake_args], cwd=REPO)
    env = os.environ | SETTINGS_ENV | {
        "TTS_API": f"http://127.0.0.1:{fake_port}", "PORT": str(api_port), "HOST": "127.0.0.1",
        "API_WORKERS": str(workers), "CODEC_MODEL": str(codec_dir), "PYTHONPATH": str(repo),
    } | (extra_env or {})
    cli = "app.cli" if (Path(repo) / "app" / "cli.py").exists() else "app.main"  # --compare-ref: an older layout
    api = subprocess.Popen([sys.executable, "-m", cli, "--env-file", "/dev/null"], cwd=repo, env=env)
    url = f"http://127.0.0.1:{api_port}"
    try:
        wait_http(f"http://127.0.0.1:{fake_port}/health", 30, fake)
        wait_http(f"{url}/ready", 300, api)
    except BaseException:
        stop_stack(fake, api)
        raise
    asyncio.run(run_level(url, 2, 4))  # warm-up
    return fake, api, url


def stop_stack(*procs: subprocess.Popen) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def measure(
    url: str, api: subprocess.Popen, fake: subprocess.Popen, concurrency: int, requests: int, ceiling: float,
    out: OutputSpec = OutputSpec(), n_tokens: int = 0,
) -> dict:
    before = httpx.get(f"{url}/metrics").text
    cpu0, fake0, client0 = tree_cpu_seconds(api.pid), tree_cpu_seconds(fake.pid), time.process_time()
    results, wall = asyncio.run(run_level(url, concurrency, requests, out, n_tokens))
    cpu = tree_cpu_seconds(api.pid) - cpu0
    # the load generator (this process) and the fake vLLM share the machine's cores with the service
    others = (tree_cpu_seconds(fake.pid) - fake0 + time.process_time() - client0) / wall
    after = httpx.get(f"{url}/metrics").text
    ok = [r for r in results if "error" not in r]
    audio = sum(r["audio"] for r in ok)
    decoded = metric(after, "tts_codec_tokens_decoded_total") - metric(before, "tts_codec_tokens_decoded_total")
    engine_cpu = metric(after, "tts_engine_process_cpu_seconds_total") - metric(
        before, "tts_engine_process_cpu_seconds_total")

    def delta(name: str) -> float:
        return metric(after, name) - metric(before, name)

    # where the codec's time went: busy share of the wall time, windows per batch, tokens per window, and the
    # decode rate while busy (audio-s decoded per busy second; the ceiling is the same figure for full batches
    # of the service's longest windows)
    busy = delta('tts_codec_batch_seconds_sum{kind="decode"}')
    batches = delta('tts_codec_batch_size_count{kind="decode"}')
    windows = delta('tts_codec_batch_size_sum{kind="decode"}')
    return {
        "concurrency": concurrency,
        "format": out.label,
        "requests": len(results),
        "errors": len(results) - len(ok),
        "throughput": audio / wall,
        "ttfa_p50": percentile([r["ttfa"] for r in ok], 50),
        "ttfa_p99": percentile([r["ttfa"] for r in ok], 99),
        "latency_p50": percentile([r["latency"] for r in ok], 50),
        "latency_p99": percentile([r["latency"] for r in ok], 99),
        "rtf_p50": percentile([r["rtf"] for r in ok], 50),
        "decoded_per_emitted": decoded / (audio * 50) if audio else 0.0,
        "cpu_per_audio_s": cpu / audio if audio else 0.0,
        "frontend_cpu_per_audio_s": (cpu - engine_cpu) / audio if audio else 0.0,
        "engine_cpu_per_audio_s": engine_cpu / audio if audio else 0.0,
        "vs_ceiling": audio / wall / ceiling,
        "engine_busy": busy / wall,
        "windows_per_batch": windows / batches if batches else 0.0,
        "tokens_per_window": decoded / windows if windows else 0.0,
        "busy_rate_vs_ceiling": decoded / 50 / busy / ceiling if busy else 0.0,
        "other_cores": others,
        # the ceiling was measured with every core free; here the fake vLLM and the clients use `others` of them
        "vs_ceiling_cores_left": audio / wall / (ceiling * max(0.05, 1 - others / (os.cpu_count() or 1))),
    }


SETTINGS_ENV = {
    "CODEC_LOAD_ENCODER": "false",
    "DYNAMIC_BATCHING": "true",
    "MAX_BATCH_SIZE": "16",
    "LOG_LEVEL": "warning",
}


def settings_env(variant: str) -> dict[str, str]:
    """'NAME=VALUE,NAME=VALUE' -> the environment it adds to the service's."""
    pairs = [item.split("=", 1) for item in variant.split(",") if item.strip()]
    if any(len(p) != 2 for p in pairs):
        raise SystemExit(f"--settings: expected NAME=VALUE pairs, got {variant!r}")
    return {name.strip().upper(): value.strip() for name, value in pairs}


def baseline_checkout(ref: str) -> Path:
    """A temporary git worktree of `ref` (removed at exit)."""
    import atexit
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tts-baseline-")) / "repo"
    subprocess.run(["git", "worktree", "add", "--detach", str(path), ref], cwd=REPO, check=True,
                   capture_output=True)
    atexit.register(lambda: subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=REPO,
                                           capture_output=True))
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="tiny")
    parser.add_argument("--concurrency", default="1,4,16,50")
    parser.add_argument("--requests", type=int, default=0, help="per level; default 2 x concurrency (min 4)")
    parser.add_argument("--rate", type=float, default=400.0, help="fake vLLM tokens/s per stream")
    parser.add_argument("--n-tokens", type=int, default=250, help="speech tokens per response (50 = 1 s)")
    parser.add_argument("--tokens-per-event", type=int, default=5, help="vLLM --stream-interval (the default)")
    parser.add_argument("--api-workers", default="1", help="front-end processes, e.g. 1,2,4")
    parser.add_argument("--levers", action="store_true", help="each front-end CPU lever alone, at the first level")
    parser.add_argument("--baseline", metavar="REF", help="also run the service of git REF (text parsing era)")
    parser.add_argument("--text-normalizer", choices=["malaysian", "none"], default="malaysian",
                        help="TEXT_NORMALIZER of the service (none: no malaya needed)")
    parser.add_argument("--settings", default="",
                        help="service settings to compare side by side: variants separated by ';', each a comma-"
                        "separated list of NAME=VALUE, e.g. 'MAX_CHUNK_SECONDS=1.5;MAX_CHUNK_SECONDS=3'")
    parser.add_argument("--compare-ref", metavar="REF",
                        help="also run the service of git REF, with the same load, at every level")
    parser.add_argument("--rounds", type=int, default=1, help="run every variant this many times, interleaved")
    parser.add_argument("--port", type=int, default=9191)
    parser.add_argument("--formats", default="pcm",
                        help="output formats measured at every level, FORMAT[/ENCODING][@RATE], comma-separated")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    SETTINGS_ENV["TEXT_NORMALIZER"] = args.text_normalizer
    levels = [int(c) for c in args.concurrency.split(",")]
    variants = [v.strip() for v in args.settings.split(";")]
    worker_counts = [int(w) for w in args.api_workers.split(",")]
    outputs = [OutputSpec.parse(f) for f in args.formats.split(",") if f.strip()]

    codec_dir = REPO / ".cache/models" / f"bench-codec-{args.size}"
    if not (codec_dir / "pytorch_model.bin").exists():
        from app.codec.checkpoint import make_checkpoint

        make_checkpoint(codec_dir, size=args.size)
    from app.audio.stitch import StitchPlan
    from app.codec.config import CodecConfig
    from app.settings import Settings

    s = Settings(_env_file=None, **{k.lower(): v for k, v in SETTINGS_ENV.items()})
    plan = StitchPlan.from_seconds(
        s.default_playback_speed, s.default_playback_overlap_speed, s.first_chunk_seconds,
        s.decode_left_context_seconds, geometry=CodecConfig.named(args.size).geometry,
    )
    window = plan.chunk_tokens + plan.overlap_tokens + plan.left_context_tokens
    # (label, extra environment, repository) of every service compared; each CODEC_DTYPE gets its own ceiling
    stacks = [(v, settings_env(v), REPO) for v in variants]
    if args.compare_ref:
        stacks.insert(0, (f"git {args.compare_ref}", {}, baseline_checkout(args.compare_ref)))
    ceilings: dict[str, tuple[float, int]] = {}
    for _, env, _ in stacks:
        if (dtype := env.get("CODEC_DTYPE", s.codec_dtype)) not in ceilings:
            print(f"measuring the codec ceiling ({args.size}, {window}-token windows, CODEC_DTYPE={dtype}) ...",
                  flush=True)
            ceilings[dtype] = codec_ceiling(codec_dir, window, [1, 2, 4, 8, 16], dtype)
    ceiling, ceiling_batch = ceilings.get(s.codec_dtype, next(iter(ceilings.values())))
    ceilings_seen: dict[str, tuple[float, float]] = {}  # dtype -> (before the runs, after them)

    def n_requests(c: int) -> int:
        return args.requests or max(4, 2 * c)

    rows = []
    for _ in range(args.rounds):  # interleaved: a machine that slows down mid-run slows every variant alike
        for label, env, repo in stacks:
            dtype = env.get("CODEC_DTYPE", s.codec_dtype)
            for workers in worker_counts:
                fake, api, url = start_stack(args, codec_dir, workers=workers, tokens_per_event=args.tokens_per_event,
                                             token_ids=True, extra_env=env, repo=repo)
                try:
                    for c in levels:
                        for out in outputs:
                            row = measure(url, api, fake, c, n_requests(c), ceilings[dtype][0], out, args.n_tokens) | {
                                "api_workers": workers, "settings": label, "dtype": dtype,
                                "ceiling": ceilings[dtype][0]}
                            rows.append(row)
                            print(f"  {label or 'defaults'}: {workers} worker(s), concurrency {c}, {out.label}: "
                                  f"{row['throughput']:.1f} audio-s/s", flush=True)
                finally:
                    stop_stack(api, fake)

    if rows:  # the ceiling again, after the load: the best of the two is the ceiling (a slow moment lowers one)
        for dtype, (before, batch) in list(ceilings.items()):
            print(f"measuring the codec ceiling again (CODEC_DTYPE={dtype}) ...", flush=True)
            after = codec_ceiling(codec_dir, window, [1, 2, 4, 8, 16], dtype)
            ceilings_seen[dtype] = (before, after[0])
            ceilings[dtype] = max((before, batch), after)
        for row in rows:
            scale = row["ceiling"] / ceilings[row["dtype"]][0]
            row["ceiling"] = ceilings[row["dtype"]][0]
            for key in ("vs_ceiling", "busy_rate_vs_ceiling", "vs_ceiling_cores_left"):
                row[key] *= scale
        ceiling, ceiling_batch = ceilings.get(s.codec_dtype, next(iter(ceilings.values())))

    lever_rows = []
    if args.levers or args.baseline:
        c = levels[0]
        variants = []
        if args.baseline:
            variants.append((f"service at {args.baseline} (httpx/h11 + json, text parsing, 1 token/event)",
                             1, False, baseline_checkout(args.baseline)))
        if args.levers:
            variants += [
                ("now: text parsing, 1 token/event", 1, False, REPO),
                ("now: token ids, 1 token/event", 1, True, REPO),
                (f"now: token ids, {args.tokens_per_event} tokens/event (the default)", args.tokens_per_event, True,
                 REPO),
            ]
        for label, per_event, ids, repo in variants:
            fake, api, url = start_stack(args, codec_dir, workers=1, tokens_per_event=per_event, token_ids=ids,
                                         repo=repo)
            try:
                lever_rows.append(measure(url, api, fake, c, n_requests(c), ceiling) | {"variant": label})
                print(f"  lever: {label}: done", flush=True)
            finally:
                stop_stack(api, fake)

    print()
    print(f"# service benchmark: {args.size} random NeuCodec, fake vLLM at {args.rate:g} tokens/s per stream, "
          f"{args.n_tokens} tokens ({args.n_tokens / 50:g} s) per response, {args.tokens_per_event} tokens per event, "
          "DYNAMIC_BATCHING=true, MAX_BATCH_SIZE=16")
    ceiling_text = ", ".join(
        f"{dtype} {c:.1f} audio-s/s (batch {b}"
        + (f"; {ceilings_seen[dtype][0]:.1f} before the runs, {ceilings_seen[dtype][1]:.1f} after" if dtype in
           ceilings_seen else "") + ")"
        for dtype, (c, b) in ceilings.items())
    print(f"# machine: {platform.machine()}, {os.cpu_count()} CPUs; codec ceiling of {window}-token windows: "
          f"{ceiling_text}; CPU = CPU-seconds per audio-second; others = cores the fake vLLM and the clients used; "
          "vs left = vs the ceiling scaled to the cores they left")
    header = (f"{'format':<14} {'wrk':>3} {'conc':>4} {'reqs':>4} {'err':>3} {'audio-s/s':>9} {'TTFA p50':>8} {'TTFA p99':>8} "
              f"{'lat p50':>7} {'RTF p50':>7} {'dec/emit':>8} {'CPU total':>9} {'front-end':>9} {'engine':>8} "
              f"{'vs ceil':>7} {'others':>6} {'vs left':>7} {'busy':>5} {'win/b':>5} {'tok/w':>5} {'rate':>5}")
    print(header)
    labels = [label for label, _, _ in stacks]
    previous = None if len(labels) > 1 or args.rounds > 1 else ""
    for r in rows:
        if r["settings"] != previous:
            previous = r["settings"]
            print(f"# settings: {previous or 'defaults'}")
        print(f"{r['format']:<14} {r['api_workers']:>3} {r['concurrency']:>4} {r['requests']:>4} {r['errors']:>3} "
              f"{r['throughput']:>9.2f} {r['ttfa_p50']:>8.3f} {r['ttfa_p99']:>8.3f} {r['latency_p50']:>7.2f} "
              f"{r['rtf_p50']:>7.3f} {r['decoded_per_emitted']:>8.2f} {r['cpu_per_audio_s']:>9.4f} "
              f"{r['frontend_cpu_per_audio_s']:>9.4f} {r['engine_cpu_per_audio_s']:>8.4f} {r['vs_ceiling']:>7.2f} "
              f"{r['other_cores']:>6.2f} {r['vs_ceiling_cores_left']:>7.2f} {r['engine_busy']:>5.2f} "
              f"{r['windows_per_batch']:>5.1f} {r['tokens_per_window']:>5.0f} {r['busy_rate_vs_ceiling']:>5.2f}")
    print("# busy = the decode thread's busy share of the wall time; win/b = windows per batch; tok/w = tokens per "
          "window; rate = audio-s decoded per busy second, against the ceiling")
    if len(labels) > 1 or args.rounds > 1:
        print("# mean over rounds: settings, concurrency -> audio-s/s, vs ceil, dec/emit, rate, TTFA p50")
        for variant in labels:
            for c in levels:
                same = [r for r in rows if r["settings"] == variant and r["concurrency"] == c]
                mean = {k: statistics.fmean(r[k] for r in same)
                        for k in ("throughput", "vs_ceiling", "decoded_per_emitted", "busy_rate_vs_ceiling", "ttfa_p50")}
                print(f"#   {variant or 'defaults':<40} C={c:<4} {mean['throughput']:7.2f} {mean['vs_ceiling']:5.2f} "
                      f"{mean['decoded_per_emitted']:5.2f} {mean['busy_rate_vs_ceiling']:5.2f} {mean['ttfa_p50']:6.3f}")
    if len(outputs) > 1:
        print("# front-end CPU-s per audio-second by output format (side by side, same service and load)")
        print(f"#   {'wrk':>3} {'conc':>4} " + " ".join(f"{o.label:>15}" for o in outputs))
        for workers in worker_counts:
            for c in levels:
                same = {r["format"]: r for r in rows if r["api_workers"] == workers and r["concurrency"] == c
                        and r["settings"] == labels[-1]}
                print(f"#   {workers:>3} {c:>4} " + " ".join(
                    f"{same[o.label]['frontend_cpu_per_audio_s']:>15.4f}" if o.label in same else f"{'-':>15}"
                    for o in outputs))
    for c in levels:
        by_workers = {r["api_workers"]: r for r in rows if r["concurrency"] == c and r["settings"] == labels[-1]
                      and r["format"] == outputs[0].label}
        for w, r in sorted(by_workers.items()):
            if w != 1 and 1 in by_workers and by_workers[1]["cpu_per_audio_s"]:
                one = by_workers[1]
                print(f"# {w} workers vs 1 at C={c}: CPU per audio-s x{r['cpu_per_audio_s'] / one['cpu_per_audio_s']:.2f}, "
                      f"throughput x{r['throughput'] / one['throughput']:.2f}")
    if lever_rows:
        print()
        print(f"# front-end CPU levers, 1 worker, C={levels[0]}: CPU-s per audio-s of the whole service and of its "
              "front-end (a baseline from before the engine split decodes in-process: its front-end is its total)")
        first = lever_rows[0]["frontend_cpu_per_audio_s"] or 1.0
        for r in lever_rows:
            print(f"  {r['variant']:<72} total {r['cpu_per_audio_s']:.4f}  front-end {r['frontend_cpu_per_audio_s']:.4f}"
                  f"  x{r['frontend_cpu_per_audio_s'] / first:.2f}  ({r['throughput']:.1f} audio-s/s)")
    if args.json_out:
        args.json_out.write_text(json.dumps(
            {"ceiling": ceiling, "ceiling_batch": ceiling_batch, "ceilings": ceilings, "rows": rows,
             "levers": lever_rows}, indent=2))


if __name__ == "__main__":
    main()
