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


async def _stream(url: str, api_key: str, voice: str = "jenny", **options: str) -> list:
    """`options`: the plugin's own (none: its defaults, `encoding="mp3_22050_32"`)."""
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(voice_id=voice, api_key=api_key, base_url=f"{url}/v1", http_session=session, **options)
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
    frames = await asyncio.wait_for(_stream(url, "secret", encoding="pcm_24000"), 60)
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


async def test_livekit_plugin_with_its_default_encoding_gets_22khz_mp3(url: str, fake: FakeVLLM) -> None:
    """The plugin as it comes: `mp3_22050_32`, which it decodes to 22.05 kHz frames."""
    frames = await asyncio.wait_for(_stream(url, "secret"), 60)
    assert frames and all(f.sample_rate == 22050 and f.num_channels == 1 for f in frames)
    pcm = np.concatenate([np.frombuffer(bytes(f.data), np.int16) for f in frames])
    prompts = [r.prompt for r in fake.requests]
    assert len(prompts) == len(SENTENCES) and prompts[0] == speech_prompt("jenny", SENTENCES[0])
    # every token's 480 samples at 24 kHz is 441 at 22.05 kHz; the plugin's decoder hands over every MP3 frame
    # (576 samples at 22.05 kHz) whole: LAME's 576-sample delay in front, the last frame padded out, nothing dropped
    n = sum(len(fake.expected_tokens(p)) for p in prompts) * 441
    assert len(pcm) % 576 == 0 and n + 576 <= len(pcm) < n + 2 * 576
    assert np.abs(pcm).max() > 1000


async def _stream_events(url: str, text_words: list[str], **options: object) -> list:
    async with aiohttp.ClientSession() as session:
        tts = elevenlabs.TTS(voice_id="jenny", api_key="secret", base_url=f"{url}/v1", http_session=session, **options)
        stream = tts.stream()
        for word in text_words:
            stream.push_text(word + " ")
            await asyncio.sleep(0.01)
        stream.end_input()
        events = [ev async for ev in stream]
        await stream.aclose()
        await tts.aclose()
        return events


@pytest.mark.parametrize("encoding", [None, "pcm_24000"])
async def test_livekit_plugin_gets_timed_words_inside_the_audio_it_received(
    url: str, fake: FakeVLLM, encoding: str | None
) -> None:
    """Default options (mp3_22050_32, sync alignment on): every word of the text comes back timed, in order,
    inside the audio the plugin received; segment boundaries where each sentence's audio ends."""
    from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

    words = " ".join(SENTENCES).split()
    options = {"encoding": encoding} if encoding else {}
    events = await asyncio.wait_for(_stream_events(url, words, **options), 60)
    frames = [ev.frame for ev in events]
    timed = [t for f in frames for t in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    duration = sum(f.duration for f in frames)
    assert [t.strip() for t in timed] == words
    starts = [t.start_time for t in timed]
    assert starts == sorted(starts)
    assert all(0 <= t.start_time <= t.end_time <= duration + 1e-3 for t in timed)
    # each sentence's audio ends (tokens x 480 samples at 24 kHz) where the next sentence's first word starts
    prompts = [r.prompt for r in fake.requests]
    ends = np.cumsum([len(fake.expected_tokens(p)) * 480 / 24000 for p in prompts])
    firsts = np.cumsum([len(s.split()) for s in SENTENCES])[:-1]
    assert [round(timed[i].start_time, 3) for i in firsts] == [round(e, 3) for e in ends[:-1]]
    assert abs(timed[-1].end_time - ends[-1]) < 0.001
