"""Codec decode benchmark (prints, asserts nothing): raw NeuCodec decode throughput on the current device.

Audio-seconds decoded per wall-second, by batch size and window length, for windows decoded at their exact
length beside the same windows padded to a bucket (the cost of CUDA-graph style padding; the audio is the same).

    .venv/bin/python benchmarks/codec_bench.py --size full
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


def _build_runtime(args: argparse.Namespace) -> CodecRuntime:
    from app.codec.config import CodecConfig
    from app.codec.decoder import NeuCodecDecoder
    from app.codec.pretrained import cast_parameters, load_codec
    from app.codec.runtime import DTYPES, resolve_device

    device = resolve_device(args.device)
    dtype = DTYPES[args.dtype]
    if args.model:
        decoder, _ = load_codec(args.model, device=device, dtype=dtype)
    else:
        torch.manual_seed(0)
        decoder = cast_parameters(NeuCodecDecoder(CodecConfig.named(args.size)).to(device), dtype).eval()
    runtime = CodecRuntime(
        decoder,
        device=device,
        graph_buckets=[int(b) for b in args.buckets.split(",") if b] if args.buckets else (),
        max_batch_size=max(int(b) for b in args.batches.split(",")),
        torch_compile=args.compile,
    )
    runtime.warmup()
    return runtime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full", help="random weights of this size")
    parser.add_argument("--model", default="", help="load this CODEC_MODEL (hub id or dir) instead")
    parser.add_argument("--windows", default="20,40,65", help="window lengths in tokens (50 = 1 s)")
    parser.add_argument("--batches", default="", help="batch sizes (default: 1,4,8 full; 1,2,4,8,16 tiny)")
    parser.add_argument("--buckets", default="", help="graph buckets in tokens (CUDA); also the padded lengths")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default="float32")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (CUDA only)")
    parser.add_argument("--min-seconds", type=float, default=1.0)
    parser.add_argument("--reps", type=int, default=2)
    args = parser.parse_args(argv)
    if not args.batches:
        args.batches = "1,4,8" if args.size == "full" and not args.model else "1,2,4,8,16"
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    runtime = _build_runtime(args)
    size = args.model or args.size
    print(f"# NeuCodec decode throughput: {size}, {runtime.device}, {str(runtime.dtype).removeprefix('torch.')}")
    print(f"# machine: {_machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("# audio-s/s = seconds of audio decoded per wall-clock second (valid audio only); higher is better")
    print(
        f"{'window':>7} {'bucket':>7} {'batch':>6} {'exact a-s/s':>12} {'ms/batch':>9} {'padded a-s/s':>13} {'ms/batch':>9} {'pad cost':>9}"
    )
    with torch.inference_mode():
        for window in (int(w) for w in args.windows.split(",")):
            result = measure_codec_ceiling(
                runtime,
                window,
                [int(b) for b in args.batches.split(",")],
                min_seconds=args.min_seconds,
                reps=args.reps,
            )
            for row in result["rows"]:
                exact, padded = row["exact"], row["padded"]
                cost = exact["audio_s_per_s"] / padded["audio_s_per_s"] - 1
                print(
                    f"{window:>7} {result['bucket_tokens']:>7} {row['batch']:>6} {exact['audio_s_per_s']:>12.2f} "
                    f"{exact['ms_per_batch']:>9.1f} {padded['audio_s_per_s']:>13.2f} {padded['ms_per_batch']:>9.1f} "
                    f"{cost:>+9.0%}",
                    flush=True,
                )
    print(f"# stats: {runtime.stats}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
