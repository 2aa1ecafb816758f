"""ElevenLabs-compatible text-streaming WebSockets, so agent plugins that speak ElevenLabs can use our voices.

`/v1/text-to-speech/{voice_id}/stream-input` (one context per socket) and `.../multi-stream-input` (many
`context_id`s on one socket), the endpoints LiveKit's `livekit-plugins-elevenlabs` and pipecat's
`ElevenLabsTTSService` connect to. Text in (`{"text": ...}`, `flush`, `close_context`, `close_socket`), base64
audio in the `output_format` asked for out (`{"audio", "contextId", "isFinal": false}`; pcm_8000 ... pcm_48000,
ulaw_8000, alaw_8000, mp3_*, opus_48000_*: the registry's list), then `{"isFinal": true}` per context (with
`finishReason: "length"` and `cutSegments` added when a segment was cut short at max_tokens or the context).
What is not supported is refused with a clear error (the README lists it).

ElevenLabs' HTTP endpoints are in `elevenlabs_http`.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from app.api.auth import message_key
from app.api.errors import describe, invalid_request
from app.api.protocols.adapter import (
    Audio,
    Auth,
    CancelContext,
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
    Timings,
)
from app.api.session import Session, deny, handshake
from app.audio.registry import ElevenLabsFormat, UnsupportedFormat, elevenlabs_format
from app.errors import InvalidRequestError, TTSError
from app.observability.logs import clip
from app.service.dictionaries import Locator
from app.service.principal import caller_tenant
from app.service.requests import DictionaryFields, GenerationFields
from app.service.sent_timing import segment_as_sent
from app.service.speech import SpeechService, unused_rules
from app.service.timing import elevenlabs_alignment
from app.service.voice import Voice
from app.settings import GenerationSettings, StreamingSettings
from app.text.dictionary import Dictionary
from app.text.options import TextOptions

router = APIRouter()

DEFAULT_CONTEXT = "default"  # multi-stream messages without a context_id
_BOOL = {"true": True, "false": False, "1": True, "0": False}


@dataclass
class Options:
    """The query parameters we use (the rest are accepted and ignored: see the README) and the path's voice.

    `voice` is None until the caller is authorized: only then is `voice_id` looked up (the store, for a saved
    voice), so that a client without the key learns nothing of which voices exist."""

    voice: Voice | None
    model_id: str
    normalize: bool
    inactivity_timeout: float
    output: ElevenLabsFormat
    sync_alignment: bool = False
    voice_id: str = ""  # as the path named it
    ssml: bool = False  # enable_ssml_parsing: the text is SSML as it comes

    def __post_init__(self) -> None:
        if not self.voice_id and self.voice is not None:
            self.voice_id = self.voice.name


# The message fields the protocol reads and the JSON type each must have when present (null: left out). A field
# of another type makes the message invalid (an error message; the session goes on), never an internal error.
MESSAGE_FIELDS: dict[str, type] = {
    "text": str,
    "context_id": str,
    "contextId": str,
    "flush": bool,
    "try_trigger_generation": bool,
    "close_context": bool,
    "close_socket": bool,
    "voice_settings": dict,
    "generation_config": dict,
    "pronunciation_dictionary_locators": list,
    "xi_api_key": str,
    "authorization": str,
}
_JSON_TYPES = {str: "a string", bool: "true or false", dict: "an object", list: "an array"}


def check_fields(message: dict) -> None:
    """An InvalidRequestError naming the first field of `MESSAGE_FIELDS` that has another JSON type."""
    for name, kind in MESSAGE_FIELDS.items():
        value = message.get(name)
        if value is not None and not isinstance(value, kind):
            raise InvalidRequestError(f"{name} must be {_JSON_TYPES[kind]}", param=name, code="invalid_message")


def _bool_param(ws: WebSocket, name: str) -> bool | None:
    value = ws.query_params.get(name)
    if value is None:
        return None
    if value.lower() not in _BOOL:
        raise InvalidRequestError(f"{name} must be true or false, got {value!r}", param=name)
    return _BOOL[value.lower()]


async def parse_options(ws: WebSocket, service: SpeechService, voice_id: str, *, authorized: bool) -> Options:
    """The handshake's query parameters and, for an `authorized` caller, its voice (else looked up once a message
    brought the key), or an InvalidRequestError naming what is unsupported."""
    q = ws.query_params
    try:
        output = elevenlabs_format(q.get("output_format"))
    except UnsupportedFormat as exc:
        raise InvalidRequestError(str(exc), param="output_format", code="unsupported_output_format") from None
    normalization = q.get("apply_text_normalization", "auto")
    if normalization not in ("auto", "on", "off"):
        raise InvalidRequestError("apply_text_normalization must be auto, on or off", param="apply_text_normalization")
    sync_alignment = bool(_bool_param(ws, "sync_alignment"))
    for name in ("auto_mode", "enable_logging", "apply_language_text_normalization"):
        _bool_param(ws, name)  # validated; segmentation is always automatic
    timeout = service.streaming.idle_timeout
    if "inactivity_timeout" in q:
        try:
            timeout = float(q["inactivity_timeout"])
        except ValueError:
            raise InvalidRequestError("inactivity_timeout must be a number of seconds", param="inactivity_timeout") from None
        if not 1 <= timeout <= 180:
            raise InvalidRequestError("inactivity_timeout must be between 1 and 180 seconds", param="inactivity_timeout")
        timeout = min(timeout, service.streaming.idle_timeout)
    voice = await service.voice(voice_id, param="voice_id") if authorized else None
    model_id = q.get("model_id", "")
    ssml = bool(_bool_param(ws, "enable_ssml_parsing"))
    return Options(voice, model_id, normalization != "off", timeout, output, sync_alignment, voice_id, ssml)


class ElevenLabsProtocol(Protocol):
    """ElevenLabs' messages; `multi`: many contexts per socket (multi-stream-input), else one."""

    id_prefix = "tts-11l"
    missing_key = "missing or invalid API key: send the xi-api-key header"
    timings = True  # ElevenLabs sends alignment unasked

    def __init__(
        self,
        generation: GenerationSettings,
        streaming: StreamingSettings,
        opts: Options,
        *,
        multi: bool,
        voices: Callable[..., Awaitable[Voice]] | None = None,
        dictionaries: Callable[[Sequence[Locator]], Awaitable[tuple[Dictionary, ...]]] | None = None,
    ) -> None:
        if opts.voice is None and voices is None:
            raise ValueError("a voice, or how to look one up once the caller is authorized (SpeechService.voice)")
        self.generation = generation
        self.streaming = streaming
        self.opts = opts
        self.multi = multi
        self.voices = voices
        self.dictionaries = dictionaries  # locators -> the caller's tenant's versions (Dictionaries.resolve)
        self._read_with: dict[str, tuple[Dictionary, ...]] = {}  # each context's dictionaries, from its first message
        self.idle_timeout = opts.inactivity_timeout
        self._unflushed: set[str] = set()  # contexts with text sent after their last flush
        self._closing: set[str] = set()  # contexts whose close_context was taken

    @property
    def awaiting_config(self) -> bool:  # type: ignore[override]
        """Until the voice is known (the key came in a message), an error (an unknown voice) ends the session."""
        return self.opts.voice is None

    def describe(self) -> str:
        endpoint = "multi-stream-input" if self.multi else "stream-input"
        return f"elevenlabs {endpoint} voice={clip(self.opts.voice_id)} model_id={clip(self.opts.model_id or '-')}"

    # -- messages -> commands ---------------------------------------------------------------------
    def context_of(self, message: dict) -> str | None:
        """The message's context (None: its context_id is not a string)."""
        if not self.multi:
            return DEFAULT_CONTEXT
        cid = message.get("context_id") or message.get("contextId") or DEFAULT_CONTEXT
        return cid if isinstance(cid, str) else None

    async def parse(self, message: dict, contexts: Collection[str], *, closing: bool) -> AsyncIterator[Command]:
        yield Auth(message_key(message, "xi_api_key"))  # until authorized, every message carries the key
        # past this point the caller is authorized (the session ends a socket whose Auth brought no valid key)
        if self.opts.voice is None and self.voices is not None:
            self.opts.voice = await self.voices(self.opts.voice_id, param="voice_id")
        check_fields(message)
        cid = self.context_of(message) or DEFAULT_CONTEXT  # a string now
        if message.get("pronunciation_dictionary_locators"):
            await self._take_dictionaries(message["pronunciation_dictionary_locators"], cid, contexts)
        if self.multi and message.get("close_socket"):
            yield CloseSocket()
            return
        self._unflushed &= set(contexts)
        self._closing &= set(contexts)
        if self.multi and message.get("close_context"):
            # ElevenLabs: a flushed context goes on flushing, then ends; one with unflushed text (an interrupted
            # reply) closes now. A second close_context (an interruption after the reply's end) stops it too.
            if cid in self._unflushed or cid in self._closing:
                yield CancelContext(cid)
            else:
                yield EndContext(cid)
            self._closing.add(cid)
            return
        text = message.get("text")
        if cid not in contexts:
            if not text or closing:
                yield KeepAlive()  # a keep-alive, or input after the end
                return
            yield self._open(cid, message)
        if text == "" and not self.multi:
            yield CloseSocket()  # stream-input: an empty text ends the input
            return
        if text and text.strip():
            self._unflushed.add(cid)
            yield Text(cid, text)
        if message.get("flush") or message.get("try_trigger_generation") is True:
            self._unflushed.discard(cid)
            yield Flush(cid)

    async def _take_dictionaries(self, locators: list, cid: str, contexts: Collection[str]) -> None:
        """The dictionaries of the message that opens context `cid` (ElevenLabs' initializeConnection field)."""
        if cid in contexts:
            raise InvalidRequestError(
                "pronunciation_dictionary_locators are taken in the message that opens a context only",
                param="pronunciation_dictionary_locators",
            )
        try:
            found = DictionaryFields.model_validate({"pronunciation_dictionary_locators": locators})
        except ValidationError as exc:
            raise invalid_request(exc) from None
        if self.dictionaries is None:
            raise InvalidRequestError(
                "pronunciation_dictionary_locators: no dictionaries here", param="pronunciation_dictionary_locators"
            )
        self._read_with[cid] = await self.dictionaries(found.pronunciation_dictionary_locators or [])

    def _open(self, cid: str, first: dict) -> Open:
        vs = first.get("voice_settings") or {}  # an object (check_fields)
        voice = self.opts.voice
        if voice is None:  # parse looks it up before any command but Auth
            raise RuntimeError("a context opened before the voice was looked up")
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
            voice,
            gen,
            fields.output_spec(out.bit_rate),
            text=TextOptions(self.opts.normalize, dictionaries=self._read_with.get(cid, ())),
            use_context=self.streaming.context,
            ssml=self.opts.ssml,
        )

    # -- events -> messages -----------------------------------------------------------------------
    def _tag(self, obj: dict, cid: str | None) -> dict:
        if self.multi and cid is not None:
            obj["contextId"] = cid
        return obj

    def _error(self, exc: TTSError, cid: str | None) -> dict:
        info = describe(exc)
        return self._tag({"error": info.message, "message": info.message, "code": info.code or info.type}, cid)

    def _alignment(self, event: Timings) -> dict:
        """A segment's alignment, once its audio is complete, on a message of its own (`audio` empty).

        `normalizedAlignment` is over the normalized text that was spoken, `alignment` over the text as sent
        (each sent word over the time of the spoken words it became: "RM5" over "lima ringgit"; estimated over
        the same span where the words are not known).
        Times are in ms from the start of the message's chunk, as ElevenLabs documents; with
        `sync_alignment=true` (LiveKit's default) from the start of the context's audio, as LiveKit reads them.
        Each chunk is one segment, ending exactly where the next begins: summing the chunks' spans (pipecat)
        gives the context's clock."""
        t = event.timings
        base = 0 if self.opts.sync_alignment else t.start
        original = segment_as_sent(event.text, t)
        msg = {
            "audio": "",
            "isFinal": False,
            "normalizedAlignment": elevenlabs_alignment(t, base=base),
            "alignment": elevenlabs_alignment(original, base=base),
        }
        read_with = TextOptions(dictionaries=self._read_with.get(event.context, ()))
        if unused := unused_rules(read_with, event.text):  # our addition: a dictionary's phoneme rules it met
            msg["unusedSettings"] = unused
        return msg

    def render(self, event: Event) -> dict | None:
        if isinstance(event, Audio):
            audio = base64.b64encode(event.data).decode()
            msg = {"audio": audio, "isFinal": False, "normalizedAlignment": None, "alignment": None}
            return self._tag(msg, event.context)
        if isinstance(event, Timings):
            return self._tag(self._alignment(event), event.context)
        if isinstance(event, ContextFinal):
            self._read_with.pop(event.context, None)
            final: dict = {"isFinal": True}
            if event.usage.cut_segments:  # our addition, only when a segment was cut short (max_tokens, context)
                final |= {"finishReason": "length", "cutSegments": list(event.usage.cut_segments)}
            if event.usage.ssml_ignored:  # our addition: what its SSML held that was not applied
                final["ssmlIgnored"] = list(dict.fromkeys(event.usage.ssml_ignored))
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
    service, principal = accepted
    try:  # the voice is looked up only for a caller with the key: to one without, every voice_id is the same
        opts = await parse_options(ws, service, voice_id, authorized=principal.authenticated)
    except TTSError as exc:
        await deny(ws, exc)
        return
    protocol = ElevenLabsProtocol(
        service.generation, service.streaming, opts, multi=multi, voices=service.voice,
        dictionaries=lambda locators: service.dictionaries.resolve(caller_tenant(), locators),
    )  # fmt: skip
    await Session(ws, service, protocol, principal=principal).run()
