"""Jobs and their synthesis: a prompt fitted into the model's context becomes a `SynthesisJob`; a job becomes a
`Synthesis` with its stitch plan, its backend and engine, and a number that names its windows for the engine's
batching."""

from __future__ import annotations

import itertools
import time

from app.audio.stitch import StitchPlan
from app.backend.pool import BackendPool
from app.engine.client import EngineClient
from app.observability import tracing
from app.observability.metrics import ServiceMetrics
from app.service.debug_audio import DebugAudioWriter
from app.service.principal import cache_salt, caller_tenant
from app.service.prompting import fit_context
from app.service.requests import ResolvedGeneration
from app.service.synthesis import Synthesis, SynthesisJob
from app.settings import StreamingSettings


class Synthesizer:
    def __init__(
        self,
        backend: BackendPool,
        engine: EngineClient,
        streaming: StreamingSettings,
        metrics: ServiceMetrics,
        max_model_len: int,
        debug_audio: DebugAudioWriter | None = None,
    ) -> None:
        self.backend = backend
        self.engine = engine
        self.streaming = streaming
        self.metrics = metrics
        self.max_model_len = max_model_len
        self.debug_audio = debug_audio
        self._stream_numbers = itertools.count(1)

    async def job(self, prompt: str, gen: ResolvedGeneration, *, param: str, started: float | None = None) -> SynthesisJob:
        """A job for `prompt`, its max_tokens cut to what the model's context leaves (a 400 naming `param` when
        nothing is left)."""
        max_tokens = await fit_context(
            prompt, gen.max_tokens, param=param, max_model_len=self.max_model_len, counter=self.backend
        )
        return SynthesisJob(
            request_id=tracing.job_request_id(), prompt=prompt, gen=gen.model_copy(update={"max_tokens": max_tokens}),
            started=started or time.perf_counter(), sample_rate=self.engine.geometry.sample_rate,
            cache_salt=cache_salt(caller_tenant()),
        )  # fmt: skip

    def plan_for(self, gen: ResolvedGeneration) -> StitchPlan:
        s = self.streaming
        return StitchPlan.from_seconds(
            gen.playback_speed,
            gen.playback_overlap_speed,
            s.first_chunk_seconds,
            s.left_context_seconds,
            geometry=self.engine.geometry,
            fade_in_ms=s.fade_in_ms,
            max_chunk_seconds=s.max_chunk_seconds,
            # a longer window than the largest CUDA graph would be decoded eagerly: catching up stops there
            max_window_tokens=s.max_window_tokens,
        )

    def synthesis(self, job: SynthesisJob) -> Synthesis:
        """The job's `Synthesis`: `start()` opens its backend request, `chunks()` its stitched audio."""
        return Synthesis(
            job, self.plan_for(job.gen), backend=self.backend, engine=self.engine, stream=next(self._stream_numbers),
            metrics=self.metrics, debug_audio=self.debug_audio,
        )
