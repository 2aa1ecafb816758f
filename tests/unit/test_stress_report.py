"""The stress test without a TTS server: its maths, its report, and a run against an in-process stub."""

from __future__ import annotations

import asyncio
import io
import json
import struct
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from stress_test.config import ConfigError, StressConfig, is_loopback, load_config
from stress_test.runner import run, wait_ready
from stress_test.stats import (
    PCM_BYTES_PER_SECOND,
    Distribution,
    IncompleteWavHeader,
    LevelSummary,
    RequestResult,
    audio_duration,
    audio_payload_bytes,
    format_extra_report,
    format_report,
    format_sweep,
    parse_wav_header,
    percentile,
    results_json,
    summarize,
)

REPO = Path(__file__).resolve().parents[2]

# --- percentiles ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 100])
def test_percentiles_match_numpy_linear(n: int) -> None:
    values = list(np.random.default_rng(n).gamma(2.0, 1.5, size=n))
    for q in (0, 1, 25, 50, 90, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12, abs=1e-12)


def test_percentile_small_counts_are_interpolated_not_indexed() -> None:
    # The original indexed sorted[int(0.99 * n) - 1]: for n=2 that is the minimum.
    assert percentile([1.0, 2.0], 99) == pytest.approx(1.99)
    assert percentile([3.0], 50) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution_of_empty_is_none() -> None:
    assert Distribution.of([]) is None
    d = Distribution.of([1.0, 2.0, 3.0, 4.0])
    assert d is not None and (d.count, d.min, d.max, d.mean, d.p50) == (4, 1.0, 4.0, 2.5, 2.5)


# --- report ---------------------------------------------------------------------------------------

# The seed README's first H100 report, without the "stress-test  | " prefix of docker compose.
SPEC_REPORT = """\
=== SLO LATENCY REPORT ===
Total Requests: 50
Min Time: 1.606s
Max Time: 3.539s
Avg Time: 2.676s
P50 (Median): 2.568s
P90: 3.431s
P95: 3.474s
P99: 3.510s

=== AUDIO & REAL-TIME FACTOR (RTF) REPORT ===
Avg Audio Duration: 5.702s

--- RTF Percentiles ---
Min RTF: 0.294s
Max RTF: 0.591s
Avg RTF: 0.470
P50 RTF: 0.434
P90 RTF: 0.581
P95 RTF: 0.587
P99 RTF: 0.589
=========================="""


def _summary(**overrides: object) -> LevelSummary:
    fields: dict[str, object] = {
        "concurrency": 50,
        "total_requests": 50,
        "succeeded": 50,
        "failed": 0,
        "timeouts": 0,
        "wall_seconds": 3.6,
        "latency": Distribution(50, 1.606, 3.539, 2.676, 2.568, 3.431, 3.474, 3.510),
        "ttfa": Distribution(50, 0.2, 0.9, 0.5, 0.45, 0.8, 0.85, 0.89),
        "rtf": Distribution(50, 0.294, 0.591, 0.470, 0.434, 0.581, 0.587, 0.589),
        "audio": Distribution(50, 4.0, 7.0, 5.702, 5.6, 6.5, 6.8, 6.9),
        "total_audio_seconds": 285.1,
        "throughput": 79.194,
        "requests_per_second": 13.889,
        "errors": {},
    }
    fields.update(overrides)
    return LevelSummary(**fields)  # type: ignore[arg-type]


def test_report_reproduces_the_spec_format_exactly() -> None:
    assert format_report(_summary()) == SPEC_REPORT


def test_report_labels_in_order_and_na_when_everything_failed() -> None:
    text = format_report(_summary(succeeded=0, failed=50, latency=None, ttfa=None, rtf=None, audio=None))
    labels = [line.split(":")[0] for line in text.splitlines()]
    assert labels == [line.split(":")[0] for line in SPEC_REPORT.splitlines()]
    assert "Min Time: n/a" in text and "P99 RTF: n/a" in text


def test_extra_report_and_sweep() -> None:
    summary = _summary(failed=2, timeouts=1, errors={"HTTP 503": 1, "timeout": 1})
    extra = format_extra_report(summary, stream=True).splitlines()
    assert extra[0] == "=== STREAMING & THROUGHPUT REPORT ==="
    assert "Failed: 2 (timeouts: 1)" in extra and "Throughput: 79.194 audio-s/wall-s" in extra
    assert "P50 TTFA: 0.450s" in extra and "HTTP 503: 1" in extra and extra[-1] == "=========================="
    sweep = format_sweep([summary, _summary(concurrency=8)]).splitlines()
    assert sweep[0] == "=== CONCURRENCY SWEEP ===" and len(sweep) == 5 and sweep[3].split()[0] == "8"


