"""Forced-aligner cost (prints, asserts nothing): seconds of compute per second of audio for a random-weight
wav2vec2 CTC aligner, the model's forward pass and the Viterbi alignment apart, by batch size.

Random weights, so the figures are cost only: the alignments mean nothing (not checked with trained weights).
The sizes: "tiny" (the tests' model) and "mms-300m" (the shape of MahmoudAshraf/mms-300m-1130-forced-aligner,
wav2vec2-large: 24 layers x 1024, about 315M parameters).

    python -m benchmarks.aligner [--size tiny|mms-300m] [--seconds 5] [--batches 1,4] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from app.align.checkpoint import MMS_LABELS, random_model
from app.align.ctc import forced_align
from app.align.model import CTCAligner
from app.align.text import Vocabulary

LETTERS_PER_SECOND = 14  # about what speech holds: the Viterbi's cost grows with it


def measure(size: str, seconds: float, batches: list[int], device: str, reps: int = 3) -> list[dict]:
    """One row per batch size: forward and Viterbi time per audio-second (the best of `reps` runs: the machine
    may be shared)."""
    aligner = CTCAligner(random_model(size).to(device), Vocabulary({t: i for i, t in enumerate(MMS_LABELS)}, 0))
    params = sum(p.numel() for p in aligner.model.parameters())
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(int(seconds * 16_000))).astype(np.float32)
    # random letters (ids 4-30): the text side needs pypinyin and Unidecode, which a GPU machine may lack
    tokens = rng.integers(4, len(MMS_LABELS), int(LETTERS_PER_SECOND * seconds))
    rows = []
    for batch in batches:
        aligner.emissions([clip] * batch)  # warm-up of this shape (allocator, kernels)
        forward, viterbi = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            emissions = aligner.emissions([clip] * batch)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t1 = time.perf_counter()
            for emission in emissions:
                forced_align(emission, tokens, aligner.vocab.blank)
            t2 = time.perf_counter()
            forward.append(t1 - t0)
            viterbi.append(t2 - t1)
        audio = batch * seconds
        rows.append({
            "size": size, "params_m": round(params / 1e6, 2), "device": device, "batch": batch,
            "clip_s": seconds, "letters": len(tokens),
            "forward_s_per_audio_s": min(forward) / audio,
            "viterbi_s_per_audio_s": min(viterbi) / audio,
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=["tiny", "mms-300m"])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each clip")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON lines")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, torch "
          f"{torch.__version__}, device {args.device}; random weights (cost only)")
    rows = measure(args.size, args.seconds, [int(b) for b in args.batches.split(",")], args.device)
    for row in rows:
        if args.json:
            print(json.dumps(row))
        total = row["forward_s_per_audio_s"] + row["viterbi_s_per_audio_s"]
        print(f"{row['size']} ({row['params_m']}M params) batch {row['batch']} x {row['clip_s']:g} s: forward "
              f"{1e3 * row['forward_s_per_audio_s']:.1f} ms, Viterbi {1e3 * row['viterbi_s_per_audio_s']:.1f} ms "
              f"per audio-second ({total:.3f} s/s, {1 / total:.1f}x real time)")


if __name__ == "__main__":
    main()
