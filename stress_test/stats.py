"""Pure maths of the stress test: percentiles, audio duration from the bytes received, the report text.

Nothing here does I/O, so all of it is unit-tested without a server.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

ResponseFormat = Literal["pcm", "wav"]

PCM_SAMPLE_RATE = 24_000
PCM_SAMPLE_WIDTH = 2  # bytes, signed 16-bit little-endian
PCM_CHANNELS = 1
PCM_BYTES_PER_SECOND = PCM_SAMPLE_RATE * PCM_SAMPLE_WIDTH * PCM_CHANNELS  # 48_000

# A streaming WAV writer cannot know its sizes up front: it writes a placeholder (0xFFFFFFFF, or 0) in the
# RIFF and data size fields. Such a size means "until the end of the stream".
WAV_UNKNOWN_SIZES = frozenset({0, 0xFFFFFFFF})
WAV_HEAD_BYTES = 4096  # the client keeps this much of the body to find the data chunk

PERCENTILES = (50.0, 90.0, 95.0, 99.0)


# --- percentiles ----------------------------------------------------------------------------------


def percentile(values: Iterable[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be within [0, 100], got {q}")
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    frac = pos - lo
    return xs[lo] + (xs[hi] - xs[lo]) * frac


@dataclass(frozen=True)
class Distribution:
    """Min, max, mean and the report's percentiles of one measured quantity."""

    count: int
    min: float
    max: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution | None:
        """None for no values, so a level where every request failed still reports."""
        if not values:
            return None
        p50, p90, p95, p99 = (percentile(values, q) for q in PERCENTILES)
        return cls(len(values), min(values), max(values), math.fsum(values) / len(values), p50, p90, p95, p99)


# --- audio duration from the bytes received ---------------------------------------------------------


class IncompleteWavHeader(ValueError):
    """More bytes are needed before the WAV header can be read."""


@dataclass(frozen=True)
class WavHeader:
    sample_rate: int
    channels: int
    bits_per_sample: int
    data_offset: int  # byte offset of the first sample
    data_size: int | None  # None: a streaming placeholder, the data runs to the end of the body

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.bits_per_sample // 8


def _u16(buf: bytes, at: int) -> int:
    return int.from_bytes(buf[at : at + 2], "little")


def _u32(buf: bytes, at: int) -> int:
    return int.from_bytes(buf[at : at + 4], "little")


def parse_wav_header(head: bytes) -> WavHeader:
    """Read a RIFF/WAVE header up to the start of its data chunk.

    Raises IncompleteWavHeader when `head` ends before the data chunk, ValueError when it is no WAV.
    """
    if len(head) < 12:
        if not b"RIFF".startswith(head[:4]) or not b"WAVE".startswith(head[8:12]):
            raise ValueError("not a RIFF/WAVE stream")
        raise IncompleteWavHeader("fewer than 12 bytes")
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE stream")
    pos = 12
    fmt: tuple[int, int, int] | None = None
    while True:
        if pos + 8 > len(head):
            if len(head) >= WAV_HEAD_BYTES:
                raise ValueError(f"no data chunk in the first {WAV_HEAD_BYTES} bytes")
            raise IncompleteWavHeader("chunk header cut")
        chunk_id, size, body = head[pos : pos + 4], _u32(head, pos + 4), pos + 8
        if chunk_id == b"data":
            if fmt is None:
                raise ValueError("data chunk before fmt chunk")
            rate, channels, bits = fmt
            return WavHeader(rate, channels, bits, body, None if size in WAV_UNKNOWN_SIZES else size)
        if size == 0xFFFFFFFF:
            raise ValueError(f"chunk {chunk_id!r} of unknown size before the data chunk")
        if chunk_id == b"fmt ":
            if body + 16 > len(head):
                raise IncompleteWavHeader("fmt chunk cut")
            channels, rate, bits = _u16(head, body + 2), _u32(head, body + 4), _u16(head, body + 14)
            if channels < 1 or rate < 1 or bits < 8 or bits % 8:
                raise ValueError(f"unsupported WAV format: {channels} channels, {rate} Hz, {bits} bits")
            fmt = (rate, channels, bits)
        pos = body + size + (size & 1)  # chunks are padded to an even size


