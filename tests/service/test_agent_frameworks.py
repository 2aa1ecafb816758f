"""Voice-agent frameworks, unchanged, against the service: pipecat's `OpenAITTSService` and LiveKit's OpenAI TTS.

Both only know OpenAI's API, so they send OpenAI voice names (the `VOICE_ALIASES`) and OpenAI model names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from app.audio.stitch import StitchPlan
from app.main import Components
from app.prompts import speech_prompt
from app.settings import DEFAULT_VOICE_ALIASES, Settings
from tools.agents import PipecatRun
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = "Hello there, the meeting is at three."


@pytest.fixture
def defaults_url(fake: FakeVLLM) -> Iterator[str]:
    """The service with its default settings (first chunk, chunk sizes) on the fake backend."""
    settings = Settings(_env_file=None, tts_api=fake.url, backend_read_timeout=300)  # a stall outlasts the test
    with serve(settings, Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())) as url:
        yield url


def expected_samples(fake: FakeVLLM, voice: str, text: str = TEXT) -> int:
    return len(fake.expected_tokens(speech_prompt(voice, text))) * 480


# -- pipecat -------------------------------------------------------------------------------------------------


async def test_pipecat_speaks_with_an_openai_voice_name(defaults_url: str, fake: FakeVLLM) -> None:
    run = PipecatRun(defaults_url, "nova")
    await asyncio.wait_for(run.run(TEXT), 120)
    assert not run.errors, [e.error for e in run.errors]
    assert fake.requests[-1].body["prompt"] == speech_prompt(DEFAULT_VOICE_ALIASES["nova"], TEXT)
    assert {(f.sample_rate, f.num_channels) for f in run.audio} == {(24000, 1)}
    pcm = np.frombuffer(b"".join(f.audio for f in run.audio), np.int16)
    assert len(pcm) == expected_samples(fake, "idayu")  # every sample, as 24 kHz mono 16-bit
    expected = LocalCodec().one_shot(fake.expected_tokens(speech_prompt("idayu", TEXT)))
    assert np.abs(pcm[2000:].astype(np.float32) / 32767 - expected[2000:]).max() < 1e-3  # after the fade-in


async def test_pipecat_plays_our_first_chunk_before_the_second_exists(defaults_url: str, fake: FakeVLLM) -> None:
    """pipecat reads the body in 0.5 s blocks (24,000 bytes): our first chunk must fill one, or its first
    frame waits for our second chunk. The backend stalls right after the first window's tokens, so a second
    chunk cannot exist: pipecat's first frame must still come."""
    s = Settings(_env_file=None)
    plan = StitchPlan.from_seconds(
        s.default_playback_speed, s.default_playback_overlap_speed, s.first_chunk_seconds, s.decode_left_context_seconds, geometry=LocalCodec.geometry
    )
    fake.set_mode("stall", count=1, after=plan.first_chunk_tokens + plan.overlap_tokens)
    run = PipecatRun(defaults_url, "alloy")
    runner = asyncio.create_task(run.run(TEXT, end=False))
    try:
        await asyncio.wait_for(run.first_audio.wait(), 60)
        assert len(run.audio[0].audio) == 24000  # pipecat's block: 0.5 s
        assert fake.requests[-1].active  # the backend is still stalled after the first window
        assert len(run.audio) == 1
    finally:
        await run.task.cancel()
        await asyncio.wait_for(runner, 30)
    assert fake.wait_for(lambda: fake.requests[-1].cancelled, timeout=10)  # pipecat left; vLLM was told


# -- LiveKit ------------------------------------------------------------------------------------------------

# decoded - sent samples LiveKit's decoders give per format (measured): 10 ms frame padding for pcm, encoder
# priming for mp3/aac, Opus pre-skip, and its FLAC reader leaves out the last block of a stream without length
LIVEKIT_SLACK = {"pcm": (0, 240), "wav": (0, 240), "mp3": (0, 1200), "aac": (0, 2048), "opus": (-960, 0), "flac": (-4608, 0)}


@pytest.mark.parametrize("model", ["tts-1", "gpt-4o-mini-tts"])  # tts-1: raw audio; gpt-4o-mini-tts: SSE
@pytest.mark.parametrize("fmt", sorted(LIVEKIT_SLACK))
async def test_livekit_openai_tts_every_format(app_url: str, fake: FakeVLLM, model: str, fmt: str) -> None:
    from livekit.plugins import openai as lk_openai

    tts = lk_openai.TTS(base_url=f"{app_url}/v1", api_key="sk-unused", model=model, voice="ash", response_format=fmt)
    frames = []
    try:
        async with tts.synthesize(TEXT) as stream:
            async for event in stream:
                frames.append(event.frame)
    finally:
        await tts.aclose()
    assert fake.requests[-1].body["prompt"] == speech_prompt("husein", TEXT)
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(24000, 1)}
    audio = np.concatenate([np.frombuffer(f.data, np.int16) for f in frames]).astype(np.float32) / 32767
    lo, hi = LIVEKIT_SLACK[fmt]
    n = expected_samples(fake, "husein")
    assert n + lo <= len(audio) <= n + hi, (len(audio), n)
    assert np.sqrt(np.mean(audio**2)) > 0.01  # speech, not silence
