"""`/v1/audio/speech/stream`: text in over a WebSocket as an LLM writes it, audio out as soon as a segment is ready.

Client messages are JSON: `config` (first), `text`, `flush`, `close`, `cancel`. The server answers
`session.started`, then per segment `segment.started`, its audio (binary frames, or `audio` events with base64),
`timestamps` (when the config asks for them), `segment.done`; `error` events in OpenAI's error shape; `done` with
usage and `finish_reason` (`length` and `cut_segments` when a segment was cut short at max_tokens or the
model's context) last, then it closes the socket (1000). `cancel` stops at once: nothing more but `done`. One context per
socket.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Collection

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from app.api.errors import describe, invalid_request
from app.api.protocols.adapter import (
    Audio,
    Auth,
    CancelContext,
    CloseSocket,
    Command,
    ContextFinal,
    ContextStarted,
    Event,
    Flush,
    Open,
    Protocol,
    Rejected,
    Segment,
    SessionEnded,
    Text,
    Timings,
)
from app.api.session import Session, handshake
from app.errors import InvalidRequestError, TTSError
from app.service.requests import StreamConfig
from app.service.segments import SegmentEvent
from app.service.speech import unused_rules
from app.service.voice import Voice
from app.settings import GenerationSettings, StreamingSettings
from app.text.options import TextOptions

router = APIRouter()

CONTEXT = "default"  # the one context of a socket


def error_event(exc: TTSError, **extra: object) -> dict:
    return {"type": "error", **extra, **describe(exc).body()}


class SpeechStreamProtocol(Protocol):
    """Our protocol: a `config` message first, then `text`, `flush` and `close`."""

    id_prefix = "tts-ws"
    missing_key = "missing or invalid API key: send 'Authorization: Bearer <key>' or api_key in the config message"

    def __init__(
        self,
        generation: GenerationSettings,
        streaming: StreamingSettings,
        max_input_chars: int,
        voice: Callable[[str | None], Awaitable[Voice]],
        text_options: Callable[[StreamConfig], Awaitable[TextOptions]] | None = None,
    ) -> None:
        self.generation = generation
        self.text_options = text_options  # the config's TextOptions, its dictionaries resolved (SpeechService)
        self.text = TextOptions()
        self.streaming = streaming
        self.voice = voice  # a voice name -> its Voice (SpeechService.voice)
        self.idle_timeout = streaming.idle_timeout
        self.pending_text_limit = max_input_chars * 4
        self.awaiting_config = True
        self.config: StreamConfig | None = None
        self.closed = False  # `close` received

    def describe(self) -> str:
        return "speech stream"

    # -- messages -> commands ---------------------------------------------------------------------
    async def parse(self, message: dict, contexts: Collection[str], *, closing: bool) -> AsyncIterator[Command]:
        kind = message.get("type")
        if self.awaiting_config:
            async for command in self._configure(message):
                yield command
            return
        if self.closed:
            raise InvalidRequestError("the stream is closed; no more messages are accepted", code="closed")
        if kind == "text":
            text, flush = message.get("text"), message.get("flush")
            if not isinstance(text, str):
                raise InvalidRequestError("text must be a string", param="text")
            if flush is not None and not isinstance(flush, bool):
                raise InvalidRequestError("flush must be true or false", param="flush", code="invalid_message")
            yield Text(CONTEXT, text)
            if flush:
                yield Flush(CONTEXT)
        elif kind == "flush":
            yield Flush(CONTEXT)
        elif kind == "close":
            self.closed = True
            yield CloseSocket()
        elif kind == "cancel":  # an interrupted reply: stop now, then `done`
            self.closed = True
            yield CancelContext(CONTEXT)
            yield CloseSocket()
        elif kind == "config":
            raise InvalidRequestError("config is only accepted as the first message", param="type")
        else:
            raise InvalidRequestError(
                f"unknown message type {kind!r}; expected text, flush, close or cancel",
                param="type",
                code="invalid_message",
            )

    async def _configure(self, message: dict) -> AsyncIterator[Command]:
        if message.get("type") != "config":
            raise InvalidRequestError('the first message must be {"type": "config", ...}', param="type")
        try:
            cfg = StreamConfig.model_validate(message)
        except ValidationError as exc:
            raise invalid_request(exc) from None
        yield Auth(cfg.api_key)
        voice = await self.voice(cfg.voice_name)
        self.text = await self.text_options(cfg) if self.text_options is not None else cfg.text_options
        use_context = self.streaming.context if cfg.context is None else cfg.context
        self.config = cfg
        yield Open(
            CONTEXT,
            voice,
            cfg.resolved(self.generation, self.streaming),
            cfg.output_spec(),
            text=self.text,
            use_context=use_context,
            ssml=cfg.input_format == "ssml",
        )
        self.awaiting_config = False

    @property
    def timings(self) -> bool:  # type: ignore[override]  # asked for in the config
        return self.config is not None and self.config.timestamps is not None

    @property
    def binary(self) -> bool:
        """Audio as binary frames (else base64 in `audio` events)."""
        return self.config is None or (self.config.audio_frames or "binary") == "binary"

    def idle_error(self) -> TTSError:
        if self.awaiting_config:
            return InvalidRequestError("no config message received", code="idle_timeout")
        return InvalidRequestError(f"no message for {self.idle_timeout:g} s; session closed", code="idle_timeout")

    # -- events -> messages -----------------------------------------------------------------------
    def render(self, event: Event) -> dict | bytes | None:
        if isinstance(event, Audio):
            if self.binary:
                return event.data
            return {"type": "audio", "index": event.index, "audio": base64.b64encode(event.data).decode()}
        if isinstance(event, Segment):
            return self._segment(event.segment)
        if isinstance(event, Timings):
            return self._timestamps(event)
        if isinstance(event, ContextStarted):
            return {
                "type": "session.started",
                "id": event.session_id,
                "voice": event.stream.speaker.speaker or event.stream.speaker.name,
                "response_format": event.stream.output.format,
                "sample_rate": event.sample_rate,
                "audio_frames": "binary" if self.binary else "base64",
                "context": event.stream.use_context,
            }
        if isinstance(event, ContextFinal):
            u = event.usage  # finish_reason `length`: a segment was cut short (max_tokens or the model's context)
            cut = {"cut_segments": list(u.cut_segments)} if u.cut_segments else {}
            ignored = {"ssml_ignored": list(dict.fromkeys(u.ssml_ignored))} if u.ssml_ignored else {}
            return {"type": "done", "usage": u.as_dict(), "finish_reason": u.finish_reason, **cut, **ignored}
        if isinstance(event, Rejected):
            return error_event(event.error, index=None)
        if isinstance(event, SessionEnded):
            return error_event(event.error)
        raise TypeError(f"unknown event {event!r}")

    def _timestamps(self, event: Timings) -> dict:
        """A segment's words (and characters, for `char`), in seconds from the start of the socket's audio."""
        t = event.timings
        msg = {
            "type": "timestamps",
            "index": event.index,
            "text": event.text,
            "normalized": t.text,
            "source": t.source,
            "start": t.seconds(t.start),
            "end": t.seconds(t.end),
            "words": t.word_dicts(),
        }
        if self.config is not None and self.config.timestamps == "char":
            msg["characters"] = t.char_dicts()
        return msg

    def _segment(self, ev: SegmentEvent) -> dict:
        if ev.kind == "started":
            ctx = ev.job.context if ev.job else None
            started = {
                "type": "segment.started",
                "index": ev.index,
                "text": ev.text,
                "normalized": ev.normalized,
                "context_tokens": len(ctx.tokens) if ctx else 0,
            }
            if unused := unused_rules(self.text, ev.text):  # a dictionary's phoneme rule met: said, not silent
                started["unused"] = unused
            return started
        if ev.kind == "done" and ev.job is None:  # a pause (SSML's <break>): silence, no tokens
            return {"type": "segment.done", "index": ev.index, "text": ev.text, "speech_tokens": 0, "pause": ev.pause}
        if ev.kind == "done":
            done = {
                "type": "segment.done",
                "index": ev.index,
                "text": ev.text,
                "speech_tokens": len(ev.job.tokens),
                "audio_seconds": round(ev.job.samples_out / ev.job.sample_rate, 3),
            }
            if ev.finish_reason == "length":  # cut short: said only then
                done["finish_reason"] = "length"
            return done
        return error_event(ev.error, index=ev.index, text=ev.text)


@router.websocket("/v1/audio/speech/stream")
async def speech_stream(ws: WebSocket) -> None:
    """Streaming text input: see the module docstring and the README's message table."""
    accepted = await handshake(ws, "invalid API key")
    if accepted is None:
        return
    service, principal = accepted
    protocol = SpeechStreamProtocol(
        service.generation, service.streaming, service.limits.max_input_chars, service.voice, service.dictionaries.read_with
    )
    await Session(ws, service, protocol, principal=principal).run()
