"""Issue 35, item 4: `X-Forwarded-For` was believed from loopback (uvicorn's default trusts 127.0.0.1 and the app
did not say otherwise): a saved voice's consent record said `"from": "6.6.6.6"` from a forged header, and keyed
sockets with different forged addresses all opened past the per-client limit. Proxy headers are now believed
only from the peers FORWARDED_ALLOW_IPS lists, none by default. Real sockets, and `tts-api` as users run it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets

from app.cli import server_options
from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tests.voices.test_saved_voices import wav_bytes
from tools.fake_vllm import FakeVLLM
from tools.harness import tts_api_process

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()
KEY = "sk-forwarded-0123456789"
AUTH = {"authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=40, rate=0) as server:
        yield server


def save_voice(url: str, name: str, headers: dict[str, str]) -> httpx.Response:
    data = {"name": name, "text": "Saya suka makan nasi lemak.", "consent": "true", "consent_by": "Aminah"}
    files = {"audio": ("clip.wav", wav_bytes(), "audio/wav")}
    return httpx.post(f"{url}/v1/audio/voices", data=data, files=files, headers=AUTH | headers, timeout=30)


def test_tts_api_reads_no_proxy_header_unless_told() -> None:
    options = server_options(limits_settings("http://127.0.0.1:1"))
    assert options["proxy_headers"] is False and options["forwarded_allow_ips"] == []
    listed = server_options(limits_settings("http://127.0.0.1:1", forwarded_allow_ips="10.0.0.0/8,192.168.1.5"))
    assert listed["proxy_headers"] is True and listed["forwarded_allow_ips"] == ["10.0.0.0/8", "192.168.1.5"]


def test_a_forged_forwarded_for_does_not_reach_the_consent_record(fake: FakeVLLM) -> None:
    with serve_like_tts_api(limits_settings(fake.url, api_key=KEY)) as (url, _):
        resp = save_voice(url, "forged-from", {"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["consent"]["from"] == "127.0.0.1"
        stored = httpx.get(f"{url}/v1/audio/voices/forged-from", headers=AUTH, timeout=10).json()
        assert stored["consent"]["from"] == "127.0.0.1"


def test_a_listed_proxy_names_the_client(fake: FakeVLLM) -> None:
    """The operator's proxy (here: loopback, listed) is believed: the record holds the client it names."""
    settings = limits_settings(fake.url, api_key=KEY, forwarded_allow_ips="127.0.0.1")
    with serve_like_tts_api(settings) as (url, _):
        resp = save_voice(url, "proxied-from", {"x-forwarded-for": "6.6.6.6"})
        assert resp.status_code == 201, resp.text
        assert resp.json()["consent"]["from"] == "6.6.6.6"


@pytest.mark.skipif(not (CODEC_DIR / "config.json").exists(), reason=f"no tiny codec at {CODEC_DIR} (make models)")
async def test_forged_addresses_do_not_lift_the_per_client_socket_limit(fake: FakeVLLM, tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "TTS_API": fake.url,
        "API_KEY": KEY,
        "MAX_SOCKETS_PER_CLIENT": "2",
        "CODEC_MODEL": str(CODEC_DIR),
        "CODEC_LOAD_ENCODER": "false",
        "CODEC_THREADS": "1",
        "TEXT_NORMALIZER": "none",
        "VOICE_STORE_URL": "sqlite://",
        "LOG_LEVEL": "warning",
        "SHUTDOWN_GRACE_SECONDS": "2",
    }
    with tts_api_process(env, cwd=tmp_path) as (url, _):
        stream = url.replace("http://", "ws://") + "/v1/audio/speech/stream"
        held = []
        try:
            for forged in ("1.1.1.1", "2.2.2.2"):
                held.append(await websockets.connect(stream, additional_headers=AUTH | {"x-forwarded-for": forged}))
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(stream, additional_headers=AUTH | {"x-forwarded-for": "3.3.3.3"})
            assert refused.value.response.status_code == 429
        finally:
            for ws in held:
                await ws.close()
