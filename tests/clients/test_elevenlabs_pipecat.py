"""pipecat's real ElevenLabs service (`ElevenLabsTTSService`, WebSocket `multi-stream-input`), unchanged but for
its URL, against our ElevenLabs-compatible endpoint."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM

pytest.importorskip("pipecat.services.elevenlabs.tts")

TEXT = "Hello from pipecat. It speaks the ElevenLabs protocol to us."


async def speak(url: str, text: str, voice: str) -> tuple[list, list]:
    from pipecat.frames.frames import EndFrame, ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
    from pipecat.workers.runner import WorkerRunner

    audio: list = []
    errors: list = []

    class Sink(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, TTSAudioRawFrame):
                audio.append(frame)
            elif isinstance(frame, ErrorFrame):
                errors.append(frame)
            await self.push_frame(frame, direction)

    tts = ElevenLabsTTSService(
        api_key="secret", url=url.replace("http://", "ws://"), settings=ElevenLabsTTSService.Settings(voice=voice)
    )
    task = PipelineTask(Pipeline([tts, Sink()]), params=PipelineParams(audio_out_sample_rate=24000))
    await task.queue_frames([TTSSpeakFrame(text), EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    await runner.run()
    return audio, errors


async def test_pipecat_elevenlabs_service_receives_24khz_audio(url: str, fake: FakeVLLM) -> None:
    audio, errors = await asyncio.wait_for(speak(url, TEXT, "idayu"), 120)
    assert not errors, [e.error for e in errors]
    assert audio and {(f.sample_rate, f.num_channels) for f in audio} == {(24000, 1)}
    pcm = np.frombuffer(b"".join(f.audio for f in audio), np.int16)
    prompts = [r.prompt for r in fake.requests]
    assert prompts and all(p.endswith("<|speech_start|>") for p in prompts)
    assert speech_prompt("idayu", "Hello from pipecat.") in prompts[0]
    assert len(pcm) == sum(len(fake.expected_tokens(p)) for p in prompts) * 480  # every token, nothing dropped
    assert np.abs(pcm).max() > 0
