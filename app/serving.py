"""Text -> prompt -> backend speech tokens -> stitched 24 kHz audio chunks."""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app.admission import Admission, Slot
from app.audio.stitch import StitchPlan, StreamStitcher, Window
from app.backend.vllm import SamplingParams, StreamStats, VLLMClient
from app.codec.interface import TOKEN_DTYPE
from app.debug_audio import DebugAudioWriter
from app.engine.client import EngineClient
from app.env import Settings
from app.errors import (
    InvalidRequestError,
    NoAudioError,
    NotReadyError,
    OverloadedError,
    PayloadTooLargeError,
    PromptTooLongError,
)
from app.metrics import PlaybackClock, ServiceMetrics
from app.prompts import context_prompt, speech_prompt, strip_control_tokens, voice_clone_prompt
from app.protocol import ResolvedGeneration, SpeechRequest, VoiceCloneRequest
from app.streaming_input import ContextStore, SpeechContext, trim_context
from app.text.executor import SPEECH, TOOL, PriorityExecutor

logger = logging.getLogger(__name__)

WINDOWS_AHEAD = 2  # decode windows one stream may have queued in the codec worker at once
MIN_REFERENCE_RATE, MAX_REFERENCE_RATE = 8_000, 192_000  # Hz accepted for reference audio


class TextNormalizer(Protocol):
    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str: ...


class Resampler(Protocol):
    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray: ...


@dataclass
class SynthesisJob:
    """Everything needed to generate one response."""

    request_id: str
    prompt: str
    gen: ResolvedGeneration
    endpoint: str = "speech"  # metrics label: speech or vc
    sample_rate: int = 24_000  # the loaded codec's (set by the service)
    stats: StreamStats = field(default_factory=StreamStats)
    started: float = field(default_factory=time.perf_counter)
    first_audio_at: float | None = None
    samples_out: int = 0
    voice: str | None = None  # a built-in voice (None: cloned)
    text: str = ""  # the normalized text spoken
    tokens: list[int] = field(default_factory=list)  # the speech token ids generated so far
    context: SpeechContext | None = None  # the previous segment this job was prompted with
    context_claim: tuple[str, asyncio.Future] | None = None  # a /v1/audio/speech context id to store it under

    def as_context(self, max_tokens: int) -> SpeechContext | None:
        """This job's text and speech tokens, bounded, as the next segment's context (None for a cloned voice)."""
        if self.voice is None:
            return None
        return trim_context(self.text, self.tokens, max_tokens, voice=self.voice)