def audio_payload_bytes(response_format: ResponseFormat, head: bytes, total_bytes: int) -> int:
    """Bytes of audio samples among the first `total_bytes` of a response body; `head` is its start.

    For WAV, 0 until the whole header has arrived, then the data chunk's bytes received so far (whole
    frames), capped by the declared data size unless that size is a streaming placeholder.
    """
    if response_format == "pcm":
        return total_bytes - total_bytes % (PCM_SAMPLE_WIDTH * PCM_CHANNELS)
    if response_format != "wav":
        raise ValueError(f"response_format must be 'pcm' or 'wav', got {response_format!r}")
    try:
        header = parse_wav_header(head)
    except IncompleteWavHeader:
        return 0
    available = max(0, total_bytes - header.data_offset)
    size = available if header.data_size is None else min(header.data_size, available)
    return size - size % header.frame_bytes


def audio_duration(response_format: ResponseFormat, head: bytes, total_bytes: int) -> float:
    """Seconds of audio in a response body of `total_bytes` bytes (PCM: 24 kHz, 16-bit, mono)."""
    payload = audio_payload_bytes(response_format, head, total_bytes)
    if response_format == "pcm":
        return payload / PCM_BYTES_PER_SECOND
    if payload == 0:
        return 0.0
    header = parse_wav_header(head)
    return payload / (header.sample_rate * header.frame_bytes)


# --- results and summaries ------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestResult:
    """One request: times in seconds from the moment it was sent."""

    index: int
    ok: bool
    latency: float  # until the last byte (or the failure)
    ttfa: float | None = None  # until the first audio sample byte
    audio_seconds: float = 0.0
    body_bytes: int = 0
    status: int | None = None
    timed_out: bool = False
    error: str | None = None  # short kind, e.g. "HTTP 503", "timeout", "ConnectError"
    detail: str | None = None  # a little of the error body or message

    @property
    def rtf(self) -> float | None:
        """Real-time factor: seconds spent per second of audio (below 1 is faster than real time)."""
        return self.latency / self.audio_seconds if self.ok and self.audio_seconds > 0 else None


@dataclass(frozen=True)
class LevelSummary:
    """Everything the report prints for one concurrency level."""

    concurrency: int
    total_requests: int
    succeeded: int
    failed: int
    timeouts: int
    wall_seconds: float
    latency: Distribution | None
    ttfa: Distribution | None
    rtf: Distribution | None
    audio: Distribution | None
    total_audio_seconds: float
    throughput: float  # audio seconds produced per wall-clock second
    requests_per_second: float
    errors: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def summarize(concurrency: int, results: Sequence[RequestResult], wall_seconds: float) -> LevelSummary:
    """Latency, TTFA, RTF and audio statistics over the successful requests; counts over all of them."""
    ok = [r for r in results if r.ok]
    total_audio = math.fsum(r.audio_seconds for r in ok)
    rtfs = [r.rtf for r in ok if r.rtf is not None]
    ttfas = [r.ttfa for r in ok if r.ttfa is not None]
    errors = Counter(r.error or "unknown" for r in results if not r.ok)
    return LevelSummary(
        concurrency=concurrency,
        total_requests=len(results),
        succeeded=len(ok),
        failed=len(results) - len(ok),
        timeouts=sum(1 for r in results if r.timed_out),
        wall_seconds=wall_seconds,
        latency=Distribution.of([r.latency for r in ok]),
        ttfa=Distribution.of(ttfas),
        rtf=Distribution.of(rtfs),
        audio=Distribution.of([r.audio_seconds for r in ok]),
        total_audio_seconds=total_audio,
        throughput=total_audio / wall_seconds if wall_seconds > 0 else 0.0,
        requests_per_second=len(ok) / wall_seconds if wall_seconds > 0 else 0.0,
        errors=dict(sorted(errors.items())),
    )


# --- the report -----------------------------------------------------------------------------------


def _num(value: float | None, unit: str = "") -> str:
    return "n/a" if value is None else f"{value:.3f}{unit}"


def _attr(dist: Distribution | None, name: str) -> float | None:
    return None if dist is None else getattr(dist, name)


