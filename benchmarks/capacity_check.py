"""Capacity check (prints, asserts nothing): measure the rates, predict streams with tools/capacity.py, run them.

1. Decode rate: `--concurrency` levels of concurrent streams against a running vLLM (the dev backend:
   `.venv/bin/tts-dev-backend start --port 9095`), each `--tokens` long with `ignore_eos`; a stream's rate is its
   tokens after the first event over the time from the first event to the last; the aggregate is all streams'
   tokens after their first event over the time from the first first event to the last event.
2. Codec rate: the codec's raw decode throughput (benchmarks/codec_bench.py) on windows of `--window-tokens`.
3. Prediction: tools/capacity.py's bounds from those rates and the model's config.json.
4. Verification: N = floor(predicted) concurrent streams, then N + 1, ... while the median stream still gets
   50 tokens/s (or N - 1, ... while it does not; 4 levels at most), each run `--repeats` times: the median
   stream's rate against the curve's prediction, and the measured bound (where the median stream falls to 50
   tokens/s, interpolated between the two levels around it) against the predicted one, with the % differences.

    nice -n 10 .venv/bin/python -m benchmarks.capacity_check --url http://127.0.0.1:9095 --json-out cap.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import subprocess
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from app.prompts import speech_prompt
from tools import capacity

REPO = Path(__file__).resolve().parents[1]
TEXT = "Selamat pagi, the meeting is at three o'clock in the main hall."


async def one_stream(client: httpx.AsyncClient, url: str, model: str, max_tokens: int, i: int) -> dict:
    """One streaming completion -> {"tokens", "ttft", "rate"} (rate: tokens after the first event per second)."""
    body = {
        "model": model,
        "prompt": speech_prompt("husein", f"{TEXT} ({i})"),
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
        "skip_special_tokens": False,
        "return_token_ids": True,
    }
    t0 = time.perf_counter()
    first = last = None
    n = n_first = 0
    async with client.stream("POST", f"{url}/v1/completions", json=body) as r:
        r.raise_for_status()
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or []
            ids = choices[0].get("token_ids") or [] if choices else []
            if not ids:
                continue
            last = time.perf_counter()
            if first is None:
                first, n_first = last, len(ids)
            n += len(ids)
    if first is None or last == first:
        raise RuntimeError(f"stream {i}: fewer than two token events")
    return {
        "tokens": n - n_first,
        "first": first,
        "last": last,
        "ttft": first - t0,
        "rate": (n - n_first) / (last - first),
    }


async def level(url: str, model: str, concurrency: int, max_tokens: int) -> dict:
    """`concurrency` streams started together -> aggregate and per-stream rates."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0), limits=httpx.Limits(max_connections=256)) as client:
        results = await asyncio.gather(*(one_stream(client, url, model, max_tokens, i) for i in range(concurrency)))
    rates = [r["rate"] for r in results]
    # over the level's span, not a sum of rates: a stream whose events came in one late burst (its reader was not
    # scheduled) has a huge rate of its own, but cannot inflate this
    span = max(r["last"] for r in results) - min(r["first"] for r in results)
    return {
        "concurrency": concurrency,
        "aggregate": sum(r["tokens"] for r in results) / span,
        "median": statistics.median(rates),
        "min": min(rates),
        "ttft_median": statistics.median(r["ttft"] for r in results),
    }


