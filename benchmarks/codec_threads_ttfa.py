"""CODEC_THREADS beside a CPU vLLM (issue 32, item 4): time to first audio at C=1, the old default and the new.

Two `tts-api` processes (as users run them, `tools.harness.tts_api_process`) on the tiny codec, served at the
same time in front of one vLLM dev backend on this box (`DEV_VLLM_URL`, else started here and stopped at the
end): one with `CODEC_THREADS=0` (the old default: torch's, every core), one with the code's default now (or
`--threads`). One request at a time, the two servers alternated (which goes first, too), each a one-sentence
streamed pcm request over a new connection, read whole. Time to first audio: the request sent -> the first
audio byte at this socket (the kernel's receive time, `benchmarks.longform_ttfa.first_audio`). Prints each
server's figures, p50, p90 and p90/p50 (the issue asks for at most 1.5 with the new default). Asserts nothing.

    python -m benchmarks.codec_threads_ttfa [--rounds 30] [--threads 0,1] [--pause 0.3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from pathlib import Path

from app.settings import Settings
from benchmarks.longform_ttfa import TINY, first_audio, lscpu_model, p90
from tools import vllm_server as dev
from tools.harness import tts_api_process

BODY = {"voice": "husein", "response_format": "pcm", "max_tokens": 60, "seed": 7, "temperature": 0.7}
TEXT = "Terima kasih kerana menghubungi kami, bagaimana saya boleh membantu anda hari ini?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", help="CODEC_THREADS values to compare (default: 0 and the code's default)")
    parser.add_argument("--pause", type=float, default=0.3, help="seconds between requests")
    parser.add_argument("--codec", type=Path, default=TINY, help="the codec checkpoint directory")
    args = parser.parse_args()
    default = Settings.model_fields["codec_threads"].default
    values = args.threads.split(",") if args.threads else ["0", str(default)]

    url = os.environ.get("DEV_VLLM_URL", "").rstrip("/") or dev.base_url()
    backend = None
    if dev.probe(url) is None:
        backend = dev.start()
        url = backend.url
    base = {
        "TTS_API": url, "CODEC_MODEL": str(args.codec.resolve()), "CODEC_LOAD_ENCODER": "false",
        "TEXT_NORMALIZER": "none", "LOG_LEVEL": "warning", "HOME": os.environ.get("HOME", "/tmp"),
    }  # fmt: skip
    print(f"# {lscpu_model()}, {os.cpu_count()} CPUs (affinity {len(os.sched_getaffinity(0))}), load "
          f"{os.getloadavg()[0]:.1f}; vLLM {url}; codec {args.codec}; CODEC_THREADS {' vs '.join(values)} "
          f"(code default {default}); {args.rounds} rounds, C=1")  # fmt: skip
    body = BODY | {"input": TEXT}
    try:
        with contextlib.ExitStack() as stack:
            apis = {}
            for threads in values:
                cwd = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                apis[threads], _ = stack.enter_context(tts_api_process(base | {"CODEC_THREADS": threads}, cwd=cwd))
            figures: dict[str, list[float]] = {t: [] for t in apis}
            for round_ in range(args.rounds + 1):  # round 0 warms up
                order = list(apis) if round_ % 2 == 0 else list(reversed(apis))
                for threads in order:
                    ttfa = first_audio(apis[threads], body, whole=True)
                    if round_:
                        figures[threads].append(ttfa)
                    time.sleep(args.pause)
            for threads, values_s in figures.items():
                p50, p90_ = statistics.median(values_s), p90(values_s)
                label = f"CODEC_THREADS={threads}" + (" (new default)" if threads == str(default) else "")
                print(f"{label}: ttfa ms {' '.join(f'{v * 1e3:.0f}' for v in values_s)}")
                print(f"{label}: p50 {p50 * 1e3:.0f} ms, p90 {p90_ * 1e3:.0f} ms, p90/p50 {p90_ / p50:.2f}, "
                      f"max {max(values_s) * 1e3:.0f} ms")  # fmt: skip
    finally:
        if backend is not None and backend.started:
            dev.stop()


if __name__ == "__main__":
    main()