class SpeechService:
    """Turns requests into audio chunks. One instance per app, built in the lifespan."""

    def __init__(
        self,
        settings: Settings,
        backend: VLLMClient,
        engine: EngineClient,
        normalizer: TextNormalizer,
        resample_to_16k: Resampler,
        *,
        has_encoder: bool,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.backend = backend
        self.engine = engine
        self.normalizer = normalizer
        self.resample_to_16k = resample_to_16k
        self.has_encoder = has_encoder
        self._text_pool = PriorityExecutor("normalizer")
        self._debug_audio = DebugAudioWriter(settings.debug_audio_dir, settings.debug_audio_max_files)
        # admission before any work: every slot is taken at the start of a route and given back when its
        # response ends; voice-cloning uploads and /normalize calls have their own, smaller lanes
        self.admission = Admission(settings.max_concurrent_requests, "requests")
        self.reference_lane = Admission(settings.max_concurrent_references, "voice-cloning uploads")
        self.normalize_lane = Admission(settings.max_concurrent_normalize, "normalize calls")
        self.contexts = ContextStore(settings.speech_context_ttl)
        self.metrics = metrics or ServiceMetrics()
        self._stream_numbers = itertools.count(1)  # names each stream's windows for the engine's batching

    def close(self) -> None:
        self._text_pool.shutdown()

    @property
    def in_flight(self) -> int:
        """Admitted speech and voice-cloning requests whose response has not ended."""
        return self.admission.in_use

    def admit(self, endpoint: str = "speech") -> Slot:
        """A request slot, or a 429 (`OverloadedError` with `Retry-After`) before any work is done."""
        try:
            slot = self.admission.admit()
        except OverloadedError:
            self.metrics.requests.labels(endpoint, "-", "rejected").inc()
            raise
        self.metrics.in_flight.inc()
        slot.on_release = self.metrics.in_flight.dec
        return slot

    # -- text ------------------------------------------------------------------------------------
    async def normalize(self, text: str, malaysian: bool, language: str = "auto", *, priority: int = SPEECH) -> str:
        """The text as it will be prompted: normalized, without control markers."""
        text = await self._text_pool.run(priority, self.normalizer.normalize, text, malaysian, language)
        return strip_control_tokens(text)

    async def normalize_tool(self, text: str, malaysian: bool, language: str = "auto") -> str:
        """`/v1/audio/normalize`: its own lane (429 when full), the input limit, and after speech requests."""
        with self.normalize_lane.admit():
            self._check_text(text, "input")
            normalized = await self.normalize(text, malaysian, language, priority=TOOL)
        if not normalized:  # as the speech endpoints say it
            raise InvalidRequestError("input has nothing to speak after cleanup", param="input")
        return normalized

    def _check_text(self, text: str, param: str) -> None:
        if len(text) > self.settings.max_input_chars:
            raise InvalidRequestError(
                f"{param} is {len(text)} characters; the limit is {self.settings.max_input_chars}", param=param
            )

    # -- requests -> jobs --------------------------------------------------------------------------
    def resolve_voice(self, name: str | None, param: str = "voice") -> str:
        """A request's voice name (or an alias) -> the built-in voice the model is prompted with (None: default)."""
        asked = name or self.settings.default_speaker
        voice = self.settings.resolve_voice(asked)
        if voice is None:
            aliases = f" (or an alias: {', '.join(self.settings.voice_aliases)})" if self.settings.voice_aliases else ""
            raise InvalidRequestError(
                f"unknown voice {asked!r}; available: {', '.join(self.settings.speakers)}{aliases}",
                param=param,
                code="invalid_voice",
            )
        return voice

    async def prepare_speech(self, req: SpeechRequest) -> SynthesisJob:
        started = time.perf_counter()
        voice = self.resolve_voice(req.voice_name)
        self._check_text(req.input, "input")
        text = await self.normalize(req.input, req.normalize_malaysian, req.language)
        if not text:
            raise InvalidRequestError("input has nothing to speak after cleanup", param="input")
        if req.instructions:
            logger.info("instructions given but not used by this model: %.80r", req.instructions)
        context = None
        if req.context is not None and self.settings.stream_context:
            context = await self._stored_context(req, voice)
        job = await self.prepare_segment(
            voice, text, req.resolved(self.settings), context=context, param="input", started=started
        )
        if req.context is not None and self.settings.stream_context:
            job.context_claim = (req.context.id, self.contexts.claim(req.context.id))
        voice_log = voice if req.voice_name in (None, voice) else f"{req.voice_name}->{voice}"
        self._log_job(
            job, kind="speech", model=req.model, voice=voice_log, chars=len(text),
            context=len(context.tokens) if context else 0,
        )
        return job

    async def _stored_context(self, req: SpeechRequest, voice: str) -> SpeechContext | None:
        """The previous segment stored under `req.context.id`, if it still fits this request."""
        assert req.context is not None
        previous = await self.contexts.previous(req.context.id, timeout=self.settings.backend_read_timeout)
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
        voice: str,
        text: str,
        gen: ResolvedGeneration,
        *,
        context: SpeechContext | None = None,
        param: str = "input",
        started: float | None = None,
    ) -> SynthesisJob:
        """A job for already-normalized `text` in a built-in voice, prompted after `context` when given."""
        self._check_text(text, param)
        if context is not None:
            prompt = context_prompt(voice, context.text, context.tokens, text)
        else:
            prompt = speech_prompt(voice, text)
        job = await self._job(prompt, gen, param=param, started=started or time.perf_counter())
        job.voice, job.text, job.context = voice, text, context
        return job

    async def prepare_voice_clone(self, req: VoiceCloneRequest, audio_bytes: bytes) -> SynthesisJob:
        started = time.perf_counter()
        if not self.has_encoder:
            raise NotReadyError("voice cloning is disabled on this server (CODEC_LOAD_ENCODER=false)")
        self._check_text(req.generate_text, "generate_text")
        self._check_text(req.reference_text, "reference_text")
        clip = await asyncio.to_thread(self._read_reference, audio_bytes)  # bounded by `reference_lane`
        ref_tokens = await self.engine.encode(clip)
        ref_text, gen_text = await asyncio.gather(
            self.normalize(req.reference_text, req.normalize_malaysian, req.language),
            self.normalize(req.generate_text, req.normalize_malaysian, req.language),
        )
        for value, param in ((ref_text, "reference_text"), (gen_text, "generate_text")):
            if not value:
                raise InvalidRequestError(f"{param} has nothing to speak after cleanup", param=param)
        prompt = voice_clone_prompt(ref_text, ref_tokens, gen_text)
        job = await self._job(prompt, req.resolved(self.settings), param="reference_audio", started=started)
        job.endpoint = "vc"
        self._log_job(job, kind="vc", model=req.model, voice="<cloned>", chars=len(gen_text), ref_tokens=len(ref_tokens))
        return job

    def _read_reference(self, data: bytes) -> np.ndarray:
        """Uploaded clip bytes -> mono float32 at 16 kHz, or a 400 that says what is wrong."""
        import soundfile as sf

        if not data:
            raise InvalidRequestError("reference_audio is empty", param="reference_audio")
        if len(data) > self.settings.max_reference_bytes:
            raise PayloadTooLargeError(
                f"reference_audio is {len(data)} bytes; the limit is {self.settings.max_reference_bytes}",
                param="reference_audio",
            )
        try:
            # the header first: its rate and length are checked before a single sample is decoded
            info = sf.info(io.BytesIO(data))
        except Exception as exc:  # libsndfile raises its own error types for every unreadable input
            raise InvalidRequestError(
                f"reference_audio is not readable audio (WAV, FLAC, OGG or MP3): {exc}", param="reference_audio"
            ) from exc
        check_reference_header(info.samplerate, info.frames, self.settings.max_reference_seconds)
        try:
            audio, rate = sf.read(
                io.BytesIO(data), dtype="float32", always_2d=True, frames=info.frames  # never past the header
            )
        except Exception as exc:
            raise InvalidRequestError(
                f"reference_audio is not readable audio (WAV, FLAC, OGG or MP3): {exc}", param="reference_audio"
            ) from exc
        # some containers (MP3, Ogg) only estimate their length in the header: check what was decoded too
        check_reference_header(rate, audio.shape[0], self.settings.max_reference_seconds)
        if not np.isfinite(audio).all():
            raise InvalidRequestError("reference_audio contains NaN or infinite samples", param="reference_audio")
        return self.resample_to_16k(audio, rate)

    async def _job(self, prompt: str, gen: ResolvedGeneration, *, param: str, started: float) -> SynthesisJob:
        gen = gen.model_copy(update={"max_tokens": await self._fit_context(prompt, gen.max_tokens, param)})
        return SynthesisJob(
            request_id=f"tts-{uuid.uuid4().hex[:16]}", prompt=prompt, gen=gen, started=started,
            sample_rate=self.sample_rate,
        )

    @staticmethod
    def _log_job(job: SynthesisJob, *, kind: str, model: str | None, voice: str, chars: int, **extra: object) -> None:
        gen = job.gen
        details = " ".join(f"{k}={v}" for k, v in extra.items())
        logger.info(
            "%s %s model=%s voice=%s chars=%d format=%s stream=%s%s max_tokens=%d %s",
            job.request_id,
            kind,
            model or "-",
            voice,
            chars,
            gen.response_format,
            gen.stream,
            "/sse" if gen.stream_format == "sse" else "",
            gen.max_tokens,
            details,
        )

    async def _fit_context(self, prompt: str, max_tokens: int, param: str) -> int:
        """`max_tokens` capped so prompt + output fit the model's context; a 400 if the prompt alone cannot.

        Every token covers at least one byte, so a prompt whose bytes plus `max_tokens` fit needs no check.
        """
        limit = self.settings.max_model_len
        if len(prompt.encode()) + max_tokens <= limit:
            return max_tokens
        counted = await self.backend.count_prompt_tokens(prompt)
        if counted is None:
            return max_tokens  # the backend will say if it does not fit
        n_prompt, backend_limit = counted
        limit = backend_limit or limit
        if n_prompt >= limit - 1:
            raise PromptTooLongError(
                f"the prompt is {n_prompt} tokens but the model's context is {limit} tokens; "
                "shorten the text or the reference audio",
                param=param,
            )
        if max_tokens > limit - n_prompt:
            logger.info("max_tokens %d capped to %d to fit the context", max_tokens, limit - n_prompt)
        return min(max_tokens, limit - n_prompt)

    # -- generation ------------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The loaded codec's output rate (the engine reports its geometry)."""
        return self.engine.geometry.sample_rate

    def plan_for(self, gen: ResolvedGeneration) -> StitchPlan:
        s = self.settings
        return StitchPlan.from_seconds(
            gen.playback_speed,
            gen.playback_overlap_speed,
            s.first_chunk_seconds,
            s.decode_left_context_seconds,
            geometry=self.engine.geometry,
            fade_in_ms=s.fade_in_ms,
            max_chunk_seconds=s.max_chunk_seconds,
            # a longer window than the largest CUDA graph would be decoded eagerly: catching up stops there
            max_window_tokens=max(s.cuda_graph_buckets_tokens, default=None),
        )

    async def synthesize(self, job: SynthesisJob) -> AsyncIterator[np.ndarray]:
        """Stitched float32 audio chunks at 24 kHz, as the backend's tokens arrive.

        Closing the iterator (a client that went away) cancels the backend request at once.
        """
        gen = job.gen
        m = self.metrics
        clock = PlaybackClock(job.sample_rate * gen.speed)
        params = SamplingParams(gen.max_tokens, gen.temperature, gen.repetition_penalty, gen.seed)
        tokens = job.tokens
        changed = asyncio.Event()
        state: dict[str, object] = {"finished": False, "error": None}
        wake_at = [0]  # the token count the waiting consumer needs for its next window: fewer do not wake it

        async def produce() -> None:
            try:
                async for ids in self.backend.stream_speech_tokens(job.prompt, params, job.stats):
                    tokens.extend(ids)
                    if len(tokens) >= wake_at[0]:
                        changed.set()
            except Exception as exc:  # handed to the consumer, which raises it in the request's context
                state["error"] = exc
            finally:
                state["finished"] = True
                changed.set()

        producer = asyncio.create_task(produce(), name=f"{job.request_id}-backend")
        stitcher = StreamStitcher(self.plan_for(gen))
        stream = next(self._stream_numbers)
        spt = stitcher.plan.samples_per_token
        # windows already sent to the codec, oldest first: a stream that has fallen behind its tokens gets its
        # next windows decoded (and batched) while the current one is still in the worker
        in_flight: deque[tuple[Window, asyncio.Task]] = deque()
        outcome = "failed"
        try:
            while True:
                error: BaseException | None = state["error"]  # type: ignore[assignment]
                # once audio has been sent, a failed backend stream still delivers every token it gave us
                salvage = error is not None and job.first_audio_at is not None
                if error is not None and not salvage:
                    raise error  # before the first byte: the client gets an HTTP error instead
                finished = bool(state["finished"])
                if finished and error is None and not tokens:
                    raise NoAudioError(
                        f"the model finished (finish_reason={job.stats.finish_reason}) without any speech tokens"
                    )
                while len(in_flight) < WINDOWS_AHEAD and (w := stitcher.next_window(len(tokens), finished)):
                    ids = np.asarray(tokens[w.start : w.end], dtype=TOKEN_DTYPE)
                    ahead = sum((v.emit_end - v.emit_start) * spt for v, _ in in_flight)
                    slack = clock.slack(time.perf_counter(), job.started, ahead)
                    decoding = self.engine.decode(ids, stream=stream, final=w.final, slack=slack)
                    in_flight.append((w, asyncio.ensure_future(decoding)))
                if not in_flight:
                    if stitcher.done:
                        if error is not None:
                            raise error  # after the salvaged audio: the stream is incomplete
                        break
                    changed.clear()  # no await since next_window: no token can have slipped in between
                    wake_at[0] = stitcher.tokens_needed()
                    await changed.wait()
                    continue
                window, decoding = in_flight[0]
                audio = await decoding
                in_flight.popleft()
                if self.settings.debug_audio:
                    await asyncio.to_thread(self._debug_audio.write, job.request_id, window.index, audio, job.sample_rate)
                chunk = stitcher.emit(window, audio)
                now = time.perf_counter()
                if job.first_audio_at is None:
                    job.first_audio_at = now
                    m.ttfa.labels(job.endpoint).observe(now - job.started)
                gap, underrun = clock.add(now, len(chunk))
                if gap is not None:
                    m.chunk_gap.observe(gap)
                if underrun:
                    m.underrun.observe(underrun)
                job.samples_out += len(chunk)
                yield chunk
            outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        finally:
            self._observe_end(job, outcome)
            self._store_context(job, completed=outcome == "completed")
            for _, decoding in in_flight:
                decoding.cancel()  # the worker drops cancelled jobs instead of decoding them
                if decoding.done() and not decoding.cancelled():
                    decoding.exception()  # retrieved: its error already failed this request
            if not producer.done():
                producer.cancel()
            # shielded: a second cancellation (anyio re-delivers it) must not interrupt the producer while it
            # closes the backend connection, or vLLM would go on generating for nobody
            with suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(producer)
            elapsed = time.perf_counter() - job.started
            ttfa = (job.first_audio_at - job.started) if job.first_audio_at else None
            logger.info(
                "%s %s: %d speech tokens (+%d other chars), %.2f s audio in %.2f s (ttfa %s), decoded/emitted %.2f, "
                "finish=%s",
                job.request_id,
                outcome,
                job.stats.speech_tokens,
                job.stats.other_chars,
                job.samples_out / job.sample_rate,
                elapsed,
                f"{ttfa * 1e3:.0f} ms" if ttfa is not None else "-",
                stitcher.decoded_tokens / max(1, stitcher.emitted_tokens),
                job.stats.finish_reason,
            )

    def _store_context(self, job: SynthesisJob, *, completed: bool) -> None:
        """A finished `/v1/audio/speech` job with a context id becomes that id's context (a failed one clears it)."""
        if job.context_claim is None:
            return
        key, claim = job.context_claim
        job.context_claim = None
        value = job.as_context(self.settings.stream_context_max_tokens) if completed else None
        self.contexts.resolve(key, claim, value)

    def _observe_end(self, job: SynthesisJob, outcome: str) -> None:
        m = self.metrics
        m.requests.labels(job.endpoint, job.gen.response_format, outcome).inc()
        audio_seconds = job.samples_out / job.sample_rate / job.gen.speed
        m.audio_seconds.labels(job.endpoint).inc(audio_seconds)
        if outcome == "completed":
            elapsed = time.perf_counter() - job.started
            m.duration.labels(job.endpoint).observe(elapsed)
            if audio_seconds > 0:
                m.rtf.labels(job.endpoint).observe(elapsed / audio_seconds)


def check_reference_header(rate: int, frames: int, max_seconds: float) -> None:
    """A 400 unless the clip's sample rate is 8-192 kHz and its length 0.1 s to `max_seconds`."""
    if not MIN_REFERENCE_RATE <= rate <= MAX_REFERENCE_RATE:
        raise InvalidRequestError(
            f"reference_audio has a sample rate of {rate} Hz; accepted: {MIN_REFERENCE_RATE}-{MAX_REFERENCE_RATE} Hz",
            param="reference_audio",
        )
    seconds = frames / rate
    if seconds < 0.1:
        raise InvalidRequestError("reference_audio holds no audio (under 0.1 s)", param="reference_audio")
    if seconds > max_seconds:
        raise InvalidRequestError(
            f"reference_audio is {seconds:.1f} s; the limit is {max_seconds:g} s", param="reference_audio"
        )
