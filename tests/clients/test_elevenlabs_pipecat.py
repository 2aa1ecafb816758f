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


async def speak(url: str, text: str, voice: str, rate: int = 24000, api_key: str = "secret") -> tuple[list, list]:
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
        api_key=api_key, url=url.replace("http://", "ws://"), settings=ElevenLabsTTSService.Settings(voice=voice)
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


async def run_pipeline(url: str, frames_in, voice: str = "jenny") -> list:
    """pipecat's ElevenLabsTTSService in a pipeline; `frames_in(task, seen)` queues the input frames (it may wait
    on `seen`, the frames the sink has received so far, with the interruption frames it passed along)."""
    from pipecat.frames.frames import ErrorFrame, Frame, InterruptionFrame, TTSAudioRawFrame, TTSTextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
    from pipecat.workers.runner import WorkerRunner

    seen: list = []

    class Sink(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, (TTSAudioRawFrame, TTSTextFrame, ErrorFrame, InterruptionFrame)):
                seen.append(frame)
            await self.push_frame(frame, direction)

    tts = ElevenLabsTTSService(
        api_key="secret", url=url.replace("http://", "ws://"), settings=ElevenLabsTTSService.Settings(voice=voice)
    )
    task = PipelineTask(Pipeline([tts, Sink()]), params=PipelineParams(audio_out_sample_rate=24000))
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(task)
    feeder = asyncio.create_task(frames_in(task, seen))
    await runner.run()
    await feeder
    return seen


async def test_pipecat_gets_word_timestamp_frames_for_the_words_of_the_text(url: str, fake: FakeVLLM) -> None:
    from pipecat.frames.frames import EndFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame

    async def frames_in(task, seen) -> None:
        await task.queue_frames([TTSSpeakFrame(TEXT), EndFrame()])

    seen = await asyncio.wait_for(run_pipeline(url, frames_in), 60)
    words = [f for f in seen if isinstance(f, TTSTextFrame)]
    audio = [f for f in seen if isinstance(f, TTSAudioRawFrame)]
    assert [w.text for w in words] == TEXT.split()
    assert {w.context_id for w in words} == {audio[0].context_id}
    times = [(w.pts - words[0].pts) / 1e9 for w in words]
    assert times == sorted(times) and times[0] == 0
    # the second sentence's first word starts where the first sentence's audio ends
    prompts = [r.prompt for r in fake.requests]
    assert len(prompts) == 2
    first_sentence = 3  # "Hello from pipecat."
    assert times[first_sentence] == pytest.approx(len(fake.expected_tokens(prompts[0])) * 0.02, abs=1e-3)
    duration = sum(len(f.audio) for f in audio) / 2 / 24000
    assert times[-1] < duration


async def test_interrupting_pipecat_mid_sentence_leaves_no_later_frames_of_that_context(url: str, fake: FakeVLLM) -> None:
    from pipecat.frames.frames import EndFrame, InterruptionFrame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame

    fake.rate, fake.n_tokens = 25, 400  # 16 s of speech, generated in 16 s

    async def frames_in(task, seen) -> None:
        await task.queue_frames([TTSSpeakFrame("This reply is long, and the user will cut it short.")])
        while not any(isinstance(f, TTSAudioRawFrame) for f in seen):
            await asyncio.sleep(0.02)
        await task.queue_frames([InterruptionFrame()])
        while not any(isinstance(f, InterruptionFrame) for f in seen):
            await asyncio.sleep(0.02)
        await asyncio.sleep(1.5)  # time for stray frames of the old context to show up
        await task.queue_frames([TTSSpeakFrame("Yes?"), EndFrame()])

    seen = await asyncio.wait_for(run_pipeline(url, frames_in), 60)
    cut = next(i for i, f in enumerate(seen) if isinstance(f, InterruptionFrame))
    old = seen[0].context_id
    after = [f for f in seen[cut + 1 :] if isinstance(f, (TTSAudioRawFrame, TTSTextFrame))]
    assert after and all(f.context_id != old for f in after)  # the next reply's frames only
    assert any(isinstance(f, TTSAudioRawFrame) for f in after)
    interrupted = [r for r in fake.requests if "cut it short" in r.prompt]
    assert len(interrupted) == 1
    assert await fake.wait_for_async(lambda: interrupted[0].end is not None, timeout=5)
    assert interrupted[0].cancelled  # its generation stopped on the server, not only in the client


async def test_pipecat_http_service_gets_word_timestamps_from_stream_with_timestamps(url: str, fake: FakeVLLM) -> None:
    """`ElevenLabsHttpTTSService` (`/v1/text-to-speech/{voice}/stream/with-timestamps`), unchanged but for its
    base URL: audio at the pipeline's rate and a timed frame for every word, inside that audio."""
    import aiohttp
    from pipecat.frames.frames import EndFrame, ErrorFrame, Frame, TTSAudioRawFrame, TTSSpeakFrame, TTSTextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.task import PipelineParams, PipelineTask
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.services.elevenlabs.tts import ElevenLabsHttpTTSService
    from pipecat.workers.runner import WorkerRunner

    seen: list = []

    class Sink(FrameProcessor):
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, (TTSAudioRawFrame, TTSTextFrame, ErrorFrame)):
                seen.append(frame)
            await self.push_frame(frame, direction)

    async with aiohttp.ClientSession() as session:
        tts = ElevenLabsHttpTTSService(
            api_key="secret", aiohttp_session=session, base_url=url, settings=ElevenLabsHttpTTSService.Settings(voice="jenny")
        )
        task = PipelineTask(Pipeline([tts, Sink()]), params=PipelineParams(audio_out_sample_rate=16000))
        await task.queue_frames([TTSSpeakFrame(TEXT), EndFrame()])
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(task)
        await asyncio.wait_for(runner.run(), 60)
    assert not [f for f in seen if isinstance(f, ErrorFrame)], seen
    words = [f for f in seen if isinstance(f, TTSTextFrame)]
    audio = b"".join(f.audio for f in seen if isinstance(f, TTSAudioRawFrame))
    assert [w.text for w in words] == TEXT.split()
    assert len(fake.requests) == 1 and fake.requests[0].prompt.endswith(speech_prompt("jenny", TEXT))
    assert len(audio) // 2 == len(fake.expected_tokens(fake.requests[0].prompt)) * 480 * 16000 // 24000
    times = [(w.pts - words[0].pts) / 1e9 for w in words]
    assert times == sorted(times) and times[-1] < len(audio) / 2 / 16000


def test_with_timestamps_needs_the_key(url: str) -> None:
    import httpx

    path = f"{url}/v1/text-to-speech/jenny/with-timestamps?output_format=pcm_16000"
    for headers in ({}, {"xi-api-key": "wrong"}):
        resp = httpx.post(path, json={"text": TEXT}, headers=headers, timeout=30)
        assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
    assert httpx.post(path, json={"text": TEXT}, headers={"xi-api-key": "secret"}, timeout=30).status_code == 200
