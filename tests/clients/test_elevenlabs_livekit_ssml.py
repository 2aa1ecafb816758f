"""LiveKit's ElevenLabs plugin with `enable_ssml_parsing` on (issue 33): the `<break/>` it sends becomes exactly that
much silence in the audio it receives (counted to the sample at 8, 16 and 24 kHz), and its aligned transcript shows
the words it sent, the words after the pause timed after it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.prompts import speech_prompt
from tests.clients.test_elevenlabs_livekit import _stream_events
from tools.fake_vllm import FakeVLLM

elevenlabs = pytest.importorskip("livekit.plugins.elevenlabs")

BEFORE, AFTER = "Hello there, this is a test.", "And the audio comes back."
PAUSE = 0.75


async def _events(url: str, rate: int) -> list:
    """An LLM's output, word by word, the break tag whole as the plugin sends it."""
    words = [*BEFORE.split(), f'<break time="{int(PAUSE * 1000)}ms"/>', *AFTER.split()]
    return await _stream_events(url, words, encoding=f"pcm_{rate}", enable_ssml_parsing=True)


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
async def test_livekit_plugin_gets_the_break_as_exact_silence(url: str, fake: FakeVLLM, rate: int) -> None:
    from livekit.agents.types import USERDATA_TIMED_TRANSCRIPT

    events = await asyncio.wait_for(_events(url, rate), 60)
    frames = [ev.frame for ev in events]
    assert frames and all(f.sample_rate == rate for f in frames)
    pcm = np.concatenate([np.frombuffer(bytes(f.data), np.int16) for f in frames])
    prompts = [r.prompt for r in fake.requests]
    assert prompts[0] == speech_prompt("jenny", BEFORE) and prompts[-1].endswith(speech_prompt("jenny", AFTER))
    assert len(prompts) == 2  # the break went to no model
    per_token = rate * 480 // 24_000
    first = len(fake.expected_tokens(prompts[0])) * per_token
    silence = round(rate * PAUSE)
    assert np.all(pcm[first : first + silence] == 0) and pcm[first - 1] != 0
    assert np.any(pcm[first + silence : first + silence + 8] != 0)
    assert len(pcm) == first + silence + len(fake.expected_tokens(prompts[1])) * per_token
    timed = [t for f in frames for t in f.userdata.get(USERDATA_TIMED_TRANSCRIPT, [])]
    assert [t.strip() for t in timed if t.strip()] == (BEFORE + " " + AFTER).split()  # the words it sent
    after = next(t for t in timed if t.strip() == "And")
    assert after.start_time == pytest.approx((first + silence) / rate, abs=1e-3)  # timed after the silence


async def test_the_pause_alignment_keeps_a_summing_clients_clock(url: str, fake: FakeVLLM) -> None:
    """pipecat adds up each alignment chunk's span: the pause's chunk spans its silence."""
    import json

    import websockets

    ws_url = url.replace("http://", "ws://") + "/v1/text-to-speech/jenny/stream-input"
    query = "?output_format=pcm_16000&enable_ssml_parsing=true"
    chunks = []
    async with websockets.connect(ws_url + query, additional_headers={"xi-api-key": "secret"}) as ws:
        await ws.send(json.dumps({"text": " "}))
        await ws.send(json.dumps({"text": f'Hi there. <break time="{PAUSE}s"/> Bye now. ', "flush": True}))
        await ws.send(json.dumps({"text": ""}))
        async for message in ws:
            msg = json.loads(message)
            if msg.get("normalizedAlignment"):
                chunks.append(msg["normalizedAlignment"])
            if msg.get("isFinal"):
                break
    spans = [a["charStartTimesMs"][-1] + a["charDurationsMs"][-1] - a["charStartTimesMs"][0] for a in chunks]
    assert len(chunks) == 3 and chunks[1]["chars"] == [" "] and spans[1] == PAUSE * 1000
    total = sum(len(fake.expected_tokens(r.prompt)) for r in fake.requests) * 480 / 24  # ms of speech
    assert sum(spans) == pytest.approx(total + PAUSE * 1000, abs=2)
