"""The real LiveKit ElevenLabs plugin (`livekit-plugins-elevenlabs`), unchanged but for its base URL, speaking a
saved voice by its `voice_id`: every sentence prompted with the saved reference, every token's audio delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import pytest

from app.prompts import voice_clone_prompt
from app.settings import Settings
from tests.voices.test_saved_voices import TRANSCRIPT, parts, wav_bytes
from tools.fake_vllm import FakeVLLM, speech_tokens
from tools.harness import serve

elevenlabs = pytest.importorskip("livekit.plugins.elevenlabs")

SENTENCES = ["Hello there, this is a test.", "The plugin streams text to us.", "And audio comes back."]


async def _stream(url: str, voice: str) -> list:
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(
            voice_id=voice, api_key="secret", base_url=f"{url}/v1", http_session=session, encoding="pcm_24000"
        )
        stream = tts.stream()
        for sentence in SENTENCES:
            for word in sentence.split():
                stream.push_text(word + " ")
                await asyncio.sleep(0.01)
        stream.end_input()
        frames = [ev.frame async for ev in stream]
        await stream.aclose()
        await tts.aclose()
        return frames


async def test_livekit_plugin_speaks_a_saved_voice(
    settings_for: Callable[..., Settings], fake: FakeVLLM, tmp_path: Path
) -> None:
    fake.n_tokens = 25
    settings = settings_for(api_key="secret", voice_store_url=f"sqlite:///{tmp_path / 'v.db'}")
    with serve(settings, parts()) as url:
        data = {"name": "agent-voice", "text": TRANSCRIPT, "consent": "true"}
        saved = httpx.post(
            f"{url}/v1/audio/voices", data=data, files={"audio": ("c.wav", wav_bytes())},
            headers={"Authorization": "Bearer secret"}, timeout=30,
        )
        assert saved.status_code == 201, saved.text
        frames = await asyncio.wait_for(_stream(url, "agent-voice"), 60)
    prompts = [r.prompt for r in fake.requests]
    assert len(prompts) == len(SENTENCES)
    reference = speech_tokens(prompts[0].split(SENTENCES[0])[0])
    assert len(reference) == saved.json()["reference_tokens"]
    assert prompts == [voice_clone_prompt(TRANSCRIPT, reference, s) for s in SENTENCES]
    pcm = np.concatenate([np.frombuffer(bytes(f.data), np.int16) for f in frames])
    assert all(f.sample_rate == 24000 for f in frames)
    assert len(pcm) == sum(len(fake.expected_tokens(p)) for p in prompts) * 480
