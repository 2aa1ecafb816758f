"""Repeated `/v1/audio/vc` of one clip, with the reference cache off and on (prints, asserts nothing).

One run: the service on the fake vLLM and the real codec engine process (the tiny codec with its encoder, or
`--codec` / `--semantic` directories), once with `REFERENCE_CACHE_SIZE=0` and once with the default. Each
uploads the same clip and transcript `--repeats` times, streamed pcm, and prints the time to first audio
(request sent -> first body byte) of each upload; with the cache, every upload after the first skips decoding
the clip and the encoder.

    python -m benchmarks.vc_cache_bench [--seconds 10] [--repeats 8] [--codec DIR] [--semantic DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import PassthroughNormalizer, serve

REPO = Path(__file__).resolve().parents[1]
TINY = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))
TRANSCRIPT = "Saya suka makan nasi lemak pada waktu pagi, dengan sambal dan telur rebus."
TEXT = "Terima kasih kerana menghubungi kami. Ada apa-apa lagi yang boleh saya bantu?"


def clip(seconds: float, rate: int = 24_000) -> bytes:
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    voice = np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) + 0.05 * rng.standard_normal(t.size)
    buf = io.BytesIO()
    sf.write(buf, (0.3 * voice).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def ttfa(url: str, audio: bytes) -> float:
    data = {"reference_text": TRANSCRIPT, "generate_text": TEXT, "response_format": "pcm"}
    t0 = time.perf_counter()
    with httpx.stream("POST", f"{url}/v1/audio/vc", data=data, files={"reference_audio": ("c.wav", audio)},
                      timeout=120) as resp:
        resp.raise_for_status()
        first = None
        for _ in resp.iter_bytes():
            first = first or time.perf_counter() - t0
    return first or float("nan")


def run(args: argparse.Namespace, cache_size: int, fake: FakeVLLM, audio: bytes) -> list[float]:
    settings = Settings(
        _env_file=None, tts_api=fake.url, codec_model=str(args.codec), semantic_model=str(args.semantic),
        codec_load_encoder=True, codec_threads=args.threads, reference_cache_size=cache_size,
        voice_store_url="sqlite://", text_normalizer="none", log_level="warning",
    )
    with serve(settings, Components(normalizer=PassthroughNormalizer())) as url:
        ttfa(url, clip(1.0))  # warm-up: the first encode and decode of the process
        return [ttfa(url, audio) for _ in range(args.repeats)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the reference clip")
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--codec", type=Path, default=TINY)
    parser.add_argument("--semantic", type=Path, default=None, help="default: <codec>/semantic")
    parser.add_argument("--threads", type=int, default=0, help="CODEC_THREADS")
    parser.add_argument("--rate", type=float, default=0.0, help="the fake's tokens per second (0: at once)")
    args = parser.parse_args()
    args.semantic = args.semantic or args.codec / "semantic"
    audio = clip(args.seconds)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; codec {args.codec};"
          f" clip {args.seconds:g} s ({len(audio)} bytes); {args.repeats} uploads each")
    with FakeVLLM(n_tokens=100, rate=args.rate) as fake:
        off = run(args, 0, fake, audio)
        on = run(args, 64, fake, audio)
    print("| upload | cache off: TTFA (ms) | cache on: TTFA (ms) |")
    print("|---:|---:|---:|")
    for i, (a, b) in enumerate(zip(off, on, strict=True), 1):
        print(f"| {i} | {a * 1000:.0f} | {b * 1000:.0f}{' (miss)' if i == 1 else ''} |")
    print(f"| median of 2-{args.repeats} | {statistics.median(off[1:]) * 1000:.0f} |"
          f" {statistics.median(on[1:]) * 1000:.0f} |")


if __name__ == "__main__":
    main()
