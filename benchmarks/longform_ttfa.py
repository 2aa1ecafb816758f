"""A long reply's time to first audio beside a one-sentence request's (issue 21), on the real vLLM dev backend.

`tts-api` runs in its own process, as users run it (`tools.harness.tts_api_process`): the tiny codec (or
`--codec`), the default text normalizer (malaya for Malay), in front of the vLLM dev backend (`DEV_VLLM_URL`, else
started here and stopped at the end). For each language: one warm-up pair, then `--rounds` rounds that alternate
which request goes first, each round

- a one-sentence request: the long text's first segment alone, read whole;
- the ~4,000-character text (`tools.long_texts`, 21-22 segments): read to its first audio, then closed (which
  cancels every segment's backend request; the next request waits `--pause` seconds for that to settle).

Time to first audio: the request sent -> the first byte of audio at the client's socket (the kernel's receive
timestamp of its packet, so the moments this client process waits for a core on the loaded 2-core box do not
count: a caller is on another machine), streamed 16-bit pcm, over a new connection each time. Prints each request's figure, each language's median, p90 and maximum, the ratio long / one sentence
of the medians, and the median of each round's long - one difference (the two were measured moments apart, so a
drift of the box's speed cancels). Asserts nothing (a timing on a shared CPU box).

    python -m benchmarks.longform_ttfa [--rounds 10] [--languages ms,en] [--codec DIR] [--codec-threads 1]
        [--pause 0.5] [--compare OTHER_CHECKOUT] [--log FILE]

`--compare`: a second `tts-api` from another checkout (e.g. `git worktree add /tmp/before HEAD~1`) served at
the same time, its requests interleaved with this one's, so both are measured in one run on one box.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from app.settings import Settings
from app.text.segmenter import whole_text_segments
from tools import vllm_server as dev
from tools.harness import tts_api_process
from tools.long_texts import ENGLISH, MALAY, long_text

REPO = Path(__file__).resolve().parents[1]
TINY = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny"))
BODY = {"voice": "husein", "response_format": "pcm", "max_tokens": 40, "seed": 7, "temperature": 0.7}
TEXTS = {"ms": MALAY, "en": ENGLISH}


SO_TIMESTAMPNS = 35  # Linux (asm-generic): the kernel's receive time of each packet, as a timespec


def first_audio(url: str, body: dict, *, whole: bool) -> float:
    """Seconds from sending `body` to the arrival of the first audio byte at this socket (the kernel's receive
    timestamp: the time this client process then waits for a core on a busy box is not the server's); the rest
    read (`whole`) or the connection closed. A plain HTTP/1.1 request over a new connection."""
    parts = urlsplit(url)
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/audio/speech HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=300) as sock:
        stamped = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            stamped = False
        started = time.time()  # the kernel stamps packets with the real-time clock
        sock.sendall(head + payload)
        received, ttfa = b"", None
        while True:
            data, ancillary, _, _ = sock.recvmsg(1 << 16, socket.CMSG_SPACE(16))
            if not data:
                break
            arrived = time.time()
            for level, kind, value in ancillary:
                if stamped and level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    seconds, nanoseconds = struct.unpack("qq", value[:16])
                    arrived = seconds + nanoseconds * 1e-9
            received += data
            if ttfa is None and has_audio(received):
                ttfa = arrived - started
                if not whole:
                    break
    if ttfa is None:
        raise RuntimeError(f"no audio: {received[:300]!r}")
    return ttfa


def has_audio(received: bytes) -> bool:
    """A 200 whose body (chunked, as a streamed response is) has its first byte of audio here."""
    end = received.find(b"\r\n\r\n")
    if end < 0:
        return False
    status = received.split(b" ", 2)[1]
    if status != b"200":
        raise RuntimeError(f"HTTP {status.decode()}: {received[:300]!r}")
    body = received[end + 4 :]
    line = body.find(b"\r\n")
    return line >= 0 and int(body[:line].split(b";")[0] or b"0", 16) > 0 and len(body) > line + 2


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def lscpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor()
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")]
    return names[0] if names else platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--languages", default="ms,en")
    parser.add_argument("--codec", type=Path, default=TINY, help="the codec checkpoint directory")
    parser.add_argument("--codec-threads", default="1", help="CODEC_THREADS (1: vLLM shares this box's cores)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between requests")
    parser.add_argument("--compare", type=Path, help="another checkout (a git worktree) served beside this one")
    parser.add_argument("--log", type=Path, help="tts-api's log (LOG_LEVEL=info: each request's own ttfa) to this file")
    args = parser.parse_args()

    url = os.environ.get("DEV_VLLM_URL", "").rstrip("/") or dev.base_url()
    backend = None
    if dev.probe(url) is None:
        backend = dev.start()
        url = backend.url
    streaming = Settings(_env_file=None).streaming
    env = {
        "TTS_API": url, "CODEC_MODEL": str(args.codec.resolve()), "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": args.codec_threads, "LOG_LEVEL": "info" if args.log else "warning",
        "HOME": os.environ.get("HOME", "/tmp"),
    }
    repos = {"this": REPO} | ({"compare": args.compare.resolve()} if args.compare else {})
    print(f"# {lscpu_model()}, {os.cpu_count()} CPUs; vLLM {url}; codec {args.codec}, CODEC_THREADS={args.codec_threads}; "
          f"{args.rounds} rounds; " + ", ".join(f"{k}: {v}" for k, v in repos.items()))
    try:
        with contextlib.ExitStack() as stack:
            apis = {}
            for name, repo in repos.items():
                cwd = Path(stack.enter_context(tempfile.TemporaryDirectory()))
                log = args.log.with_suffix(f".{name}{args.log.suffix}") if args.log and len(repos) > 1 else args.log
                apis[name], _ = stack.enter_context(tts_api_process(env, cwd=cwd, log=log, repo=repo))
            for language in args.languages.split(","):
                text = long_text(TEXTS[language])
                segments = whole_text_segments(
                    text, max_chars=streaming.segment_max_chars, first_max_chars=streaming.first_segment_chars
                )
                one = BODY | {"input": segments[0], "language": language}
                long = BODY | {"input": text, "language": language}
                figures = {(api, kind): [] for api in apis for kind in ("one", "long")}
                for round_ in range(args.rounds + 1):  # round 0 warms up
                    order = [(api, kind) for api in apis for kind in ("one", "long")]
                    if round_ % 2:  # which server, and which request, goes first: alternated
                        order.reverse()
                    for api, kind in order:
                        ttfa = first_audio(apis[api], one if kind == "one" else long, whole=kind == "one")
                        if round_:
                            figures[api, kind].append(ttfa)
                        time.sleep(args.pause)
                print(f"{language}: {len(text)} chars, {len(segments)} segments (the first {len(segments[0])} chars)")
                for api in apis:
                    ones, longs = figures[api, "one"], figures[api, "long"]
                    m_one, m_long = statistics.median(ones), statistics.median(longs)
                    paired = statistics.median(b - a for a, b in zip(ones, longs, strict=True))
                    print(
                        f"  {api}: one sentence ms: {' '.join(f'{v * 1e3:.0f}' for v in ones)}\n"
                        f"  {api}: long text    ms: {' '.join(f'{v * 1e3:.0f}' for v in longs)}\n"
                        f"  {api}: median {m_one * 1e3:.0f} vs {m_long * 1e3:.0f} ms (long / one x{m_long / m_one:.2f}); "
                        f"p90 {p90(ones) * 1e3:.0f} vs {p90(longs) * 1e3:.0f} ms; max {max(ones) * 1e3:.0f} vs "
                        f"{max(longs) * 1e3:.0f} ms; long - one within a round: median {paired * 1e3:+.0f} ms"
                    )
    finally:
        if backend is not None and backend.started:
            dev.stop()


if __name__ == "__main__":
    main()
