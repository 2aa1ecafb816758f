"""Stitching benchmark (prints, asserts nothing): our windowing against the spec's original scheme.

For the full-size random-weight NeuCodec decoder and tokens arriving at a set rate (default 400 tokens/s, as
the fake backend would send them), it prints per scheme: time to first audio (token arrival simulated, decode
measured), tokens decoded per token emitted, and the SNR of the stitched stream against decoding all tokens at
once. The original scheme decodes each 75-token chunk inside a 150-token window and butt-joins the chunks.

    python benchmarks/stitch_bench.py [--size full|tiny] [--tokens 500] [--rate 400]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from app.audio.stitch import StitchPlan, StreamStitcher, apply_fade_in
from app.codec.config import CodecConfig
from app.codec.decoder import NeuCodecDecoder
from app.codec.runtime import CodecRuntime

SPT = 480


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    noise = np.sum((ref.astype(np.float64) - out) ** 2)
    return float("inf") if noise == 0 else 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / noise)


def run_ours(
    plan: StitchPlan, tokens: np.ndarray, decode: Callable[[np.ndarray], np.ndarray], rate: float, step: int = 1
) -> tuple[np.ndarray, float, int]:
    """Stitched audio, time to first audio (simulated arrival + real decode), tokens decoded. After the first
    window, tokens come `step` at a time (a codec that is behind finds that many new ones at each window)."""
    st = StreamStitcher(plan)
    out: list[np.ndarray] = []
    ttfa = None
    n = len(tokens)
    first = plan.first_chunk_tokens + plan.overlap_tokens
    for avail in sorted({*range(1, min(first, n) + 1), *range(first, n, step), n}):
        finished = avail == n
        while (w := st.next_window(avail, finished)) is not None:
            t0 = time.perf_counter()
            audio = decode(tokens[w.start : w.end])
            if ttfa is None:
                ttfa = avail / rate + (time.perf_counter() - t0)
            out.append(st.emit(w, audio))
    return np.concatenate(out), float(ttfa or 0.0), st.decoded_tokens


def run_original(
    tokens: np.ndarray, decode: Callable[[np.ndarray], np.ndarray], rate: float, chunk: int = 75, window: int = 150
) -> tuple[np.ndarray, float, int]:
    out: list[np.ndarray] = []
    decoded = emitted = 0
    ttfa = None
    n = len(tokens)
    for end in [*range(chunk, n, chunk), n]:
        start = max(0, end - window)
        t0 = time.perf_counter()
        audio = decode(tokens[start:end])
        if ttfa is None:
            ttfa = end / rate + (time.perf_counter() - t0)
        decoded += end - start
        out.append(audio[(emitted - start) * SPT :])
        emitted = end
    return np.concatenate(out), float(ttfa or 0.0), decoded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--tokens", type=int, default=500, help="speech tokens per stream (50 = 1 s)")
    parser.add_argument("--rate", type=float, default=400.0, help="backend tokens/s per stream")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    runtime = CodecRuntime(NeuCodecDecoder(CodecConfig.named(args.size)))
    runtime.warmup()
    tokens = np.random.default_rng(args.seed).integers(0, 65536, args.tokens)

    def decode(window: np.ndarray) -> np.ndarray:
        return runtime.decode([window])[0]

    reference = decode(tokens)
    print(f"# stitch benchmark: {args.size} random NeuCodec, {args.tokens} tokens, {args.rate:g} tokens/s arrival")
    print(f"# machine: {platform.machine()} {platform.processor() or ''}, torch threads {torch.get_num_threads()}, "
          f"device {runtime.device}")
    print(f"{'scheme':<46} {'TTFA ms':>8} {'decoded/emitted':>16} {'SNR dB':>8}")
    schemes = {
        "ours (1.5 s chunks, 0.2 s xfade, 0.3 s ctx)": StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3, geometry=runtime.geometry),
        "ours, 0.6 s left context": StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.6, geometry=runtime.geometry),
        "ours, 1.0 s left context": StitchPlan.from_seconds(1.5, 0.2, 0.4, 1.0, geometry=runtime.geometry),
        "ours, no left context": StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.0, geometry=runtime.geometry),
        "ours (0.5 s chunks, 0.1 s xfade, 0.3 s ctx)": StitchPlan.from_seconds(0.5, 0.1, 0.2, 0.3, geometry=runtime.geometry),
    }
    for name, plan in schemes.items():
        audio, ttfa, decoded = run_ours(plan, tokens, decode, args.rate)
        ref = apply_fade_in(reference, plan.fade_in_samples)
        print(f"{name:<46} {ttfa * 1e3:8.0f} {decoded / len(tokens):16.2f} {snr_db(ref, audio):8.1f}")
    # a codec 3 s behind: 150 new tokens at each window, stitched with regular windows or windows that catch up
    for name, plan in {
        "behind, regular windows (MAX_CHUNK_SECONDS off)": StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3, geometry=runtime.geometry),
        "behind, windows that catch up (3 s)": StitchPlan.from_seconds(1.5, 0.2, 0.4, 0.3, max_chunk_seconds=3.0, geometry=runtime.geometry),
    }.items():
        audio, ttfa, decoded = run_ours(plan, tokens, decode, args.rate, step=150)
        ref = apply_fade_in(reference, plan.fade_in_samples)
        print(f"{name:<46} {ttfa * 1e3:8.0f} {decoded / len(tokens):16.2f} {snr_db(ref, audio):8.1f}")
    audio, ttfa, decoded = run_original(tokens, decode, args.rate)
    assert len(audio) == len(reference)
    print(f"{'original (75-token chunk in 150-token window)':<46} {ttfa * 1e3:8.0f} "
          f"{decoded / len(tokens):16.2f} {snr_db(reference, audio):8.1f}")


if __name__ == "__main__":
    main()
