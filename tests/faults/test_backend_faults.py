"""The backend killed, stalled or failing mid-stream, or ending without speech: what each client sees.

A break is resent to a backend with the tokens received so far (tests/faults/test_backend_failover.py); here
there is no resend left (`BACKEND_RETRIES=0`, as when the retry budget or the failover deadline is spent): the
stream ends broken, never clean."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess

import httpx
import pytest

from app.audio.pcm import float_to_int16
from app.audio.stitch import apply_fade_in
from app.prompts import speech_prompt
from tests.faults.conftest import TEXT, open_json, read_all, speech
from tools.harness import LocalCodec

AFTER = 60  # speech tokens the backend sends before it fails
NO_RESEND = {"backend_retries": 0}  # the retry budget spent: a break ends the stream


def received_pcm(fake, n: int) -> bytes:
    """The PCM of the first `n` tokens the fake sends for TEXT (the stand-in codec is context-free)."""
    tokens = fake.expected_tokens(speech_prompt("husein", " ".join(TEXT.split())))[:n]
    return float_to_int16(apply_fade_in(LocalCodec().one_shot(tokens), 120)).tobytes()


def dechunk(raw: bytes) -> tuple[int, bytes, bool]:
    """(status, body, complete) of a raw chunked HTTP/1.1 response; complete = the final 0-size chunk came."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    body = b""
    while rest:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line, 16)
        if size == 0:
            return status, body, True
        if len(rest) < size + 2:
            body += rest[:size]
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return status, body, False


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("early_close", {"after": AFTER}),  # vLLM killed: the socket drops mid-response
        ("error_event", {"after": AFTER}),  # vLLM's streaming error event
        ("stall", {"after": AFTER}),  # vLLM hangs with the connection open
    ],
)
def test_a_failed_pcm_stream_delivers_every_received_token_then_is_incomplete(service, fake, mode, params) -> None:
    fake.set_mode(mode, count=1, **params)
    with service(backend_stall_timeout=0.5, **NO_RESEND) as url:
        status, body, complete = dechunk(read_all(open_json(url, "/v1/audio/speech", speech(response_format="pcm"))))
        assert status == 200
        assert not complete  # no clean end of the chunked body: the client can tell it is cut
        assert body == received_pcm(fake, AFTER)
        if mode == "stall":
            assert fake.requests[0].cancelled  # the service hung up on the stalled backend


def test_curl_and_httpx_see_an_incomplete_body(service, fake) -> None:
    fake.set_mode("early_close", count=2, after=AFTER)
    with service(**NO_RESEND) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="wav"), timeout=30)
        curl = shutil.which("curl")
        assert curl, "curl is required (apt-get install curl)"
        run = subprocess.run(
            [curl, "-sS", "-o", "/dev/null", "-H", "Content-Type: application/json", "-d", json.dumps(speech()),
             f"{url}/v1/audio/speech"],
            capture_output=True,
            timeout=30,
        )
        assert run.returncode == 18, run.stderr  # CURLE_PARTIAL_FILE


def test_a_failed_sse_stream_ends_with_an_error_event_after_all_received_audio(service, fake) -> None:
    fake.set_mode("early_close", count=1, after=AFTER)
    with service(**NO_RESEND) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm", stream_format="sse"), timeout=30)
        events = [json.loads(line[6:]) for line in resp.text.splitlines() if line.startswith("data: ")]
        assert resp.status_code == 200
        assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "backend_error"
        audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
        assert audio == received_pcm(fake, AFTER)


def test_a_mid_stream_stall_ends_after_the_stall_timeout_not_the_read_timeout(service, fake) -> None:
    fake.set_mode("stall", count=1, after=AFTER)
    with service(backend_read_timeout=60, backend_stall_timeout=0.5, **NO_RESEND) as url:
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm"), timeout=20)
        assert fake.requests[0].cancelled


def test_a_stall_before_the_first_event_waits_for_the_read_timeout(service, fake) -> None:
    fake.set_mode("slow_first", count=1, delay=1.0)  # longer than the stall timeout, shorter than the read one
    with service(backend_read_timeout=5, backend_stall_timeout=0.3) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="pcm"), timeout=20)
        assert resp.status_code == 200 and len(resp.content) == 120 * 960


@pytest.mark.parametrize("stream", [True, False])
def test_no_speech_tokens_is_a_502_before_the_first_byte(service, fake, stream: bool) -> None:
    fake.n_tokens = 0
    with service() as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(response_format="wav", stream=stream), timeout=30)
        assert resp.status_code == 502
        err = resp.json()["error"]
        assert err["code"] == "no_audio" and "speech tokens" in err["message"]


@pytest.mark.parametrize(("status", "expected"), [(500, 502), (503, 503)])
def test_backend_http_errors_are_errors_before_the_first_byte(service, fake, status: int, expected: int) -> None:
    fake.set_mode("http_error", count=1, status=status)
    with service(**NO_RESEND) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(), timeout=30)
        assert resp.status_code == expected and set(resp.json()["error"]) == {"message", "type", "param", "code"}
