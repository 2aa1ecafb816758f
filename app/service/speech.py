"""Text -> segments -> prompts -> backend speech tokens -> stitched audio chunks: the service the routes call.

`SpeechService` wires the pieces of `app.service`: admission lanes, text input, voices, reference intake,
prompts fitted into the model's context, the context store, one `SegmentStream` per request (every text path:
a long text is spoken segment by segment) and one `Synthesis` per segment.
"""

from __future__ import annotations

import asyncio
import hashlib
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
from app.errors import NotReadyError
from app.observability.logs import clip
from app.observability.metrics import ServiceMetrics
from app.service.admission import Admission, MeteredAdmission, Slot
from app.service.context import ContextStore, SpeechContext
from app.service.debug_audio import DebugAudioWriter
from app.service.leases import KeyLimits
from app.service.principal import DEFAULT_TENANT, Principal, cache_salt, caller_tenant
from app.service.prompting import check_room, fit_context
from app.service.references import EncodingCache, Resampler, clip_key, read_reference
from app.service.requests import ResolvedGeneration, SaveVoiceRequest, SpeechRequest, VoiceCloneRequest
from app.service.segments import SegmentStream
from app.service.synthesis import Synthesis, SynthesisJob
from app.service.text_input import TextInput, TextNormalizer, require_speech
from app.service.timing import SegmentTimings, aligned, estimated
from app.service.usage import UsageRecorder
from app.service.voice import Voice
from app.service.voice_store import SavedVoice, VoiceStore
from app.service.voices import Voices, utc_now
from app.settings import GenerationSettings, LimitsSettings, Settings, StreamingSettings
from app.text.executor import SPEECH, TOOL

logger = logging.getLogger(__name__)