def test_summarize_counts_failures_and_uses_successes_for_latency() -> None:
    results = [
        RequestResult(0, True, latency=2.0, ttfa=0.5, audio_seconds=4.0, body_bytes=4 * PCM_BYTES_PER_SECOND),
        RequestResult(1, True, latency=3.0, ttfa=0.7, audio_seconds=6.0, body_bytes=6 * PCM_BYTES_PER_SECOND),
        RequestResult(2, False, latency=9.0, timed_out=True, error="timeout"),
        RequestResult(3, False, latency=0.1, status=503, error="HTTP 503"),
    ]
    s = summarize(4, results, wall_seconds=5.0)
    assert (s.total_requests, s.succeeded, s.failed, s.timeouts) == (4, 2, 2, 1)
    assert s.latency is not None and (s.latency.min, s.latency.max) == (2.0, 3.0)
    assert s.rtf is not None and s.rtf.mean == pytest.approx(0.5)
    assert s.total_audio_seconds == 10.0 and s.throughput == pytest.approx(2.0)
    assert s.errors == {"HTTP 503": 1, "timeout": 1}
    doc = json.loads(results_json({"api": "x"}, [(s, results)]))
    assert doc["levels"][0]["summary"]["succeeded"] == 2 and len(doc["levels"][0]["requests"]) == 4


# --- audio duration from bytes --------------------------------------------------------------------


def streaming_wav_header(sample_rate: int = 24_000, channels: int = 1, bits: int = 16, size: int = 0xFFFFFFFF) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", 1, channels, sample_rate, sample_rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data"
        + struct.pack("<I", size)
    )


def test_pcm_duration_is_bytes_over_48000() -> None:
    assert audio_duration("pcm", b"", 48_000) == 1.0
    assert audio_duration("pcm", b"", 72_001) == 1.5  # a half sample does not count
    assert audio_duration("pcm", b"", 0) == 0.0


@pytest.mark.parametrize("placeholder", [0xFFFFFFFF, 0])
def test_streaming_wav_with_placeholder_sizes_counts_received_data(placeholder: int) -> None:
    header = streaming_wav_header(size=placeholder)
    assert len(header) == 44
    body = header + bytes(96_000)
    assert audio_duration("wav", body[:4096], len(body)) == 2.0
    assert audio_payload_bytes("wav", header, 44) == 0  # header alone: no audio yet
    assert audio_payload_bytes("wav", header[:30], 30) == 0  # header still incomplete


def test_wav_declared_size_caps_trailing_chunks_and_truncation_uses_received() -> None:
    header = streaming_wav_header(size=48_000)
    trailing = b"LIST" + struct.pack("<I", 4) + b"INFO"
    assert audio_duration("wav", header, 44 + 48_000 + len(trailing)) == 1.0
    assert audio_duration("wav", header, 44 + 24_000) == 0.5  # cut short: what arrived


def test_wav_with_extra_chunk_and_other_format() -> None:
    block = 2 * 16 // 8
    fmt = struct.pack("<HHIIHH", 1, 2, 16_000, 16_000 * block, block, 16)
    header = (
        b"RIFF\xff\xff\xff\xffWAVE"
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"LIST"
        + struct.pack("<I", 3)
        + b"abc\x00"  # odd size, padded
        + b"data\xff\xff\xff\xff"
    )
    parsed = parse_wav_header(header)
    assert (parsed.sample_rate, parsed.channels, parsed.data_offset, parsed.data_size) == (16_000, 2, len(header), None)
    assert audio_duration("wav", header, len(header) + 64_000) == 1.0


def test_wav_written_by_soundfile() -> None:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(36_000, dtype=np.int16), 24_000, format="WAV", subtype="PCM_16")
    body = buffer.getvalue()
    assert audio_duration("wav", body[:4096], len(body)) == pytest.approx(1.5)


def test_reads_the_header_the_api_streams() -> None:
    from app.audio.pcm import wav_header

    streamed = wav_header()
    assert parse_wav_header(streamed).data_size is None
    assert audio_duration("wav", streamed, len(streamed) + 24_000) == 0.5
    exact = wav_header(data_bytes=48_000)
    assert audio_duration("wav", exact, len(exact) + 48_000) == 1.0


def test_not_a_wav_raises() -> None:
    with pytest.raises(ValueError, match="RIFF"):
        audio_payload_bytes("wav", b"\x00\x01" * 40, 80)
    with pytest.raises(ValueError):
        parse_wav_header(b"RIFX")
    with pytest.raises(IncompleteWavHeader):
        parse_wav_header(b"RIFF\x00\x00")


# --- configuration --------------------------------------------------------------------------------


def test_config_from_environment_and_flags() -> None:
    env = {"CONCURRENCY": "1, 4,8", "WARMUP_COUNT": "0", "RESPONSE_FORMAT": "wav", "STREAM": "false", "VOICE": ""}
    config = load_config(["--total-requests", "7", "--temperature", "0.7"], env)
    assert config.concurrency == (1, 4, 8) and config.total_requests == 7 and config.warmup_count == 0
    body = config.payload("hi")
    assert body == {"input": "hi", "response_format": "wav", "stream": False, "temperature": 0.7}
    assert load_config(["--seed", "7"], {}).payload("x")["seed"] == 7


