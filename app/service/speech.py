"""Text -> segments -> prompts -> backend speech tokens -> stitched audio chunks: the service the routes call.

`SpeechService` wires the pieces of `app.service`: admission lanes, text input, voices, reference intake,
prompts fitted into the model's context, the context store, one `SegmentStream` per request (every text path:
a long text is spoken segment by segment) and one `Synthesis` per segment.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import AsyncGenerator

import numpy as np

from app.align.result import CharSpan
from app.audio.stitch import StitchPlan
from app.backend.vllm import VLLMClient
from app.engine.client import EngineClient
from app.engine.errors import EngineError
from app.errors import InvalidRequestError, NotReadyError
from app.observability.logs import clip
from app.observability.metrics import ServiceMetrics
from app.service.admission import Admission, MeteredAdmission, Slot
from app.service.context import ContextStore, SpeechContext
from app.service.debug_audio import DebugAudioWriter
from app.service.prompting import fit_context
from app.service.references import Resampler, read_reference
from app.service.requests import ResolvedGeneration, SpeechRequest, VoiceCloneRequest
from app.service.segments import SegmentStream
from app.service.synthesis import Synthesis, SynthesisJob
from app.service.text_input import TextInput, TextNormalizer, require_speech
from app.service.voice import Voice
from app.settings import GenerationSettings, LimitsSettings, Settings, StreamingSettings
from app.text.executor import SPEECH, TOOL

logger = logging.getLogger(__name__)


class SpeechService:
    """Turns requests into audio chunks. One instance per app, built in the lifespan."""

    def __init__(
        self,
        backend: VLLMClient,
        engine: EngineClient,
        normalizer: TextNormalizer,
        resample_to_16k: Resampler,
        *,
        limits: LimitsSettings,
        generation: GenerationSettings,
        streaming: StreamingSettings,
        max_model_len: int,
        context_wait: float,
        debug_audio: DebugAudioWriter | None = None,
        has_encoder: bool,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.backend = backend
        self.engine = engine
        self.resample_to_16k = resample_to_16k
        self.limits = limits
        self.generation = generation
        self.streaming = streaming
        self.max_model_len = max_model_len
        self.context_wait = context_wait  # how long a request waits for its context id's previous segment
        self.has_encoder = has_encoder
        self.metrics = metrics or ServiceMetrics()
        self.text_input = TextInput(normalizer, limits.max_input_chars)
        # admission before any work: every slot is taken at the start of a route and given back when its
        # response ends; voice-cloning uploads and /normalize calls have their own, smaller lanes
        self.admission = MeteredAdmission(limits.max_concurrent_requests, "requests", self.metrics)
        self.reference_lane = Admission(limits.max_concurrent_references, "voice-cloning uploads")
        self.normalize_lane = Admission(limits.max_concurrent_normalize, "normalize calls")
        self.contexts = ContextStore(streaming.context_ttl)
        self._debug_audio = debug_audio
        self._stream_numbers = itertools.count(1)  # names each stream's windows for the engine's batching

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend: VLLMClient,
        engine: EngineClient,
        normalizer: TextNormalizer,
        resample_to_16k: Resampler,
        *,
        has_encoder: bool,
        metrics: ServiceMetrics | None = None,
    ) -> SpeechService:
        """The service with its parts' groups of `settings`."""
        obs = settings.observability
        return cls(
            backend,
            engine,
            normalizer,
            resample_to_16k,
            limits=settings.limits,
            generation=settings.generation,
            streaming=settings.streaming,
            max_model_len=settings.backend.max_model_len,
            context_wait=settings.backend.read_timeout,
            debug_audio=DebugAudioWriter(obs.debug_audio_dir, obs.debug_audio_max_files) if obs.debug_audio else None,
            has_encoder=has_encoder,
            metrics=metrics,
        )

    def close(self) -> None:
        self.text_input.close()

    def admit(self, endpoint: str = "speech") -> Slot:
        """A request slot, or a 429 (`OverloadedError` with `Retry-After`) before any work is done."""
        return self.admission.admit(endpoint)

    # -- text ------------------------------------------------------------------------------------
    async def normalize(self, text: str, malaysian: bool, language: str = "auto", *, priority: int = SPEECH) -> str:
        """The text as it will be prompted: normalized, without control markers."""
        return await self.text_input.normalize(text, malaysian, language, priority=priority)

    async def normalize_tool(self, text: str, malaysian: bool, language: str = "auto") -> str:
        """`/v1/audio/normalize`: its own lane (429 when full), the input limit, and after speech requests."""
        with self.normalize_lane.admit():
            self.text_input.check(text, "input")
            normalized = await self.normalize(text, malaysian, language, priority=TOOL)
        return require_speech(normalized, "input")  # as the speech endpoints say it

    # -- requests -> jobs --------------------------------------------------------------------------
    def resolve_voice(self, name: str | None, param: str = "voice") -> str:
        """A request's voice name (or an alias) -> the built-in voice the model is prompted with (None: default)."""
        g = self.generation
        asked = name or g.default_speaker
        voice = g.resolve_voice(asked)
        if voice is None:
            aliases = f" (or an alias: {', '.join(g.voice_aliases)})" if g.voice_aliases else ""
            raise InvalidRequestError(
                f"unknown voice {asked!r}; available: {', '.join(g.speakers)}{aliases}",
                param=param,
                code="invalid_voice",
            )
        return voice

    def voice_for(self, name: str | None, param: str = "voice") -> Voice:
        """The one place a request's voice name becomes the `Voice` it is spoken in (built-in voices and aliases)."""
        return Voice.builtin(self.resolve_voice(name, param))

    async def prepare_speech(self, req: SpeechRequest) -> SegmentStream:
        """The request's segment stream: its whole `input` queued as segments (one for a text that fits in
        `STREAM_SEGMENT_MAX_CHARS`), to be generated and spoken in order by `SegmentStream.audio()`."""
        started = time.perf_counter()
        voice = self.voice_for(req.voice_name)
        self.text_input.check(req.input, "input")
        if req.instructions:
            logger.info("instructions given but not used by this model: %.80r", req.instructions)
        context = None
        if req.context is not None and self.streaming.context:
            context = await self._stored_context(req, voice.speaker or "")
        stream = self._whole_text(
            voice, req.resolved(self.generation, self.streaming), req, param="input", context=context, started=started
        )
        if req.context is not None and self.streaming.context:
            stream.context_claim = (req.context.id, self.contexts.claim(req.context.id))
        voice_log = voice.name if req.voice_name in (None, voice.name) else f"{req.voice_name}->{voice.name}"
        stream.speak(req.input)
        _log_request(
            stream, kind="speech", model=req.model, voice=voice_log, chars=len(req.input),
            context=len(context.tokens) if context else 0,
        )
        return stream

    def _whole_text(
        self, voice: Voice, gen: ResolvedGeneration, req: SpeechRequest | VoiceCloneRequest, **kw: object
    ) -> SegmentStream:
        return SegmentStream(
            self, voice, gen, normalize_malaysian=req.normalize_malaysian, language=req.language,
            use_context=self.streaming.context, one_request=True, **kw,  # type: ignore[arg-type]
        )

    async def _stored_context(self, req: SpeechRequest, voice: str) -> SpeechContext | None:
        """The previous segment stored under `req.context.id`, if it still fits this request."""
        assert req.context is not None
        previous = await self.contexts.previous(req.context.id, timeout=self.context_wait)
        if previous is None or previous.voice != voice:
            return None
        if req.context.previous_text is not None:
            given = await self.normalize(req.context.previous_text, req.normalize_malaysian, req.language)
            if not previous.text.endswith(given) and not given.endswith(previous.text):
                logger.info("context %s: previous_text differs from the stored segment; not used", req.context.id)
                return None
        return previous

    async def prepare_segment(
        self,
        voice: Voice,
        text: str,
        gen: ResolvedGeneration,
        *,
        context: SpeechContext | None = None,
        param: str = "input",
        started: float | None = None,
    ) -> SynthesisJob:
        """A job for already-normalized `text` in `voice`: a built-in voice after `context` when given, a cloned
        one after its reference."""
        self.text_input.check(text, param)
        prompt = voice.prompt_for(text, context)
        job = await self._job(prompt, gen, param=param, started=started or time.perf_counter())
        job.voice, job.text = voice.speaker, text
        job.context = context if not voice.cloned else None
        return job

    async def prepare_voice_clone(self, req: VoiceCloneRequest, audio_bytes: bytes) -> SegmentStream:
        """`/v1/audio/vc`: the clip encoded once; `generate_text` spoken segment by segment, each segment prompted
        with the reference."""
        started = time.perf_counter()
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        self.text_input.check(req.generate_text, "generate_text")
        self.text_input.check(req.reference_text, "reference_text")
        clip = await asyncio.to_thread(self._read_reference, audio_bytes)  # bounded by `reference_lane`
        ref_tokens = await self.engine.encode(clip)
        ref_text = await self.normalize(req.reference_text, req.normalize_malaysian, req.language)
        voice = Voice.clone(require_speech(ref_text, "reference_text"), ref_tokens)
        stream = self._whole_text(
            voice, req.resolved(self.generation, self.streaming), req, endpoint="vc", param="generate_text",
            prompt_param="reference_audio", started=started,
        )
        stream.speak(req.generate_text)
        _log_request(
            stream, kind="vc", model=req.model, voice=voice.name, chars=len(req.generate_text),
            ref_tokens=len(ref_tokens),
        )
        return stream

    def _read_reference(self, data: bytes) -> np.ndarray:
        limits = self.limits
        return read_reference(
            data, max_bytes=limits.max_reference_bytes, max_seconds=limits.max_reference_seconds,
            resample_to_16k=self.resample_to_16k,
        )

    async def _job(self, prompt: str, gen: ResolvedGeneration, *, param: str, started: float) -> SynthesisJob:
        max_tokens = await fit_context(
            prompt, gen.max_tokens, param=param, max_model_len=self.max_model_len, counter=self.backend
        )
        return SynthesisJob(
            request_id=f"tts-{uuid.uuid4().hex[:16]}", prompt=prompt, gen=gen.model_copy(update={"max_tokens": max_tokens}),
            started=started, sample_rate=self.sample_rate,
        )

    # -- alignment -------------------------------------------------------------------------------
    async def align(self, audio: np.ndarray, text: str) -> list[CharSpan] | None:
        """Where each character of `text` (a segment's normalized text) is heard in `audio` (float32 at the
        codec's rate, as delivered before speed and rate changes): one `[start, end)` sample span per character,
        `source` "aligned". None when the engine has no aligner (ALIGNER_MODEL empty) or the alignment failed
        (logged): the caller keeps its estimate then. A segment's audio is aligned once it is complete."""
        if not self.engine.has_aligner:
            return None
        try:
            result = await self.engine.align(audio, self.sample_rate, text)
        except EngineError as exc:
            logger.warning("alignment of a %d-character segment failed: %s", len(text), exc)
            return None
        return result.chars()

    # -- generation ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The loaded codec's output rate (the engine reports its geometry)."""
        return self.engine.geometry.sample_rate

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
            metrics=self.metrics, debug_audio=self._debug_audio,
        )

    def synthesize(self, job: SynthesisJob) -> AsyncGenerator[np.ndarray, None]:
        """Stitched float32 audio chunks at the codec's rate, as the backend's tokens arrive.

        Closing the iterator (a client that went away) cancels the backend request at once.
        """
        return self.synthesis(job).chunks()


def _log_request(
    stream: SegmentStream, *, kind: str, model: str | None, voice: str, chars: int, **extra: object
) -> None:
    gen = stream.gen
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    logger.info(
        "%s %s model=%s voice=%s chars=%d segments=%d format=%s stream=%s%s max_tokens=%d (per segment) %s",
        stream.request_id,
        kind,
        clip(model or "-"),
        clip(voice),
        chars,
        stream.planned_segments,
        gen.response_format,
        gen.stream,
        "/sse" if gen.stream_format == "sse" else "",
        gen.max_tokens,
        details,
    )
