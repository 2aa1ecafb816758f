"""The real LiveKit ElevenLabs plugin (`livekit-plugins-elevenlabs`), unchanged but for its base URL, against us."""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np
import pytest

from app.prompts import speech_prompt, speech_tokens_text
from tools.fake_vllm import FakeVLLM

elevenlabs = pytest.importorskip("livekit.plugins.elevenlabs")

SENTENCES = ["Hello there, this is a test.", "The plugin streams text to us.", "And audio comes back."]


async def _stream(url: str, api_key: str, voice: str = "jenny") -> list:
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(
            voice_id=voice, api_key=api_key, base_url=f"{url}/v1", encoding="pcm_24000", http_session=session
        )
        stream = tts.stream()
        for sentence in SENTENCES:  # an LLM's output, word by word
            for word in sentence.split():
                stream.push_text(word + " ")
                await asyncio.sleep(0.01)
        stream.end_input()
        frames = [ev.frame async for ev in stream]
        await stream.aclose()
        await tts.aclose()
        return frames


async def test_livekit_plugin_receives_24khz_audio_with_context(url: str, fake: FakeVLLM) -> None:
    frames = await asyncio.wait_for(_stream(url, "secret"), 60)
    assert frames and all(f.sample_rate == 24000 and f.num_channels == 1 for f in frames)
    pcm = np.concatenate([np.frombuffer(bytes(f.data), np.int16) for f in frames])
    prompts = [r.prompt for r in fake.requests]
    assert len(prompts) == len(SENTENCES)
    assert prompts[0] == speech_prompt("jenny", SENTENCES[0])
    # later sentences continue from the previous one's speech
    first_tokens = fake.expected_tokens(prompts[0])
    assert speech_tokens_text(first_tokens) in prompts[1]
    assert prompts[1].endswith(speech_prompt("jenny", SENTENCES[1]))
    # every speech token became 480 samples; the plugin drops nothing
    assert len(pcm) == sum(len(fake.expected_tokens(p)) for p in prompts) * 480
    assert np.abs(pcm).max() > 0


async def test_livekit_plugin_with_a_wrong_key_gets_an_error(url: str) -> None:
    from livekit.agents import APIError

    with pytest.raises(APIError):
        await asyncio.wait_for(_stream(url, "wrong"), 60)
