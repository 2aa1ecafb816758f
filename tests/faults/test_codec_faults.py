"""A codec that fails (a CUDA error) or hangs: clear 5xx answers, `/ready` out of rotation and back."""

from __future__ import annotations

import httpx

from tests.faults.conftest import SwitchCodec, open_json, read_all, speech
from tests.faults.test_backend_faults import dechunk


def ready(url: str) -> int:
    return httpx.get(f"{url}/ready", timeout=10).status_code


def test_ready_turns_503_after_a_run_of_codec_failures_and_back_after_a_success(service, fake) -> None:
    codec = SwitchCodec()
    fake.n_tokens = 8  # one decode window per request: one codec job each
    with service(codec=codec) as url:
        assert ready(url) == 200
        codec.failing = True
        for i in range(3):
            resp = httpx.post(f"{url}/v1/audio/speech", json=speech(), timeout=30)
            assert resp.status_code == 500 and resp.json()["error"]["code"] == "decode_failed"
            assert ready(url) == (200 if i < 2 else 503)
        assert "codec" in httpx.get(f"{url}/ready", timeout=10).json()["error"]["message"]
        codec.failing = False
        assert httpx.post(f"{url}/v1/audio/speech", json=speech(), timeout=30).status_code == 200
        assert ready(url) == 200


def test_a_codec_failure_mid_stream_aborts_the_response(service, fake) -> None:
    codec = SwitchCodec()
    codec.fail_after = 1  # the first window decodes, every later one fails
    fake.n_tokens = 400
    with service(codec=codec) as url:
        status, body, complete = dechunk(read_all(open_json(url, "/v1/audio/speech", speech(response_format="pcm"))))
        assert status == 200 and len(body) > 0 and not complete


def test_a_hung_codec_times_out_with_a_503(service, fake) -> None:
    with service(codec=SwitchCodec(decode_delay=1.5), codec_timeout_seconds=0.3) as url:
        resp = httpx.post(f"{url}/v1/audio/speech", json=speech(stream=False), timeout=30)
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "codec_timeout"