def test_config_refuses_remote_targets_by_default() -> None:
    assert is_loopback("http://localhost:9091") and is_loopback("http://127.0.0.2:1") and is_loopback("http://[::1]:9")
    assert not is_loopback("http://tts-api:9091") and not is_loopback("http://192.168.1.2:9091")
    with pytest.raises(ConfigError, match="ALLOW_REMOTE"):
        load_config([], {"LOCAL_TTS_API": "http://tts-api:9091"})
    assert (
        load_config([], {"LOCAL_TTS_API": "http://tts-api:9091/", "ALLOW_REMOTE": "true"}).api == "http://tts-api:9091"
    )
    with pytest.raises(ConfigError, match="CONCURRENCY"):
        load_config([], {"CONCURRENCY": "0"})
    with pytest.raises(ConfigError, match="RESPONSE_FORMAT"):
        load_config([], {"RESPONSE_FORMAT": "mp3"})


# --- a run against a stub -------------------------------------------------------------------------

STUB_SECONDS = 0.5  # of audio per request


async def stub_app(scope: dict, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A stand-in API: /health, and /v1/audio/speech streaming STUB_SECONDS of silence in 5 chunks."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] in {"/health", "/ready"}:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"status":"ok"}'})
        return
    if scope["path"] != "/v1/audio/speech":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error":{"message":"not found"}}'})
        return
    if not json.loads(body).get("input"):
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b'{"error":{"message":"bad"}}'})
        return
    request = json.loads(body)
    wav = request.get("response_format") == "wav"
    content_type = b"audio/wav" if wav else b"audio/pcm"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type)]})
    if wav:
        await send({"type": "http.response.body", "body": streaming_wav_header(), "more_body": True})
    chunk = bytes(int(STUB_SECONDS * PCM_BYTES_PER_SECOND) // 5)
    for _ in range(5):
        await asyncio.sleep(0.002)
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize("response_format", ["pcm", "wav"])
async def test_run_against_an_asgi_stub(response_format: str) -> None:
    config = StressConfig(
        concurrency=(1, 3), total_requests=6, warmup_count=1, response_format=response_format, wait_ready=1.0
    )
    runs = await run(config, transport=httpx.ASGITransport(app=stub_app))
    assert [r.summary.concurrency for r in runs] == [1, 3]
    for level in runs:
        s = level.summary
        assert (s.total_requests, s.succeeded, s.failed) == (6, 6, 0), s.errors
        assert s.audio is not None and s.audio.mean == pytest.approx(STUB_SECONDS)
        assert s.ttfa is not None and s.latency is not None and s.ttfa.max <= s.latency.max
        assert format_report(s).splitlines()[1] == "Total Requests: 6"


async def test_errors_and_timeouts_are_counted_not_raised() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        text = json.loads(request.content)["input"]
        if text == "slow":
            await asyncio.sleep(5)
        if text == "fail":
            return httpx.Response(503, json={"error": {"message": "busy"}})
        if text == "empty":
            return httpx.Response(200, content=b"")
        return httpx.Response(200, content=bytes(PCM_BYTES_PER_SECOND))

    config = StressConfig(
        texts=("ok", "slow", "fail", "empty"), concurrency=(4,), total_requests=8, warmup_count=0, request_timeout=0.3
    )
    (level,) = await run(config, transport=httpx.MockTransport(handler))
    s = level.summary
    assert (s.succeeded, s.failed, s.timeouts) == (2, 6, 2)
    assert s.errors == {"HTTP 503": 2, "no audio": 2, "timeout": 2}
    assert "Failed: 6 (timeouts: 2)" in format_extra_report(s, stream=True)


async def test_level_stops_starting_requests_after_max_duration() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)
        return httpx.Response(200, content=bytes(4800))

    config = StressConfig(concurrency=(1,), total_requests=1000, warmup_count=0, max_duration=0.2)
    (level,) = await run(config, transport=httpx.MockTransport(handler))
    assert 1 <= level.summary.total_requests < 20


async def test_wait_ready_uses_ready_then_falls_back_to_health() -> None:
    def server(ready: int, health: int) -> httpx.MockTransport:
        return httpx.MockTransport(lambda r: httpx.Response(ready if r.url.path == "/ready" else health))

    async with httpx.AsyncClient(base_url="http://127.0.0.1:1", transport=server(200, 503)) as client:
        assert await wait_ready(client, 0.0)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:1", transport=server(404, 200)) as client:
        assert await wait_ready(client, 0.0)
    async with httpx.AsyncClient(base_url="http://127.0.0.1:1", transport=server(503, 200)) as client:
        assert not await wait_ready(client, 0.1)
