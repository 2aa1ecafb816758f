"""Voice-agent frameworks driven against the service: a real pipecat pipeline that records what reaches its end."""

from __future__ import annotations

import asyncio
import time


class PipecatRun:
    """A real pipecat pipeline: OpenAITTSService -> a sink that records the frames that reach it."""

    def __init__(self, url: str, voice: str) -> None:
        from pipecat.frames.frames import ErrorFrame, Frame, TTSAudioRawFrame
        from pipecat.pipeline.pipeline import Pipeline
        from pipecat.pipeline.task import PipelineParams, PipelineTask
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
        from pipecat.services.openai.tts import OpenAITTSService

        self.audio: list[TTSAudioRawFrame] = []
        self.errors: list[ErrorFrame] = []
        self.first_audio = asyncio.Event()
        self.first_at: float | None = None
        run = self

        class Sink(FrameProcessor):
            async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
                await super().process_frame(frame, direction)
                if isinstance(frame, TTSAudioRawFrame):
                    if not run.audio:
                        run.first_at = time.perf_counter()
                    run.audio.append(frame)
                    run.first_audio.set()
                elif isinstance(frame, ErrorFrame):
                    run.errors.append(frame)
                await self.push_frame(frame, direction)

        tts = OpenAITTSService(
            api_key="sk-unused", base_url=f"{url}/v1", settings=OpenAITTSService.Settings(voice=voice, model="tts-1")
        )
        self.task = PipelineTask(Pipeline([tts, Sink()]), params=PipelineParams(audio_out_sample_rate=24000))

    async def run(self, text: str, *, end: bool = True) -> None:
        from pipecat.frames.frames import EndFrame, TTSSpeakFrame
        from pipecat.workers.runner import WorkerRunner

        await self.task.queue_frames([TTSSpeakFrame(text)] + ([EndFrame()] if end else []))
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.task)
        await runner.run()
