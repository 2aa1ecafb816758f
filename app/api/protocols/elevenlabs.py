"""ElevenLabs-compatible text-streaming WebSockets, so agent plugins that speak ElevenLabs can use our voices.

`/v1/text-to-speech/{voice_id}/stream-input` (one context per socket) and `.../multi-stream-input` (many
`context_id`s on one socket), the endpoints LiveKit's `livekit-plugins-elevenlabs` and pipecat's
`ElevenLabsTTSService` connect to. Text in (`{"text": ...}`, `flush`, `close_context`, `close_socket`), base64
audio in the `output_format` asked for out (`{"audio", "contextId", "isFinal": false}`; pcm_8000 ... pcm_48000,
ulaw_8000, alaw_8000, mp3_*, opus_48000_*: the registry's list), then `{"isFinal": true}` per context (with
`finishReason: "length"` and `cutSegments` added when a segment was cut short at max_tokens or the context).
What is not supported is refused with a clear error (the README lists it).
"""

from __future__ import annotations

import base64
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from app.api.auth import message_key
from app.api.errors import describe, invalid_request
from app.api.protocols.adapter import (
    Audio,
    Auth,
    CloseSocket,
    Command,
    ContextFinal,
    EndContext,
    Event,
    Flush,
    KeepAlive,
    Open,
    Protocol,
    Rejected,
    Segment,
    SessionEnded,
    Text,
)
from app.api.session import Session, deny, handshake
from app.audio.registry import ElevenLabsFormat, UnsupportedFormat, elevenlabs_format
from app.errors import InvalidRequestError, TTSError
from app.service.requests import GenerationFields
from app.service.speech import SpeechService
from app.settings import GenerationSettings, StreamingSettings

router = APIRouter()

DEFAULT_CONTEXT = "default"  # multi-stream messages without a context_id
_BOOL = {"true": True, "false": False, "1": True, "0": False}


@dataclass
class Options:
    """The query parameters we use; the rest are accepted and ignored (see the README)."""

    voice: str
    model_id: str
    normalize: bool
    inactivity_timeout: float
    output: ElevenLabsFormat


def _bool_param(ws: WebSocket, name: str) -> bool | None:
    value = ws.query_params.get(name)
    if value is None:
        return None
    if value.lower() not in _BOOL:
        raise InvalidRequestError(f"{name} must be true or false, got {value!r}", param=name)
    return _BOOL[value.lower()]


def parse_options(ws: WebSocket, service: SpeechService, voice_id: str) -> Options:
    """The handshake's voice and query parameters, or an InvalidRequestError naming what is unsupported."""
    q = ws.query_params
    try:
        output = elevenlabs_format(q.get("output_format"))
    except UnsupportedFormat as exc:
        raise InvalidRequestError(str(exc), param="output_format", code="unsupported_output_format") from None
    if _bool_param(ws, "enable_ssml_parsing"):
        raise InvalidRequestError("enable_ssml_parsing=true is not supported", param="enable_ssml_parsing")
    normalization = q.get("apply_text_normalization", "auto")
    if normalization not in ("auto", "on", "off"):
        raise InvalidRequestError("apply_text_normalization must be auto, on or off", param="apply_text_normalization")
    for name in ("sync_alignment", "auto_mode", "enable_logging", "apply_language_text_normalization"):
        _bool_param(ws, name)  # validated; alignment is not sent, segmentation is always automatic
    timeout = service.streaming.idle_timeout
    if "inactivity_timeout" in q:
        try:
            timeout = float(q["inactivity_timeout"])
        except ValueError:
            raise InvalidRequestError("inactivity_timeout must be a number of seconds", param="inactivity_timeout") from None
        if not 1 <= timeout <= 180:
            raise InvalidRequestError("inactivity_timeout must be between 1 and 180 seconds", param="inactivity_timeout")
        timeout = min(timeout, service.streaming.idle_timeout)
    voice = service.resolve_voice(voice_id, param="voice_id")
    return Options(voice, q.get("model_id", ""), normalization != "off", timeout, output)