# What a saved voice's reference must leave of the model's context: a short sentence (50 tokens) and 2 s of its
# speech (100). A voice that leaves less would be stored, and every request naming it refused.
VOICE_ROOM_TOKENS = 150


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
        store: VoiceStore | None = None,
        reference_cache_size: int = 0,
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
        self.admission = MeteredAdmission(  # each caller's share: its principal's limits.requests
            limits.max_concurrent_requests, "requests", self.metrics, shared=True
        )
        self.reference_lane = Admission(limits.max_concurrent_references, "voice-cloning uploads")
        self.normalize_lane = Admission(limits.max_concurrent_normalize, "normalize calls")
        self.contexts = ContextStore(streaming.context_ttl)
        self._debug_audio = debug_audio
        self._stream_numbers = itertools.count(1)  # names each stream's windows for the engine's batching
        self.voices = Voices(generation, store)
        self.encodings = EncodingCache(reference_cache_size)  # reference clip + transcript -> codec tokens
        self.key_limits: KeyLimits | None = None  # a key's own limits (app/service/leases.py), once the store is open
        self.usage: UsageRecorder | None = None  # usage metering (app/service/usage.py), once the store is open

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
        store: VoiceStore | None = None,
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
            store=store,
            reference_cache_size=settings.limits.reference_cache_size,
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
    async def voice(self, name: str | None, param: str = "voice") -> Voice:
        """A request's voice name -> its `Voice`: a built-in voice or alias first, then a saved voice (None or
        empty: the default speaker; unknown: 400 `invalid_voice`, `param` naming the field)."""
        return await self.voices.resolve(name, param)

    async def prepare_speech(
        self, req: SpeechRequest, caller: Principal | None = None, *, text_param: str = "input"
    ) -> SegmentStream:
        """The request's segment stream: its whole `input` queued as segments (one for a text that fits in
        `STREAM_SEGMENT_MAX_CHARS`), to be generated and spoken in order by `SegmentStream.audio()`. `caller`:
        whose request it is (its tenant's context ids, its key id in the log line). `text_param`: what the
        client calls `input` (ElevenLabs' `text`), named by its errors."""
        started = time.perf_counter()
        voice = await self.voice(req.voice_name)
        self.text_input.check(req.input, text_param)
        if self.key_limits is not None:  # the key's characters per minute, before the context is claimed
            await self.key_limits.charge(caller, len(req.input))
        if req.instructions:
            logger.info("instructions given but not used by this model: %.80r", req.instructions)
        context = None
        if req.context is not None and self.streaming.context and voice.speaker is not None:
            context = await self._stored_context(req, voice.speaker, caller)
        stream = self._whole_text(
            voice, req.resolved(self.generation, self.streaming), req, param=text_param, context=context,
            started=started,
        )  # fmt: skip
        if req.context is not None and self.streaming.context:
            key = context_key(caller, req.context.id)
            stream.context_claim = (key, self.contexts.claim(key))
        voice_log = voice.name if req.voice_name in (None, voice.name) else f"{req.voice_name}->{voice.name}"
        stream.speak(req.input)
        _log_request(
            stream, caller, kind="speech", model=req.model, voice=voice_log, chars=len(req.input),
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

    async def _stored_context(self, req: SpeechRequest, voice: str, caller: Principal | None) -> SpeechContext | None:
        """The previous segment stored under `req.context.id` (of the caller's tenant), if it still fits."""
        assert req.context is not None
        previous = await self.contexts.previous(context_key(caller, req.context.id), timeout=self.context_wait)
        if previous is None or previous.voice != voice:
            return None
        if req.context.previous_text is not None:
            tail = self.text_input.tail(req.context.previous_text)  # only its end can match; bounded work
            given = await self.normalize(tail, req.normalize_malaysian, req.language)
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

    async def prepare_voice_clone(
        self, req: VoiceCloneRequest, audio_bytes: bytes, caller: Principal | None = None
    ) -> SegmentStream:
        """`/v1/audio/vc`: the clip encoded once; `generate_text` spoken segment by segment, each segment prompted
        with the reference."""
        started = time.perf_counter()
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        self.text_input.check(req.generate_text, "generate_text")
        self.text_input.check(req.reference_text, "reference_text")
        if self.key_limits is not None:
            await self.key_limits.charge(caller, len(req.generate_text))
        ref_tokens = await self.encode_reference(audio_bytes, req.reference_text)  # cached for a clip seen before
        ref_text = await self.normalize(req.reference_text, req.normalize_malaysian, req.language)
        voice = Voice.clone(require_speech(ref_text, "reference_text"), ref_tokens)
        stream = self._whole_text(
            voice, req.resolved(self.generation, self.streaming), req, endpoint="vc", param="generate_text",
            prompt_param="reference_audio", started=started,
        )
        stream.speak(req.generate_text)
        _log_request(
            stream, caller, kind="vc", model=req.model, voice=voice.name, chars=len(req.generate_text),
            ref_tokens=len(ref_tokens),
        )
        return stream

    async def encode_reference(self, audio_bytes: bytes, transcript: str) -> tuple[int, ...]:
        """The codec tokens of an uploaded clip: from the cache when the same clip came with the same transcript,
        else read, checked and encoded (bounded by `reference_lane`)."""
        key = await asyncio.to_thread(clip_key, audio_bytes, transcript) if self.encodings.size else ""
        key = f"{caller_tenant()}:{key}" if key else ""  # per tenant: a hit's timing tells of another's upload
        cached = self.encodings.get(key) if key else None
        self.metrics.reference_cache.labels("hit" if cached is not None else "miss").inc()
        if cached is not None:
            return cached
        clip = await asyncio.to_thread(self._read_reference, audio_bytes)
        tokens = tuple(int(t) for t in await self.engine.encode(clip))
        if key:
            self.encodings.put(key, tokens)
        return tokens

    async def save_voice(self, req: SaveVoiceRequest, audio_bytes: bytes, caller: Principal) -> SavedVoice:
        """`POST /v1/audio/voices`: the clip encoded once, its transcript normalized, both stored under `req.name`
        (`created_from`: the caller's address)."""
        client = caller.client or ""
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        await self.voices.check_free(req.name)  # before the encoder: a taken name is a 409 at once
        self.text_input.check(req.text, "text")
        tokens = await self.encode_reference(audio_bytes, req.text)
        text = require_speech(await self.normalize(req.text, req.normalize_malaysian, req.language), "text")
        await check_room(
            Voice.clone(text, tokens).prompt_for(""), VOICE_ROOM_TOKENS, param="audio",
            max_model_len=self.max_model_len, counter=self.backend, at_least=len(tokens),
        )  # fmt: skip
        digest = await asyncio.to_thread(lambda: hashlib.sha256(audio_bytes).hexdigest())
        voice = SavedVoice(
            name=req.name, reference_text=text, transcript=req.text, reference_tokens=tokens,
            audio_seconds=len(tokens) / self.engine.geometry.tokens_per_second, audio_sha256=digest,
            language=req.language, consent=req.consent.strip().lower(), consent_by=req.consent_by or "",
            created_from=client, created_at=utc_now(), tenant=caller.tenant, created_by_key=caller.key_id,
        )
        await self.voices.save(voice)
        logger.info("saved voice %r: %d reference tokens, consent by %r from %s key=%s", voice.name, len(tokens),
                    voice.consent_by or "-", client, caller.key_id)
        return voice

    def _read_reference(self, data: bytes) -> np.ndarray:
        limits = self.limits
        return read_reference(
            data, max_bytes=limits.max_reference_bytes, max_seconds=limits.max_reference_seconds,
            resample_to_16k=self.resample_to_16k, max_channels=limits.max_reference_channels,
            max_decoded_bytes=limits.max_reference_decoded_bytes,
        )

    async def _job(self, prompt: str, gen: ResolvedGeneration, *, param: str, started: float) -> SynthesisJob:
        max_tokens = await fit_context(
            prompt, gen.max_tokens, param=param, max_model_len=self.max_model_len, counter=self.backend
        )
        return SynthesisJob(
            request_id=f"tts-{uuid.uuid4().hex[:16]}", prompt=prompt, gen=gen.model_copy(update={"max_tokens": max_tokens}),
            started=started, sample_rate=self.sample_rate, cache_salt=cache_salt(caller_tenant()),
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

    @property
    def has_aligner(self) -> bool:
        return self.engine.has_aligner

    async def segment_timings(
        self, text: str, audio: np.ndarray | None, *, start: int, end: int, rate: int
    ) -> SegmentTimings:
        """A segment's character timings over [start, end) of the delivered audio (samples at `rate`): the forced
        aligner's over the segment's own `audio` (the codec's output) when it has one and it succeeds, else the
        estimate. `source` says which."""
        spans = await self.align(audio, text) if audio is not None and len(audio) and text else None
        if spans:
            return aligned(
                text, [(c.start_sample, c.end_sample) for c in spans], source_samples=len(audio), start=start,
                end=end, rate=rate,
            )
        return estimated(text, start=start, end=end, rate=rate)

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


def context_key(caller: Principal | None, context_id: str) -> tuple[str, str]:
    """Where a `context.id` is stored: under its caller's tenant, so that tenants never share one."""
    return (caller.tenant if caller is not None else DEFAULT_TENANT, context_id)


def _log_request(
    stream: SegmentStream, caller: Principal | None, *, kind: str, model: str | None, voice: str, chars: int,
    **extra: object,
) -> None:
    """The request's log line: its id, its caller's key id (never the key), what it asks."""
    gen = stream.gen
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    logger.info(
        "%s %s key=%s model=%s voice=%s chars=%d format=%s stream=%s%s max_tokens=%d (per segment) %s",
        stream.request_id,
        kind,
        caller.key_id if caller is not None else "-",
        clip(model or "-"),
        clip(voice),
        chars,
        gen.response_format,
        gen.stream,
        "/sse" if gen.stream_format == "sse" else "",
        gen.max_tokens,
        details,
    )
