"""Codec decode benchmark (prints, asserts nothing): raw NeuCodec decode throughput on the current device.

Audio-seconds decoded per wall-second, by thread count, window length and batch size, for today's default
(float32 eager, `--baseline`) beside the new default (`--dtype auto`: CODEC_DTYPE=auto) and, with `--compile`,
the new dtype under torch.compile, measured in interleaved rounds in one run, with the ratios to the baseline
and the SNR of each against it on the same tokens. `--padded` adds the old table: exact lengths beside the same
windows padded to a bucket (the cost of CUDA-graph style padding; the audio is the same).

    .venv/bin/python benchmarks/codec_bench.py --size full --windows 100 --batches 1,4
    .venv/bin/python benchmarks/codec_bench.py --size full --windows 100 --batches 4 --threads 1,2 --compile
    .venv/bin/python benchmarks/codec_bench.py --size tiny --windows 20,40,65 --batches 1,4,16 --threads 1
    .venv/bin/python benchmarks/codec_bench.py --model DIR --device cuda --dtype bfloat16 --buckets 25,50,75

`measure_codec_ceiling(runtime, window_tokens, batch_sizes)` is the importable measurement (the service
benchmark reports its throughput against it).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `app` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.codec.batching import select_bucket  # noqa: E402
from app.codec.runtime import CodecRuntime  # noqa: E402

TOKENS_PER_SECOND = 50
DEFAULT_BUCKET_STEP = 25  # tokens (0.5 s) between buckets when the runtime has none


def _rate(runtime: CodecRuntime, windows: list[np.ndarray], pad_to: int | None, min_seconds: float, reps: int) -> dict:
    """Decode `windows` once to warm up, then at least `reps` times and `min_seconds`.

    Uses the median call time (robust to other jobs on a shared machine): audio-s per wall-s of valid audio.
    """
    runtime.decode(windows, pad_to=pad_to)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < reps or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        runtime.decode(windows, pad_to=pad_to)
        times.append(time.perf_counter() - t0)
    median = float(np.median(times))
    audio_seconds = sum(w.shape[0] for w in windows) / TOKENS_PER_SECOND
    return {"audio_s_per_s": audio_seconds / median, "ms_per_batch": 1e3 * median, "reps": len(times)}


def measure_codec_ceiling(
    runtime: CodecRuntime,
    window_tokens: int,
    batch_sizes: Sequence[int],
    *,
    bucket_tokens: int | None = None,
    min_seconds: float = 1.0,
    reps: int = 2,
    seed: int = 0,
) -> dict[str, Any]:
    """Raw decode throughput of `runtime` for batches of `window_tokens`-token windows.

    For each batch size: `exact` decodes the windows as the runtime plans them (their own length on CPU; the
    matching graph bucket on CUDA), `padded` pads them to `bucket_tokens` (default: the runtime's bucket for
    this length, else the next multiple of 25 tokens above it). Throughput counts valid audio only.

    Returns {"window_tokens", "bucket_tokens", "device", "dtype", "threads", "rows": [{"batch", "exact": {...},
    "padded": {...}}], "best": {"batch", "audio_s_per_s"}} with {"audio_s_per_s", "ms_per_batch", "reps"} rates.
    """
    if bucket_tokens is None:
        bucket_tokens = select_bucket(window_tokens, runtime.graph_buckets) or (
            (window_tokens // DEFAULT_BUCKET_STEP + 1) * DEFAULT_BUCKET_STEP
        )
    if bucket_tokens < window_tokens:
        raise ValueError(f"bucket_tokens {bucket_tokens} < window_tokens {window_tokens}")
    rng = np.random.default_rng(seed)
    rows = []
    for batch in batch_sizes:
        if batch > runtime.max_batch_size:
            raise ValueError(f"batch size {batch} exceeds the runtime's max_batch_size {runtime.max_batch_size}")
        windows = [rng.integers(0, 65_536, window_tokens, dtype=np.int64) for _ in range(batch)]
        rows.append(
            {
                "batch": batch,
                "exact": _rate(runtime, windows, None, min_seconds, reps),
                "padded": _rate(runtime, windows, bucket_tokens, min_seconds, reps),
            }
        )
    best = max(rows, key=lambda row: row["exact"]["audio_s_per_s"])
    return {
        "window_tokens": window_tokens,
        "bucket_tokens": bucket_tokens,
        "device": runtime.device,
        "dtype": str(runtime.dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "rows": rows,
        "best": {"batch": best["batch"], "audio_s_per_s": best["exact"]["audio_s_per_s"]},
    }


def _machine() -> str:
    if torch.cuda.is_available():
        return f"GPU {torch.cuda.get_device_name(0)}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"CPU {cpu}, {os.cpu_count()} cores{load}"


def build_runtime(
    *,
    size: str = "full",
    model: str = "",
    device: str = "auto",
    dtype: str = "auto",
    compile: bool = False,
    buckets: Sequence[int] = (),
    max_batch_size: int = 16,
    max_window_tokens: int = 160,
    seed: int = 0,
) -> CodecRuntime:
    """A warmed runtime as the service builds it: `dtype` "auto" resolves like CODEC_DTYPE=auto. Random weights
    of `size` (same seed, so two runtimes decode the same network) unless `model` names a checkpoint."""
    from app.codec.config import CodecConfig
    from app.codec.decoder import NeuCodecDecoder
    from app.codec.precision import apply_precision, resolve_dtype
    from app.codec.pretrained import load_codec
    from app.codec.runtime import resolve_device

    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if model:
        decoder, _ = load_codec(model, device=torch_device, dtype=torch_dtype)
    else:
        torch.manual_seed(seed)
        decoder = apply_precision(NeuCodecDecoder(CodecConfig.named(size)).to(torch_device), torch_dtype).eval()
    runtime = CodecRuntime(
        decoder,
        device=torch_device,
        graph_buckets=list(buckets),
        max_batch_size=max_batch_size,
        torch_compile=compile,
        max_window_tokens=max_window_tokens,
    )
    runtime.warmup()
    return runtime


def _label(runtime: CodecRuntime) -> str:
    mode = (
        "compile"
        if runtime.torch_compile
        else ("graphs" if runtime.graph_buckets and "cuda" in runtime.device else "eager")
    )
    return f"{str(runtime.dtype).removeprefix('torch.')} {mode}"


def compare(
    runtimes: Sequence[CodecRuntime], window_tokens: int, batch: int, *, rounds: int, seed: int = 0
) -> list[float]:
    """Audio-s/s of each runtime on the same `batch` windows of `window_tokens`, measured in interleaved rounds
    (so load from other jobs hits all alike); the median call time of each."""
    rng = np.random.default_rng(seed)
    windows = [rng.integers(0, 65_536, window_tokens, dtype=np.int64) for _ in range(batch)]
    for runtime in runtimes:
        runtime.decode(windows)
        runtime.decode(windows)
    times: list[list[float]] = [[] for _ in runtimes]
    for _ in range(rounds):
        for k, runtime in enumerate(runtimes):
            t0 = time.perf_counter()
            runtime.decode(windows)
            times[k].append(time.perf_counter() - t0)
    audio_seconds = batch * window_tokens / TOKENS_PER_SECOND
    return [audio_seconds / float(np.median(t)) for t in times]


def snr_db(reference: np.ndarray, other: np.ndarray) -> float:
    """10 log10(|reference|^2 / |reference - other|^2)."""
    noise = float(np.sum((reference.astype(np.float64) - other) ** 2))
    return float("inf") if noise == 0 else 10 * np.log10(float(np.sum(reference.astype(np.float64) ** 2)) / noise)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full", help="random weights of this size")
    parser.add_argument("--model", default="", help="load this CODEC_MODEL (hub id or dir) instead")
    parser.add_argument("--windows", default="25,50,100,150", help="window lengths in tokens (50 = 1 s)")
    parser.add_argument("--batches", default="", help="batch sizes (default: 1,4,8 full; 1,2,4,8,16 tiny)")
    parser.add_argument("--buckets", default="", help="graph buckets in tokens (CUDA); also the padded lengths")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--dtype", choices=["auto", "float32", "bfloat16", "float16"], default="auto", help="the new runtime's"
    )
    parser.add_argument("--baseline", default="float32", help="dtype of the baseline runtime (eager); 'none': skip")
    parser.add_argument("--threads", default="0", help="torch CPU thread counts to try, e.g. 1,2 (0: torch's)")
    parser.add_argument("--compile", action="store_true", help="also measure the new dtype under torch.compile")
    parser.add_argument("--compile-cache", default="", help="TORCH_COMPILE_CACHE_DIR for --compile (run twice)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds per cell")
    parser.add_argument("--padded", action="store_true", help="also print the bucket-padded cost (old table)")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.batches:
        args.batches = "1,4,8" if args.size == "full" and not args.model else "1,2,4,8,16"
    windows = [int(w) for w in args.windows.split(",")]
    batches = [int(b) for b in args.batches.split(",")]
    common = {
        "size": args.size,
        "model": args.model,
        "device": args.device,
        "buckets": [int(b) for b in args.buckets.split(",") if b],
        "max_batch_size": max(batches),
        "max_window_tokens": max(windows),
    }
    from app.codec.precision import cpu_bf16_features, torch_cpu_capability

    if args.compile_cache:
        from app.codec.compiled import configure_compile_cache

        configure_compile_cache(args.compile_cache)
    thread_counts = [int(t) for t in args.threads.split(",")]
    if thread_counts[0] > 0:
        torch.set_num_threads(thread_counts[0])  # before compiling: inductor's CPU kernels keep the thread count
    runtimes = []
    if args.baseline != "none":
        runtimes.append(build_runtime(dtype=args.baseline, **common))
    runtimes.append(build_runtime(dtype=args.dtype, **common))
    if args.compile:
        start = time.perf_counter()
        runtimes.append(build_runtime(dtype=args.dtype, compile=True, **common))
        compiled = runtimes[-1].stats
        print(
            f"# torch.compile warm-up: {compiled.compile_seconds:.1f} s, {compiled.compiles} graphs (with model build {time.perf_counter() - start:.1f} s)"
        )
    size = args.model or args.size
    print(f"# NeuCodec decode throughput: {size}, {runtimes[0].device}; audio-s/s (valid audio), higher is better")
    print(
        f"# machine: {_machine()}; torch {torch.__version__}; CPU bf16 flags: {cpu_bf16_features() or 'none'}, "
        f"torch kernels {torch_cpu_capability() or '?'}; --dtype {args.dtype} -> {_label(runtimes[-1 if not args.compile else -2])}"
    )
    labels = [_label(r) for r in runtimes]
    with torch.inference_mode():
        rng = np.random.default_rng(1)
        tokens = [rng.integers(0, 65_536, 100, dtype=np.int64) for _ in range(4)]
        reference = np.concatenate(runtimes[0].decode(tokens))
        for label, runtime in zip(labels[1:], runtimes[1:], strict=True):
            print(
                f"# SNR of {label} vs {labels[0]} (same weights, 4 x 100 tokens): "
                f"{snr_db(reference, np.concatenate(runtime.decode(tokens))):.1f} dB"
            )
        header = f"{'threads':>7} {'window':>7} {'batch':>6} " + " ".join(f"{label:>17}" for label in labels)
        if len(runtimes) > 1:
            header += " " + " ".join(f"{'x ' + labels[0]:>15}" for _ in labels[1:])
        print(header)
        for threads in thread_counts:
            if threads > 0 and threads != torch.get_num_threads():
                torch.set_num_threads(threads)
                if args.compile:  # a new thread count is a new compile: warm a fresh runtime, not a recompile
                    start = time.perf_counter()
                    runtimes[-1] = build_runtime(dtype=args.dtype, compile=True, **common)
                    print(f"# torch.compile warm-up for {threads} threads: {time.perf_counter() - start:.1f} s")
            for window in windows:
                for batch in batches:
                    rates = compare(runtimes, window, batch, rounds=args.rounds)
                    line = f"{torch.get_num_threads():>7} {window:>7} {batch:>6} " + " ".join(
                        f"{r:>17.2f}" for r in rates
                    )
                    line += " " + " ".join(f"{r / rates[0]:>14.2f}x" for r in rates[1:])
                    print(line, flush=True)
        if args.padded:
            _padded_table(runtimes[-1], windows, batches, args)
    for label, runtime in zip(labels, runtimes, strict=True):
        print(f"# stats {label}: {runtime.stats}")
    print(f"# command: codec_bench.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    return 0


def _padded_table(runtime: CodecRuntime, windows: list[int], batches: list[int], args: argparse.Namespace) -> None:
    print(f"# {_label(runtime)}: exact lengths vs padded to the next bucket (the cost of CUDA-graph style padding)")
    print(
        f"{'window':>7} {'bucket':>7} {'batch':>6} {'exact a-s/s':>12} {'ms/batch':>9} {'padded a-s/s':>13} {'ms/batch':>9} {'pad cost':>9}"
    )
    for window in windows:
        result = measure_codec_ceiling(runtime, window, batches, min_seconds=args.min_seconds, reps=args.reps)
        for row in result["rows"]:
            exact, padded = row["exact"], row["padded"]
            cost = exact["audio_s_per_s"] / padded["audio_s_per_s"] - 1
            print(
                f"{window:>7} {result['bucket_tokens']:>7} {row['batch']:>6} {exact['audio_s_per_s']:>12.2f} "
                f"{exact['ms_per_batch']:>9.1f} {padded['audio_s_per_s']:>13.2f} {padded['ms_per_batch']:>9.1f} "
                f"{cost:>+9.0%}",
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
