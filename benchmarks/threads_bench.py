"""Why the engine keeps one torch thread (prints, asserts nothing): decode throughput on a decode thread, alone
and while a second thread holds an OpenMP team, measured in one run (`app/engine/threads.py`).

torch's CPU kernels run on an OpenMP team owned by the calling thread; the team lives as long as that thread.
This loads the codec and decodes on one thread (as the engine's decode thread does), then times the same
batches while another thread that has run a torch op (with torch's thread count, or with one thread) is still
alive, and after it has ended.

    .venv/bin/python benchmarks/threads_bench.py --size full --windows 100 --batch 8
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

if __package__ in (None, ""):  # run as a script: make `app` and `benchmarks` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.codec_bench import build_runtime  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "full"], default="full")
    parser.add_argument("--dtype", default="auto", help="CODEC_DTYPE of the runtime")
    parser.add_argument("--windows", type=int, default=100, help="tokens per window")
    parser.add_argument("--batch", type=int, default=8, help="windows per batch")
    parser.add_argument("--seconds", type=float, default=4.0, help="timing per case")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds of every case")
    args = parser.parse_args(argv)

    jobs: queue.Queue = queue.Queue()
    done: queue.Queue = queue.Queue()

    def decode_thread() -> None:  # loads, warms up and decodes: the engine's decode thread
        runtime = build_runtime(size=args.size, dtype=args.dtype, max_batch_size=args.batch)
        rng = np.random.default_rng(0)
        windows = [rng.integers(0, runtime.codebook_size, args.windows) for _ in range(args.batch)]
        runtime.decode(windows)
        done.put(str(runtime.dtype).removeprefix("torch."))
        while jobs.get():
            wall0, cpu0, n = time.perf_counter(), time.process_time(), 0
            while time.perf_counter() - wall0 < args.seconds:
                runtime.decode(windows)
                n += 1
            wall = time.perf_counter() - wall0
            done.put((n * args.batch * args.windows / 50 / wall, (time.process_time() - cpu0) / wall))

    def other_thread(threads: int, hold: threading.Event) -> None:
        if threads:
            torch.set_num_threads(threads)
        a = torch.randn(512, 512)
        (a @ a).sum()  # a parallel op: this thread now owns an OpenMP team
        hold.wait()

    worker = threading.Thread(target=decode_thread, name="decode", daemon=True)
    worker.start()
    dtype = done.get()
    threads = torch.get_num_threads()

    def timed() -> tuple[float, float]:
        jobs.put(True)
        return done.get()

    cases = {
        "decode thread alone": None,
        f"while another thread holds a team of {threads}": threads,
        "while another thread holds a team of 1": 1,
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    results["after that thread has ended"] = []
    for _ in range(args.rounds):
        for name, team in cases.items():
            if team is None:
                results[name].append(timed())
                continue
            hold = threading.Event()
            other = threading.Thread(target=other_thread, args=(team if team != threads else 0, hold), daemon=True)
            other.start()
            time.sleep(0.2)
            results[name].append(timed())
            hold.set()
            other.join()
            if team == threads:
                results["after that thread has ended"].append(timed())
        torch.set_num_threads(threads)  # the 1-thread case changed torch's count for threads started later
    jobs.put(False)

    print(f"# {args.size} random NeuCodec, {dtype}, batch {args.batch} x {args.windows} tokens; "
          f"torch {torch.__version__}, {threads} threads, {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}")
    print(f"{'case':<48} {'audio-s/s':>9} {'cores busy':>10} {'vs alone':>8}")
    alone = float(np.median([r for r, _ in results["decode thread alone"]]))
    for name, rows in results.items():
        rate = float(np.median([r for r, _ in rows]))
        cores = float(np.median([c for _, c in rows]))
        print(f"{name:<48} {rate:>9.1f} {cores:>10.2f} {rate / alone:>7.2f}x")


if __name__ == "__main__":
    main()