def measure_level(url: str, model: str, concurrency: int, max_tokens: int, repeats: int) -> dict:
    """The run of median aggregate among `repeats` runs (a shared machine's load moves between runs)."""
    runs = [asyncio.run(level(url, model, concurrency, max_tokens)) for _ in range(repeats)]
    runs.sort(key=lambda r: r["aggregate"])
    return runs[len(runs) // 2] | {"aggregates": [round(r["aggregate"], 1) for r in runs]}


def codec_rate(codec_dir: Path, window_tokens: int, batches: list[int], threads: int) -> dict:
    import torch

    from benchmarks.codec_bench import build_runtime, measure_codec_ceiling

    torch.set_num_threads(threads)
    runtime = build_runtime(model=str(codec_dir), dtype="float32", max_batch_size=max(batches))
    return measure_codec_ceiling(runtime, window_tokens, batches, min_seconds=2.0)["best"]


def machine() -> str:
    """lscpu's model name and the flags that matter to torch, the core count and the load."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    wanted = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    load = "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    model = fields.get("Model name", "?").strip()
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(wanted)}; load average {load} at start"


def pct(predicted: float, measured: float) -> float:
    """(predicted - measured) / measured, in %."""
    return 100.0 * (predicted - measured) / measured


def verify(curve: list[tuple[float, float]], predicted: float, measured: list[dict]) -> dict:
    """The prediction against the runs around it: per stream at each level, and the bound."""
    rows = []
    for run in measured:
        c = run["concurrency"]
        per_stream = capacity.throughput_at(curve, c) / c
        rows.append(
            {
                "concurrency": c,
                "predicted_per_stream": per_stream,
                "measured_median": run["median"],
                "measured_min": run["min"],
                "per_stream_diff_pct": pct(per_stream, run["median"]),
                "real_time": run["median"] >= capacity.TOKENS_PER_AUDIO_SECOND,
            }
        )
    # the measured bound: where the median stream falls to 50 tokens/s (the model's interpolation, on new runs)
    points = [(run["concurrency"], run["median"] * run["concurrency"]) for run in measured]
    bound = capacity.streams_by_decode(points)
    return {"rows": rows, "predicted_streams": predicted, "measured_streams": bound,
            "streams_diff_pct": pct(predicted, bound)}  # fmt: skip


def report(result: dict) -> str:
    lines = [f"# {result['machine']}", f"# {result['date']}, vLLM {result['url']}, {result['tokens']} tokens a stream"]
    lines.append("conc  aggregate tok/s  per-stream median  min    TTFT p50  (aggregates of the repeats)")
    for r in result["curve"]:
        lines.append(
            f"{r['concurrency']:>4}  {r['aggregate']:>15.1f}  {r['median']:>17.1f}  {r['min']:>5.1f}  "
            f"{r['ttft_median']:>8.3f}  {r['aggregates']}"
        )
    codec = result["codec"]
    lines.append(f"codec: {codec['audio_s_per_s']:.1f} audio-s/s at batch {codec['batch']} "
                 f"({result['window_tokens']}-token windows, {result['codec_threads']} thread)")  # fmt: skip
    lines.append("")
    lines.append(result["table"])
    lines.append("")
    v = result["verify"]
    lines.append("conc  predicted tok/s a stream  measured median  min    diff     >= 50")
    for r in v["rows"]:
        lines.append(
            f"{r['concurrency']:>4}  {r['predicted_per_stream']:>24.1f}  {r['measured_median']:>15.1f}  "
            f"{r['measured_min']:>5.1f}  {r['per_stream_diff_pct']:>+6.1f}%  {'yes' if r['real_time'] else 'no'}"
        )
    lines.append(
        f"streams at real time: predicted {v['predicted_streams']:.2f}, measured {v['measured_streams']:.2f} "
        f"({v['streams_diff_pct']:+.1f}%)"
    )
    return "\n".join(lines)


def bracket(args: argparse.Namespace, n: int, most: int = 4) -> list[dict]:
    """Runs at N, then up (N + 1, ...) while the median stream still gets 50 tokens/s, or down (N - 1, ...) while
    it does not, at most `most` levels: the measured bound then lies between two measured levels."""
    runs = [measure_level(args.url, args.model, n, args.tokens, args.repeats)]
    step = 1 if runs[0]["median"] >= capacity.TOKENS_PER_AUDIO_SECOND else -1
    while len(runs) < most and n + step * len(runs) >= 1:
        ok = runs[-1]["median"] >= capacity.TOKENS_PER_AUDIO_SECOND
        if len(runs) > 1 and ok != (step == 1):
            break  # crossed
        runs.append(measure_level(args.url, args.model, n + step * len(runs), args.tokens, args.repeats))
    return sorted(runs, key=lambda r: r["concurrency"])


def run(args: argparse.Namespace) -> dict:
    start = machine()
    date = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    curve_runs = [measure_level(args.url, args.model, c, args.tokens, args.repeats) for c in args.concurrency]
    curve = [(float(r["concurrency"]), r["aggregate"]) for r in curve_runs]
    codec = codec_rate(args.codec_dir, args.window_tokens, args.codec_batches, args.codec_threads)
    shape = capacity.read_model_config(args.model_config, args.kv_dtype)
    inputs = capacity.Inputs(
        tokens_per_call=args.tokens_per_call,
        kv_cache_gib=args.kv_cache_gib,
        decode_curve=tuple(curve),
        codec_audio_s_per_s=codec["audio_s_per_s"],
        gpu_price_per_hour=None,
    )
    est = capacity.estimate(shape, inputs)
    checks = bracket(args, max(1, math.floor(est.streams)))
    return {
        "machine": start,
        "date": date,
        "url": args.url,
        "tokens": args.tokens,
        "window_tokens": args.window_tokens,
        "codec_threads": args.codec_threads,
        "curve": curve_runs,
        "codec": codec,
        "estimate": asdict(est),
        "table": capacity.table(shape, inputs, est, label="measured (CPU)"),
        "verify": verify(curve, est.streams, checks),
        "verify_runs": checks,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", default="http://127.0.0.1:9095", help="a running vLLM (the dev backend)")
    p.add_argument("--model", default="TTS-model", help="its served model name")
    p.add_argument("--model-config", type=Path, default=REPO / ".cache" / "models" / "tiny-tts-lm")
    p.add_argument("--kv-dtype", default="bfloat16", help="the server's --dtype (the dev backend: bfloat16)")
    p.add_argument("--kv-cache-gib", type=float, default=1.0, help="its VLLM_CPU_KVCACHE_SPACE (dev backend: 1)")
    p.add_argument("--tokens-per-call", type=int, default=3000)
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4, 8, 16, 24])
    p.add_argument("--tokens", type=int, default=250, help="tokens a stream (50 = 1 s of audio)")
    p.add_argument("--repeats", type=int, default=3, help="runs per level; the median is kept")
    p.add_argument("--codec-dir", type=Path, default=REPO / ".cache" / "models" / "codec-tiny")
    p.add_argument("--window-tokens", type=int, default=100, help="1.5 s chunks + 0.3 s context + cross-fade")
    p.add_argument("--codec-batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    p.add_argument("--codec-threads", type=int, default=1, help="CODEC_THREADS (the dev stack's: 1)")
    p.add_argument("--json-out", type=Path)
    args = p.parse_args(argv)
    result = run(args)
    print(report(result))
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
