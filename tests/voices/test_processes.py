"""Two real `tts-api` processes (each with its own codec engine, the tiny codec with its encoder) on one
store: a voice saved through one is spoken through the other by the OpenAI SDK, and again after both restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import openai
import pytest

from tests.voices.test_saved_voices import TEXT, save
from tools.fake_vllm import FakeVLLM, speech_tokens
from tools.harness import tts_api_process

REPO = Path(__file__).resolve().parents[2]
CODEC_DIR = Path(os.environ.get("DEV_CODEC_DIR", REPO / ".cache/models/codec-tiny")).resolve()

pytestmark = pytest.mark.skipif(
    not (CODEC_DIR / "semantic").exists(), reason=f"no tiny codec with its encoder at {CODEC_DIR} (make models)"
)


@contextmanager
def tts_api(fake: FakeVLLM, store_url: str, cwd: Path) -> Iterator[str]:
    env = {
        "TTS_API": fake.url,
        "CODEC_MODEL": str(CODEC_DIR),
        "SEMANTIC_MODEL": str(CODEC_DIR / "semantic"),
        "CODEC_THREADS": "1",
        "TEXT_NORMALIZER": "none",
        "LOG_LEVEL": "warning",
        "SHUTDOWN_GRACE_SECONDS": "2",
        "VOICE_STORE_URL": store_url,
    }
    with tts_api_process(env, cwd=cwd) as (url, _):
        yield url


def speak(url: str, voice: str) -> bytes:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-any", max_retries=0)
    return client.audio.speech.create(model="tts-1", voice=voice, input=TEXT, response_format="pcm").content


def test_two_processes_share_saved_voices_across_restarts(fake: FakeVLLM, postgres_url: str, tmp_path: Path) -> None:
    with tts_api(fake, postgres_url, tmp_path) as a, tts_api(fake, postgres_url, tmp_path) as b:
        saved = save(a, "shared-voice")
        assert saved.status_code == 201, saved.text
        n_reference = saved.json()["reference_tokens"]
        audio = speak(b, "shared-voice")
        prompt = fake.requests[-1].body["prompt"]
        assert len(speech_tokens(prompt)) == n_reference > 0  # the reference encoded by a, prompted by b
        assert len(audio) == len(fake.expected_tokens(prompt)) * 960
    with tts_api(fake, postgres_url, tmp_path) as again:
        assert speak(again, "shared-voice") == audio
        assert fake.requests[-1].body["prompt"] == prompt
