"""Text -> segments -> prompts -> backend speech tokens -> stitched audio chunks: the service the routes call.

`SpeechService` wires the pieces of `app.service`: admission lanes, text input, voices, reference intake,
prompts fitted into the model's context, the context store, one `SegmentStream` per request (every text path:
a long text is spoken segment by segment) and one `Synthesis` per segment.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time

from app.audio.output import OutputSpec
from app.backend.pool import BackendPool
from app.engine.client import EngineClient
from app.errors import NotReadyError
from app.observability import tracing
from app.observability.logs import clip
from app.observability.metrics import ServiceMetrics
from app.service.admission import Admission, MeteredAdmission, Slot
from app.service.context import ContextStore, SpeechContext
from app.service.debug_audio import DebugAudioWriter
from app.service.dictionaries import Dictionaries
from app.service.dictionary_store import DictionaryStore
from app.service.leases import KeyLimits
from app.service.principal import DEFAULT_TENANT, Principal
from app.service.prompting import check_room
from app.service.references import ReferenceIntake, Resampler
from app.service.render import Prepared, Renderer
from app.service.requests import ResolvedGeneration, SaveVoiceRequest, SpeechRequest, VoiceCloneRequest
from app.service.segment_policy import ContextClaim, PerSegment, RequestAccounting, SegmentAccounting, StreamObserver
from app.service.segments import SegmentStream
from app.service.ssml_input import speech_text
from app.service.synthesis import Synthesis, SynthesisJob
from app.service.synthesizer import Synthesizer
from app.service.text_input import TextInput, TextNormalizer, require_speech
from app.service.timeline import EngineTimings
from app.service.usage import UsageObserver, UsageRecorder
from app.service.voice import Voice
from app.service.voice_store import SavedVoice, VoiceStore
from app.service.voices import Voices, utc_now
from app.settings import GenerationSettings, LimitsSettings, Settings, StreamingSettings
from app.text.dictionary import apply as apply_dictionaries
from app.text.dictionary import phonemes_met
from app.text.executor import SPEECH, TOOL
from app.text.offsets import Mapped
from app.text.options import TextOptions

logger = logging.getLogger(__name__)

# What a saved voice's reference must leave of the model's context: a short sentence (50 tokens) and 2 s of its
# speech (100). A voice that leaves less would be stored, and every request naming it refused.
VOICE_ROOM_TOKENS = 150


class SpeechService:
    """Turns requests into audio chunks. One instance per app, built in the lifespan."""

    def __init__(
        self,
        backend: BackendPool,
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
        # each caller's share: its principal's limits.requests
        self.admission = MeteredAdmission(limits.max_concurrent_requests, "requests", self.metrics, shared=True)
        # uploads, reference decodes and encodes: their own lane
        self.references = ReferenceIntake(engine, resample_to_16k, limits, self.metrics, cache_size=reference_cache_size)
        self.reference_lane = self.references.lane
        self.normalize_lane = Admission(limits.max_concurrent_normalize, "normalize calls")
        self.contexts = ContextStore(streaming.context_ttl)
        self.synthesizer = Synthesizer(backend, engine, streaming, self.metrics, max_model_len, debug_audio)
        self.voices = Voices(generation, store)
        self.dictionaries = Dictionaries(DictionaryStore(store.engine) if store is not None else None)
        self.timings = EngineTimings(engine)
        self.key_limits: KeyLimits | None = None  # a key's own limits (app/service/leases.py), once the store is open
        self.usage: UsageRecorder | None = None  # usage metering (app/service/usage.py), once the store is open
        self.renderer = Renderer(lambda: self.sample_rate, self.timings, complexity=streaming.opus_complexity)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        backend: BackendPool,
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
        with tracing.span("tts.admission", endpoint=endpoint):
            return self.admission.admit(endpoint)

    # -- text ------------------------------------------------------------------------------------
    async def normalize(self, text: str, options: TextOptions, *, priority: int = SPEECH) -> str:
        """The text as it will be prompted: normalized, without control markers."""
        with tracing.span("tts.normalization", chars=len(text)):
            text = apply_dictionaries(options.dictionaries, text)  # the request's pronunciation dictionaries first
            return await self.text_input.normalize(text, options.normalize_malaysian, options.language, priority=priority)

    async def read(self, text: str, options: TextOptions, *, priority: int = SPEECH) -> Mapped:
        """`normalize` for a segment: the text as it will be prompted, with its map back to the text as sent."""
        with tracing.span("tts.normalization", chars=len(text)):
            return await self.text_input.speak(text, options, priority=priority)

    async def normalize_tool(self, text: str, options: TextOptions) -> str:
        """`/v1/audio/normalize`: its own lane (429 when full), the input limit, and after speech requests."""
        with self.normalize_lane.admit():
            self.text_input.check(text, "input")
            normalized = await self.normalize(text, options, priority=TOOL)
        return require_speech(normalized, "input")  # as the speech endpoints say it

    # -- requests -> jobs --------------------------------------------------------------------------
    async def voice(self, name: str | None, param: str = "voice") -> Voice:
        """A request's voice name -> its `Voice`: a built-in voice or alias first, then a saved voice (None or
        empty: the default speaker; unknown: 400 `invalid_voice`, `param` naming the field)."""
        return await self.voices.resolve(name, param)

    async def prepare_speech(
        self, req: SpeechRequest, caller: Principal | None = None, *, text_param: str = "input", bit_rate: int | None = None
    ) -> Prepared:
        """The request's segment stream: its whole `input` queued as segments (one for a text that fits in
        `STREAM_SEGMENT_MAX_CHARS`), to be generated and spoken in order by its `events()`. `caller`:
        whose request it is (its tenant's context ids, its key id in the log line). `text_param`: what the
        client calls `input` (ElevenLabs' `text`), named by its errors."""
        started = time.perf_counter()
        self.text_input.check(req.input, text_param)
        spoken = speech_text(req.input, req.input_format, text_param)  # a 400 for bad SSML before any other work
        voice = await self.voice(req.voice_name)
        options = await self.dictionaries.read_with(req)
        if self.key_limits is not None:  # the key's characters per minute, before the context is claimed
            await self.key_limits.charge(caller, len(req.input))
        if req.instructions:
            logger.info("instructions given but not used by this model: %.80r", req.instructions)
        context = None
        observers: list[StreamObserver] = []
        if req.context is not None and self.streaming.context:
            if voice.speaker is not None:
                context = await stored_context(self, req, voice.speaker, caller, options)
            key = context_key(caller, req.context.id)
            observers.append(ContextClaim(self.contexts, key, self.streaming.context_max_tokens))
        stream = self._whole_text(
            voice, req, bit_rate, text=options, param=text_param, context=context, started=started, observers=observers
        )
        stream.unused += unused_rules(options, req.input)
        voice_log = voice.name if req.voice_name in (None, voice.name) else f"{req.voice_name}->{voice.name}"
        stream.usage.ssml_ignored += spoken.ignored
        stream.feed.speak(spoken.text)
        prepared = Prepared(stream, req.delivery())
        _log_request(
            prepared, caller, kind="speech", model=req.model, voice=voice_log, chars=len(req.input),
            context=len(context.tokens) if context else 0,
        )
        return prepared

    def _whole_text(
        self, voice: Voice, req: SpeechRequest | VoiceCloneRequest, bit_rate: int | None = None, *,
        text: TextOptions | None = None, observers: list[StreamObserver] | None = None, **kw: object,
    ) -> SegmentStream:
        """An HTTP request's stream: admitted by its route, counted once (and after its other observers)."""
        return SegmentStream(
            self, voice, req.resolved(self.generation, self.streaming), req.output_spec(bit_rate),
            text=text or req.text_options, use_context=self.streaming.context,
            observers=[*(observers or ()), *self._metered("http"), RequestAccounting(self.metrics)],
            **kw,  # type: ignore[arg-type]
        )  # fmt: skip

    def _metered(self, kind: str) -> list[StreamObserver]:
        """Usage metering, once the store is open: every request and WebSocket context, however it ended."""
        return [UsageObserver(self.usage, websocket=kind == "websocket")] if self.usage is not None else []

    def context_stream(self, voice: Voice, gen: ResolvedGeneration, output: OutputSpec, **kw: object) -> SegmentStream:
        """A WebSocket context's stream: each segment admitted (429 when full) and counted as a request."""
        return SegmentStream(
            self, voice, gen, output, admission=PerSegment(self.admit),
            observers=[*self._metered("websocket"), SegmentAccounting()], **kw,  # type: ignore[arg-type]
        )

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
        job = await self.synthesizer.job(prompt, gen, param=param, started=started or time.perf_counter())
        job.voice, job.text = voice.speaker, text
        job.context = context if not voice.cloned else None
        return job

    async def prepare_voice_clone(
        self, req: VoiceCloneRequest, audio_bytes: bytes, caller: Principal | None = None
    ) -> Prepared:
        """`/v1/audio/vc`: the clip encoded once; `generate_text` spoken segment by segment, each segment prompted
        with the reference."""
        started = time.perf_counter()
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        self.text_input.check(req.generate_text, "generate_text")
        self.text_input.check(req.reference_text, "reference_text")
        spoken = speech_text(req.generate_text, req.input_format, "generate_text")
        if self.key_limits is not None:
            await self.key_limits.charge(caller, len(req.generate_text))
        options = await self.dictionaries.read_with(req)
        ref_tokens = await self.references.encode(audio_bytes, req.reference_text)  # cached for a clip seen before
        ref_text = await self.normalize(req.reference_text, req.text_options)  # what the clip says: as written
        voice = Voice.clone(require_speech(ref_text, "reference_text"), ref_tokens)
        stream = self._whole_text(voice, req, text=options, endpoint="vc", param="generate_text",
                                  prompt_param="reference_audio", started=started)  # fmt: skip
        stream.unused += unused_rules(options, req.generate_text)
        stream.usage.ssml_ignored += spoken.ignored
        stream.feed.speak(spoken.text)
        prepared = Prepared(stream, req.delivery())
        _log_request(
            prepared, caller, kind="vc", model=req.model, voice=voice.name, chars=len(req.generate_text),
            ref_tokens=len(ref_tokens),
        )
        return prepared

    async def save_voice(self, req: SaveVoiceRequest, audio_bytes: bytes, caller: Principal) -> SavedVoice:
        """`POST /v1/audio/voices`: the clip encoded once, its transcript normalized, both stored under `req.name`
        (`created_from`: the caller's address)."""
        client = caller.client or ""
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        await self.voices.check_free(req.name)  # before the encoder: a taken name is a 409 at once
        self.text_input.check(req.text, "text")
        tokens = await self.references.encode(audio_bytes, req.text)
        text = require_speech(await self.normalize(req.text, req.text_options), "text")
        await check_room(
            Voice.clone(text, tokens).prompt_for(""), VOICE_ROOM_TOKENS, param="audio",
            max_model_len=self.max_model_len, counter=self.backend, at_least=len(tokens),
        )  # fmt: skip
        voice = await saved_voice(req, text, tokens, audio_bytes, self.engine.geometry.tokens_per_second, caller)
        await self.voices.save(voice)
        logger.info("saved voice %r: %d reference tokens, consent by %r from %s key=%s", voice.name, len(tokens),
                    voice.consent_by or "-", client, caller.key_id)
        return voice

    # -- generation ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The loaded codec's output rate (the engine reports its geometry)."""
        return self.engine.geometry.sample_rate

    def synthesis(self, job: SynthesisJob) -> Synthesis:
        """The job's `Synthesis`: `start()` opens its backend request, `chunks()` its stitched audio."""
        return self.synthesizer.synthesis(job)


async def saved_voice(
    req: SaveVoiceRequest, text: str, tokens: tuple[int, ...], audio_bytes: bytes, tokens_per_second: int,
    caller: Principal,
) -> SavedVoice:
    """The record a saved voice is stored as: its normalized transcript `text` and reference `tokens`, the clip's
    digest (hashed off the event loop), the consent given, who gave it from where and under which key, and the
    tenant it belongs to."""
    digest = await asyncio.to_thread(lambda: hashlib.sha256(audio_bytes).hexdigest())
    return SavedVoice(
        name=req.name, reference_text=text, transcript=req.text, reference_tokens=tokens,
        audio_seconds=len(tokens) / tokens_per_second, audio_sha256=digest,
        language=req.language, consent=req.consent.strip().lower(), consent_by=req.consent_by or "",
        created_from=caller.client or "", created_at=utc_now(), tenant=caller.tenant, created_by_key=caller.key_id,
    )  # fmt: skip


async def stored_context(
    service: SpeechService, req: SpeechRequest, voice: str, caller: Principal | None, options: TextOptions | None = None
) -> SpeechContext | None:
    """The previous segment stored under `req.context.id` (of the caller's tenant), if it is this voice's and
    `previous_text`, when given, ends as it did (read as this request reads: `options`, its dictionaries too)."""
    assert req.context is not None
    previous = await service.contexts.previous(context_key(caller, req.context.id), timeout=service.context_wait)
    if previous is None or previous.voice != voice:
        return None
    if req.context.previous_text is not None:
        tail = service.text_input.tail(req.context.previous_text)  # only its end can match; bounded work
        given = await service.normalize(tail, options or req.text_options)
        if not previous.text.endswith(given) and not given.endswith(previous.text):
            logger.info("context %s: previous_text differs from the stored segment; not used", req.context.id)
            return None
    return previous


def unused_rules(options: TextOptions, text: str) -> list[str]:
    """What the response names as not applied: the dictionaries' phoneme rules that `text` meets (our model reads
    text, not phonemes), as `phoneme:<string>`."""
    return [f"phoneme:{r.string_to_replace}" for r in phonemes_met(options.dictionaries, text)]


def context_key(caller: Principal | None, context_id: str) -> tuple[str, str]:
    """Where a `context.id` is stored: under its caller's tenant, so that tenants never share one."""
    return (caller.tenant if caller is not None else DEFAULT_TENANT, context_id)


def _log_request(
    prepared: Prepared, caller: Principal | None, *, kind: str, model: str | None, voice: str, chars: int,
    **extra: object,
) -> None:
    """The request's log line: its id, its caller's key id (never the key), what it asks."""
    stream, delivery = prepared.stream, prepared.delivery
    details = " ".join(f"{k}={v}" for k, v in extra.items())
    logger.info(
        "%s %s key=%s model=%s voice=%s chars=%d format=%s stream=%s%s max_tokens=%d (per segment) %s",
        stream.request_id,
        kind,
        caller.key_id if caller is not None else "-",
        clip(model or "-"),
        clip(voice),
        chars,
        stream.output.format,
        delivery.stream,
        "/sse" if delivery.stream_format == "sse" else "",
        stream.gen.max_tokens,
        details,
    )
