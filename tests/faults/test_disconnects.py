"""Disconnect storms at every phase: each one frees its slot and closes its backend request within 1 s."""

from __future__ import annotations

import time

import httpx
import numpy as np
import pytest
import soundfile as sf

from tests.faults.conftest import (
    GatedNormalizer,
    assert_released,
    in_flight,
    open_json,
    open_request,
    read_at_least,
    speech,
    wait_until,
)

STORM = 8


def wav(seconds: float, rate: int = 16000) -> bytes:
    import io

    buf = io.BytesIO()
    t = np.arange(int(seconds * rate)) / rate
    sf.write(buf, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": "pcm"},
        {"response_format": "wav"},
        {"response_format": "mp3"},
        {"response_format": "pcm", "stream_format": "sse"},
        {"response_format": "wav", "stream": False},
    ],
    ids=["pcm", "wav", "mp3", "sse", "not-streamed"],
)
def test_storm_before_the_first_byte(service, fake, fields: dict) -> None:
    """Clients that leave while the backend has not sent a token yet (slow first token)."""
    fake.set_mode("slow_first", delay=30)
    with service(max_concurrent_requests=STORM) as url:
        socks = [open_json(url, "/v1/audio/speech", speech(**fields)) for _ in range(STORM)]
        assert wait_until(lambda: fake.active_streams == STORM, 5)
        assert in_flight(url) == STORM
        for s in socks:
            s.close()
        assert_released(url, fake)
        assert all(r.cancelled for r in fake.requests)
        assert len(fake.requests) == STORM


@pytest.mark.parametrize(
    "fields",
    [
        {"response_format": "pcm"},
        {"response_format": "wav"},
        {"response_format": "mp3", "speed": 1.25},
        {"response_format": "pcm", "stream_format": "sse"},
        {"response_format": "pcm", "stream": False},
    ],
    ids=["pcm", "wav", "mp3-stretched", "sse", "not-streamed"],
)
def test_storm_after_audio_started(service, fake, fields: dict) -> None:
    """Clients that leave mid-generation: after their first audio bytes, or (stream=false) while it collects."""
    fake.rate, fake.n_tokens = 100, 3000
    with service(max_concurrent_requests=STORM) as url:
        socks = [open_json(url, "/v1/audio/speech", speech(**fields)) for _ in range(STORM)]
        if fields.get("stream", True):
            for s in socks:
                assert b" 200 " in read_at_least(s, 2000)[:20]
        else:
            assert wait_until(lambda: sum(r.tokens_sent > 30 for r in fake.requests) == STORM, 10)
        for s in socks:
            s.close()
        assert_released(url, fake)
        assert len(fake.requests) == STORM and all(r.cancelled for r in fake.requests)
        assert all(r.tokens_sent < 3000 for r in fake.requests)


def test_storm_during_normalization(service, fake) -> None:
    """Clients that leave while their text waits for the normalizer never reach the backend."""
    normalizer = GatedNormalizer()
    with service(normalizer=normalizer, max_concurrent_requests=STORM) as url:
        socks = [open_json(url, "/v1/audio/speech", speech()) for _ in range(STORM)]
        assert normalizer.entered.wait(5)
        assert wait_until(lambda: in_flight(url) == STORM, 5)
        for s in socks:
            s.close()
        assert_released(url, fake)  # even though the normalizer thread is still blocked
        normalizer.gate.set()
        time.sleep(0.2)
        assert fake.requests == []


def test_voice_clone_disconnects(service, fake) -> None:
    """Voice cloning: leaving mid-upload, and leaving during generation."""
    fake.rate, fake.n_tokens = 100, 3000
    request = httpx.Request(
        "POST",
        "http://x/v1/audio/vc",
        data={"reference_text": "a reference", "generate_text": "hello there", "response_format": "pcm"},
        files={"reference_audio": ("ref.wav", wav(3.0), "audio/wav")},
    )
    body = request.read()
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "content-length")}
    with service(max_concurrent_requests=STORM, max_concurrent_references=STORM) as url:
        half = [open_request(url, "/v1/audio/vc", body[: len(body) // 2], headers) for _ in range(STORM)]
        assert wait_until(lambda: in_flight(url) == STORM, 5)
        for s in half:
            s.close()
        assert_released(url, fake)
        assert fake.requests == []

        whole = [open_request(url, "/v1/audio/vc", body, headers) for _ in range(4)]
        for s in whole:
            assert b" 200 " in read_at_least(s, 2000)[:20]
        for s in whole:
            s.close()
        assert_released(url, fake)
        assert len(fake.requests) == 4 and all(r.cancelled for r in fake.requests)


@pytest.mark.parametrize("route", ["with-timestamps", "stream/with-timestamps"])
def test_elevenlabs_timestamps_clients_that_leave_stop_the_backend(service, fake, route: str) -> None:
    """ElevenLabs' `convert_with_timestamps` (one JSON object at the end) and its streamed twin: a client that
    leaves mid-generation frees its slot and closes its backend request, as on every other route."""
    fake.rate, fake.n_tokens = 100, 3000
    body = {"text": speech()["input"], "model_id": "eleven_flash_v2_5"}
    with service(max_concurrent_requests=4) as url:
        socks = [open_json(url, f"/v1/text-to-speech/husein/{route}?output_format=pcm_16000", body) for _ in range(4)]
        assert wait_until(lambda: sum(r.tokens_sent > 30 for r in fake.requests) == 4, 10)
        for s in socks:
            s.close()
        assert_released(url, fake)
        assert len(fake.requests) == 4 and all(r.cancelled for r in fake.requests)
        assert all(r.tokens_sent < 3000 for r in fake.requests)