class ElevenLabsProtocol(Protocol):
    """ElevenLabs' messages; `multi`: many contexts per socket (multi-stream-input), else one."""

    id_prefix = "tts-11l"
    missing_key = "missing or invalid API key: send the xi-api-key header"

    def __init__(
        self, generation: GenerationSettings, streaming: StreamingSettings, opts: Options, *, multi: bool
    ) -> None:
        self.generation = generation
        self.streaming = streaming
        self.opts = opts
        self.multi = multi
        self.idle_timeout = opts.inactivity_timeout

    def describe(self) -> str:
        endpoint = "multi-stream-input" if self.multi else "stream-input"
        return f"elevenlabs {endpoint} voice={self.opts.voice} model_id={self.opts.model_id or '-'}"

    # -- messages -> commands ---------------------------------------------------------------------
    def context_of(self, message: dict) -> str:
        if not self.multi:
            return DEFAULT_CONTEXT
        return message.get("context_id") or message.get("contextId") or DEFAULT_CONTEXT

    def parse(self, message: dict, contexts: Collection[str], *, closing: bool) -> Iterator[Command]:
        yield Auth(message_key(message, "xi_api_key"))  # until authorized, every message carries the key
        cid = self.context_of(message)
        if message.get("pronunciation_dictionary_locators"):
            raise InvalidRequestError(
                "pronunciation_dictionary_locators are not supported", param="pronunciation_dictionary_locators"
            )
        if self.multi and message.get("close_socket"):
            yield CloseSocket()
            return
        if self.multi and message.get("close_context"):
            yield EndContext(cid)
            return
        text = message.get("text")
        if text is not None and not isinstance(text, str):
            raise InvalidRequestError("text must be a string", param="text")
        if cid not in contexts:
            if not text or closing:
                yield KeepAlive()  # a keep-alive, or input after the end
                return
            yield self._open(cid, message)
        if text == "" and not self.multi:
            yield CloseSocket()  # stream-input: an empty text ends the input
            return
        if text and text.strip():
            yield Text(cid, text)
        if message.get("flush") or message.get("try_trigger_generation") is True:
            yield Flush(cid)

    def _open(self, cid: str, first: dict) -> Open:
        vs = first.get("voice_settings") or {}
        if not isinstance(vs, dict):
            raise InvalidRequestError("voice_settings must be an object", param="voice_settings")
        try:
            out = self.opts.output
            fields = GenerationFields(
                response_format=out.format.name,
                sample_rate=out.rate,
                encoding=out.encoding.name,
                speed=vs.get("speed", 1.0),
            )
            gen = fields.resolved(self.generation, self.streaming)
        except ValidationError as exc:
            raise invalid_request(exc, prefix="voice_settings.") from None
        return Open(
            cid,
            self.opts.voice,
            gen,
            normalize_malaysian=self.opts.normalize,
            use_context=self.streaming.context,
            bit_rate=out.bit_rate,
        )

    # -- events -> messages -----------------------------------------------------------------------
    def _tag(self, obj: dict, cid: str | None) -> dict:
        if self.multi and cid is not None:
            obj["contextId"] = cid
        return obj

    def _error(self, exc: TTSError, cid: str | None) -> dict:
        info = describe(exc)
        return self._tag({"error": info.message, "message": info.message, "code": info.code or info.type}, cid)

    def render(self, event: Event) -> dict | None:
        if isinstance(event, Audio):
            audio = base64.b64encode(event.data).decode()
            msg = {"audio": audio, "isFinal": False, "normalizedAlignment": None, "alignment": None}
            return self._tag(msg, event.context)
        if isinstance(event, ContextFinal):
            final: dict = {"isFinal": True}
            if event.usage.cut_segments:  # our addition, only when a segment was cut short (max_tokens, context)
                final |= {"finishReason": "length", "cutSegments": list(event.usage.cut_segments)}
            return self._tag(final, event.context)
        if isinstance(event, Segment) and event.segment.kind == "error":
            return self._error(event.segment.error, event.context)
        if isinstance(event, Rejected):
            return self._error(event.error, event.context)
        if isinstance(event, SessionEnded):
            return self._error(event.error, None)
        return None  # session and segment starts and ends have no ElevenLabs message


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(ws: WebSocket, voice_id: str) -> None:
    """ElevenLabs' single-context text streaming."""
    await _serve(ws, voice_id, multi=False)


@router.websocket("/v1/text-to-speech/{voice_id}/multi-stream-input")
async def multi_stream_input(ws: WebSocket, voice_id: str) -> None:
    """ElevenLabs' multi-context text streaming (what the LiveKit and pipecat plugins use)."""
    await _serve(ws, voice_id, multi=True)


async def _serve(ws: WebSocket, voice_id: str, *, multi: bool) -> None:
    accepted = await handshake(ws, "invalid API key (xi-api-key)", "xi-api-key")
    if accepted is None:
        return
    service, authorized = accepted
    try:
        opts = parse_options(ws, service, voice_id)
    except TTSError as exc:
        await deny(ws, exc)
        return
    protocol = ElevenLabsProtocol(service.generation, service.streaming, opts, multi=multi)
    await Session(ws, service, protocol, authorized=authorized).run()
