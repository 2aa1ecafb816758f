"""pipecat's real ElevenLabs service (`ElevenLabsTTSService`, WebSocket `multi-stream-input`), unchanged but for
its URL, against our ElevenLabs-compatible endpoint, in pipelines at the rates of telephone (8 kHz), SIP/WebRTC
(16 kHz), the model's own (24 kHz) and CD (44.1 kHz) transports: it asks for `pcm_<the pipeline's rate>`."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from app.prompts import speech_prompt
from tools.fake_vllm import FakeVLLM

pytest.importorskip("pipecat.services.elevenlabs.tts")

TEXT = "Hello from pipecat. It speaks the ElevenLabs protocol to us."


async def speak(url: str, text: str, voice: str, rate: int = 24000) -> tuple[list, list]:
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
    task = PipelineTask(Pipeline([tts, Sink()]), params=PipelineParams(audio_out_sample_rate=rate))
    await task.queue_frames([TTSSpeakFrame(text), EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    await runner.run()
    return audio, errors


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 44100])
async def test_pipecat_elevenlabs_service_receives_audio_at_the_pipelines_rate(url: str, fake: FakeVLLM, rate: int) -> None:
    audio, errors = await asyncio.wait_for(speak(url, TEXT, "idayu", rate), 120)
    assert not errors, [e.error for e in errors]
    assert audio and {(f.sample_rate, f.num_channels) for f in audio} == {(rate, 1)}
    pcm = np.frombuffer(b"".join(f.audio for f in audio), np.int16)
    prompts = [r.prompt for r in fake.requests]
    assert prompts and all(p.endswith("<|speech_start|>") for p in prompts)
    assert speech_prompt("idayu", "Hello from pipecat.") in prompts[0]
    # every token's 480 samples at 24 kHz, resampled to the pipeline's rate: nothing dropped
    assert len(pcm) == sum(len(fake.expected_tokens(p)) for p in prompts) * 480 * rate // 24000
    assert np.abs(pcm).max() > 0