def format_report(summary: LevelSummary) -> str:
    """The original service's report, line for line (its "Min RTF"/"Max RTF" carry an "s", as there).

    Latency, RTF and audio figures are over the successful requests; "Total Requests" counts all sent.
    """
    lat, rtf = summary.latency, summary.rtf
    lines = [
        "=== SLO LATENCY REPORT ===",
        f"Total Requests: {summary.total_requests}",
        f"Min Time: {_num(_attr(lat, 'min'), 's')}",
        f"Max Time: {_num(_attr(lat, 'max'), 's')}",
        f"Avg Time: {_num(_attr(lat, 'mean'), 's')}",
        f"P50 (Median): {_num(_attr(lat, 'p50'), 's')}",
        f"P90: {_num(_attr(lat, 'p90'), 's')}",
        f"P95: {_num(_attr(lat, 'p95'), 's')}",
        f"P99: {_num(_attr(lat, 'p99'), 's')}",
        "",
        "=== AUDIO & REAL-TIME FACTOR (RTF) REPORT ===",
        f"Avg Audio Duration: {_num(_attr(summary.audio, 'mean'), 's')}",
        "",
        "--- RTF Percentiles ---",
        f"Min RTF: {_num(_attr(rtf, 'min'), 's')}",
        f"Max RTF: {_num(_attr(rtf, 'max'), 's')}",
        f"Avg RTF: {_num(_attr(rtf, 'mean'))}",
        f"P50 RTF: {_num(_attr(rtf, 'p50'))}",
        f"P90 RTF: {_num(_attr(rtf, 'p90'))}",
        f"P95 RTF: {_num(_attr(rtf, 'p95'))}",
        f"P99 RTF: {_num(_attr(rtf, 'p99'))}",
        "==========================",
    ]
    return "\n".join(lines)


def format_extra_report(summary: LevelSummary, *, stream: bool) -> str:
    """What the original report lacks: errors, time to first audio, throughput."""
    ttfa = summary.ttfa
    label = "TTFA" if stream else "TTFA (stream=false: whole body)"
    lines = [
        "=== STREAMING & THROUGHPUT REPORT ===",
        f"Concurrency: {summary.concurrency}",
        f"Succeeded: {summary.succeeded}",
        f"Failed: {summary.failed} (timeouts: {summary.timeouts})",
        f"Wall Time: {summary.wall_seconds:.3f}s",
        f"Total Audio: {summary.total_audio_seconds:.3f}s",
        f"Throughput: {summary.throughput:.3f} audio-s/wall-s",
        f"Requests/s: {summary.requests_per_second:.3f}",
        "",
        f"--- {label} Percentiles ---",
        f"Min TTFA: {_num(_attr(ttfa, 'min'), 's')}",
        f"Max TTFA: {_num(_attr(ttfa, 'max'), 's')}",
        f"Avg TTFA: {_num(_attr(ttfa, 'mean'), 's')}",
        f"P50 TTFA: {_num(_attr(ttfa, 'p50'), 's')}",
        f"P90 TTFA: {_num(_attr(ttfa, 'p90'), 's')}",
        f"P95 TTFA: {_num(_attr(ttfa, 'p95'), 's')}",
        f"P99 TTFA: {_num(_attr(ttfa, 'p99'), 's')}",
    ]
    if summary.errors:
        lines += ["", "--- Errors ---"] + [f"{kind}: {count}" for kind, count in summary.errors.items()]
    lines.append("==========================")
    return "\n".join(lines)


def format_sweep(summaries: Sequence[LevelSummary]) -> str:
    """One line per concurrency level, to compare levels at a glance."""
    header = (
        f"{'concurrency':>11} {'ok/total':>9} {'p50 s':>8} {'p95 s':>8} {'p50 ttfa':>9} {'avg rtf':>8} {'audio-s/s':>9}"
    )
    rows = [
        f"{s.concurrency:>11} {f'{s.succeeded}/{s.total_requests}':>9} {_num(_attr(s.latency, 'p50')):>8} "
        f"{_num(_attr(s.latency, 'p95')):>8} {_num(_attr(s.ttfa, 'p50')):>9} {_num(_attr(s.rtf, 'mean')):>8} "
        f"{s.throughput:>9.3f}"
        for s in summaries
    ]
    return "\n".join(["=== CONCURRENCY SWEEP ===", header, *rows, "=========================="])


def results_json(config: dict[str, object], levels: Sequence[tuple[LevelSummary, Sequence[RequestResult]]]) -> str:
    """The machine-readable result file: the configuration, then per level the summary and each request."""
    doc = {
        "config": config,
        "levels": [
            {"summary": summary.to_dict(), "requests": [asdict(r) for r in results]} for summary, results in levels
        ],
    }
    return json.dumps(doc, indent=2, sort_keys=False)
