"""One job's decode loop: the backend's speech tokens in, stitched audio chunks out, as the tokens arrive."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from app.audio.output import OutputSpec
from app.audio.stitch import StitchPlan, StreamStitcher, Window
from app.backend.vllm import SamplingParams, StreamStats
from app.codec.interface import TOKEN_DTYPE
from app.errors import NoAudioError
from app.observability import tracing
from app.observability.metrics import PlaybackClock, ServiceMetrics
from app.service.context import SpeechContext, trim_context
from app.service.debug_audio import DebugAudioWriter
from app.service.requests import ResolvedGeneration

logger = logging.getLogger(__name__)

WINDOWS_AHEAD = 2  # decode windows one stream may have queued in the codec worker at once


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
    segment: int = 0  # its number in a segment stream
    metered: bool = True  # counted as one request in the request metrics (False: a segment of a longer request)
    output: OutputSpec = field(default_factory=OutputSpec)  # how its audio leaves (its format and speed: metrics)
    cache_salt: str | None = None  # its tenant's prefix-cache salt (vLLM's `cache_salt`)

    def as_context(self, max_tokens: int) -> SpeechContext | None:
        """This job's text and speech tokens, bounded, as the next segment's context (None for a cloned voice)."""
        if self.voice is None:
            return None
        return trim_context(self.text, self.tokens, max_tokens, voice=self.voice)


class TokenSource(Protocol):
    def stream_speech_tokens(
        self, prompt: str, params: SamplingParams, stats: StreamStats | None = None, *, request_id: str | None = None
    ) -> AsyncIterator[list[int]]: ...


class Decoder(Protocol):
    async def decode(
        self, tokens: np.ndarray, *, stream: int = 0, final: bool = False, slack: float = 0.0
    ) -> np.ndarray: ...


class Synthesis:
    """Runs one job: a producer task reads the backend's tokens into `job.tokens`; `chunks()` plans windows,
    keeps up to `WINDOWS_AHEAD` of them decoding in the engine, and emits each one's stitched audio.

    `start()` opens the backend request before anyone reads `chunks()` (a segment generated ahead of its turn);
    `tokens_done()` waits until the backend's stream has ended. A backend error before the first audio is
    raised; after it, every token already given is still spoken and the error raised at the end. Closing
    `chunks()` (a client that went away), or `aclose()` on a synthesis whose chunks were never read, closes the
    backend request.
    """

    def __init__(
        self,
        job: SynthesisJob,
        plan: StitchPlan,
        *,
        backend: TokenSource,
        engine: Decoder,
        stream: int,
        metrics: ServiceMetrics,
        debug_audio: DebugAudioWriter | None = None,
        on_end: Callable[[SynthesisJob, str], None] | None = None,
    ) -> None:
        self.job = job
        self.backend = backend
        self.engine = engine
        self.stream = stream  # names this stream's windows for the engine's batching
        self.metrics = metrics
        self.debug_audio = debug_audio
        self.on_end = on_end  # called with the outcome (completed, cancelled or failed) when the stream ends
        self.stitcher = StreamStitcher(plan)
        self.clock = PlaybackClock(job.sample_rate * job.output.speed)
        self.outcome = "failed"
        # the producer's side
        self._arrived = asyncio.Event()
        self._wake_at = 0  # the token count the waiting consumer needs for its next window: fewer do not wake it
        self._finished = False
        self._error: Exception | None = None
        # windows already sent to the codec, oldest first: a stream that has fallen behind its tokens gets its
        # next windows decoded (and batched) while the current one is still in the worker
        self._in_flight: deque[tuple[Window, asyncio.Future[np.ndarray]]] = deque()
        self._producer: asyncio.Task | None = None
        self._ended = False
        self._started = asyncio.Event()
        # True when the request has already sent audio (a later segment): a backend error before this job's own
        # first audio no longer turns into an HTTP error, so the tokens given before it are still spoken
        self.salvage_early_error = False
        self._first_token_at: float | None = None

    def start(self) -> None:
        """Open the backend request now (once)."""
        if self._producer is None:
            self._producer = asyncio.create_task(self._produce(), name=f"{self.job.request_id}-backend")
            self._started.set()

    async def tokens_done(self) -> bool:
        """Wait until the backend request was started and its stream has ended; True when it ended without an
        error."""
        await self._started.wait()
        assert self._producer is not None
        await asyncio.wait((self._producer,))
        return self._error is None

    @property
    def finish_reason(self) -> str | None:
        """The backend's finish reason (`length`: cut at max_tokens or the context); None while it runs."""
        return self.job.stats.finish_reason

    def cancel(self) -> None:
        """Cancel the backend request now, without waiting (`aclose` or the end of `chunks()` then waits for it)."""
        if self._producer is not None and not self._producer.done():
            self._producer.cancel()

    async def aclose(self) -> None:
        """End a synthesis whose `chunks()` were never read (a no-op once they were): the backend request closed."""
        if not self._ended:
            self.outcome = "cancelled"
            await self._end()

    async def chunks(self) -> AsyncGenerator[np.ndarray, None]:
        """Stitched float32 audio chunks at the codec's rate."""
        self.start()
        try:
            while (decoded := await self._next_decoded()) is not None:
                yield await self._emit(*decoded)
            self.outcome = "completed"
        except (asyncio.CancelledError, GeneratorExit):
            self.outcome = "cancelled"
            raise
        finally:
            await self._end()

    # -- the producer ----------------------------------------------------------------------------
    async def _produce(self) -> None:
        job = self.job
        gen = job.gen
        params = SamplingParams(gen.max_tokens, gen.temperature, gen.repetition_penalty, gen.seed, job.cache_salt)
        asked = time.perf_counter()
        try:
            tokens = self.backend.stream_speech_tokens(job.prompt, params, job.stats, request_id=job.request_id)
            async for ids in tokens:
                if not job.tokens:
                    self._first_token_at = time.perf_counter()
                    tracing.mark("tts.backend.first_token", asked, request_id=job.request_id)
                job.tokens.extend(ids)
                if len(job.tokens) >= self._wake_at:
                    self._arrived.set()
        except Exception as exc:  # handed to the consumer, which raises it in the request's context
            self._error = exc
        finally:
            self._finished = True
            self._arrived.set()

    # -- the consumer ----------------------------------------------------------------------------
    async def _next_decoded(self) -> tuple[Window, np.ndarray] | None:
        """The oldest window sent to the codec and its audio; None once every token is spoken."""
        while True:
            self._check_backend()
            self._send_windows()
            if self._in_flight:
                window, decoding = self._in_flight[0]
                audio = await decoding
                self._in_flight.popleft()
                return window, audio
            if self.stitcher.done:
                if self._error is not None:
                    raise self._error  # after the salvaged audio: the stream is incomplete
                return None
            await self._wait_for_tokens()

    def _check_backend(self) -> None:
        """Raise the backend's error before the first audio (the client gets an HTTP error instead of bytes)."""
        if self._error is not None and self.job.first_audio_at is None and not self.salvage_early_error:
            raise self._error
        if self._finished and self._error is None and not self.job.tokens:
            raise NoAudioError(
                f"the model finished (finish_reason={self.job.stats.finish_reason}) without any speech tokens"
            )

    def _send_windows(self) -> None:
        """Start decoding the next windows whose tokens have arrived, up to `WINDOWS_AHEAD` in flight."""
        tokens = self.job.tokens
        spt = self.stitcher.plan.samples_per_token
        while len(self._in_flight) < WINDOWS_AHEAD and (w := self.stitcher.next_window(len(tokens), self._finished)):
            ids = np.asarray(tokens[w.start : w.end], dtype=TOKEN_DTYPE)
            ahead = sum((v.emit_end - v.emit_start) * spt for v, _ in self._in_flight)
            slack = self.clock.slack(time.perf_counter(), self.job.started, ahead)
            decoding = self.engine.decode(ids, stream=self.stream, final=w.final, slack=slack)
            self._in_flight.append((w, asyncio.ensure_future(decoding)))

    async def _wait_for_tokens(self) -> None:
        """Until the producer has the tokens the next window needs (or has finished)."""
        self._arrived.clear()  # no await since `_send_windows`: no token can have slipped in between
        self._wake_at = self.stitcher.tokens_needed()
        await self._arrived.wait()

    async def _emit(self, window: Window, audio: np.ndarray) -> np.ndarray:
        job = self.job
        if self.debug_audio is not None:
            await asyncio.to_thread(self.debug_audio.write, job.request_id, window.index, audio, job.sample_rate)
        chunk = self.stitcher.emit(window, audio)
        now = time.perf_counter()
        if job.first_audio_at is None:
            job.first_audio_at = now
            tracing.mark("tts.first_decode", self._first_token_at or job.started, request_id=job.request_id)
            if job.metered:
                self.metrics.ttfa.labels(job.endpoint).observe(now - job.started)
        gap, underrun = self.clock.add(now, len(chunk))
        if gap is not None:
            self.metrics.chunk_gap.observe(gap)
        if underrun:
            self.metrics.underrun.observe(underrun)
        job.samples_out += len(chunk)
        return chunk

    # -- the end ---------------------------------------------------------------------------------
    async def _end(self) -> None:
        if self._ended:
            return
        self._ended = True
        self._observe_end()
        if self.on_end is not None:
            self.on_end(self.job, self.outcome)
        self._drop_windows()
        await self._close_producer()
        if self._producer is not None:  # every backend request, by how it ended (length: cut short)
            reason = self.job.stats.finish_reason or ("cancelled" if self.outcome == "cancelled" else "error")
            self.metrics.generations.labels(self.job.endpoint, reason).inc()
        self._log_end()

    def _drop_windows(self) -> None:
        for _, decoding in self._in_flight:
            decoding.cancel()  # the worker drops cancelled jobs instead of decoding them
            if decoding.done() and not decoding.cancelled():
                decoding.exception()  # retrieved: its error already failed this request

    async def _close_producer(self) -> None:
        producer = self._producer
        if producer is None:
            return
        if not producer.done():
            producer.cancel()
        # shielded: a second cancellation (anyio re-delivers it) must not interrupt the producer while it
        # closes the backend connection, or vLLM would go on generating for nobody
        with suppress(asyncio.CancelledError, Exception):
            await asyncio.shield(producer)

    def _observe_end(self) -> None:
        job, m = self.job, self.metrics
        if not job.metered:
            return  # a segment: its request is counted once, by its segment stream
        m.requests.labels(job.endpoint, job.output.format, self.outcome).inc()
        audio_seconds = job.samples_out / job.sample_rate / job.output.speed
        m.audio_seconds.labels(job.endpoint).inc(audio_seconds)
        if self.outcome == "completed":
            elapsed = time.perf_counter() - job.started
            m.duration.labels(job.endpoint).observe(elapsed)
            if audio_seconds > 0:
                m.rtf.labels(job.endpoint).observe(elapsed / audio_seconds)

    def _log_end(self) -> None:
        job = self.job
        elapsed = time.perf_counter() - job.started
        ttfa = (job.first_audio_at - job.started) if job.first_audio_at else None
        logger.info(
            "%s %s: %d speech tokens (+%d other chars), %.2f s audio in %.2f s (ttfa %s), decoded/emitted %.2f, "
            "finish=%s",
            job.request_id,
            self.outcome,
            job.stats.speech_tokens,
            job.stats.other_chars,
            job.samples_out / job.sample_rate,
            elapsed,
            f"{ttfa * 1e3:.0f} ms" if ttfa is not None else "-",
            self.stitcher.decoded_tokens / max(1, self.stitcher.emitted_tokens),
            job.stats.finish_reason,
        )
