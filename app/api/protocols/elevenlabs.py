"""ElevenLabs-compatible text-streaming WebSockets, so agent plugins that speak ElevenLabs can use our voices.

`/v1/text-to-speech/{voice_id}/stream-input` (one context per socket) and `.../multi-stream-input` (many
`context_id`s on one socket), the endpoints LiveKit's `livekit-plugins-elevenlabs` and pipecat's
`ElevenLabsTTSService` connect to. Text in (`{"text": ...}`, `flush`, `close_context`, `close_socket`), base64
audio in the `output_format` asked for out (`{"audio", "contextId", "isFinal": false}`; pcm_8000 ... pcm_48000,
ulaw_8000, alaw_8000, mp3_*, opus_48000_*: the registry's list), then `{"isFinal": true}` per context (with
`finishReason: "length"` and `cutSegments` added when a segment was cut short at max_tokens or the context).
What is not supported is refused with a clear error (the README lists it).

Also ElevenLabs' HTTP `with-timestamps` endpoints (pipecat's `ElevenLabsHttpTTSService`, the ElevenLabs SDKs'
`convert_with_timestamps`): `POST /v1/text-to-speech/{voice_id}/with-timestamps` (one JSON object) and
`.../stream/with-timestamps` (JSON lines), the audio in base64 with its alignment once the audio is complete.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import APIRouter, Depends, Request, WebSocket
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.api.audio_response import (
    AdmittedResponse,
    _abort_on_error,
    _prime,
    _with_first,
    finish_headers,
    until_disconnected,
)
from app.api.auth import caller, message_key
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
from app.audio.output import AudioWriter
from app.audio.registry import ElevenLabsFormat, UnsupportedFormat, elevenlabs_format
from app.errors import InvalidRequestError, NotReadyError, TTSError
from app.observability.logs import clip
from app.service.leases import lease_for
from app.service.principal import Principal
from app.service.requests import NOT_BLANK, GenerationFields, SpeechRequest
from app.service.segments import SegmentStream
from app.service.speech import SpeechService
from app.service.timeline import Timeline
from app.service.timing import SegmentTimings, elevenlabs_alignment, elevenlabs_http_alignment, estimated
from app.service.voice import Voice
from app.settings import GenerationSettings, StreamingSettings

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
    if _bool_param(ws, "enable_ssml_parsing"):
        raise InvalidRequestError("enable_ssml_parsing=true is not supported", param="enable_ssml_parsing")
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
    return Options(voice, model_id, normalization != "off", timeout, output, sync_alignment, voice_id)


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
    ) -> None:
        if opts.voice is None and voices is None:
            raise ValueError("a voice, or how to look one up once the caller is authorized (SpeechService.voice)")
        self.generation = generation
        self.streaming = streaming
        self.opts = opts
        self.multi = multi
        self.voices = voices
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
            raise InvalidRequestError(
                "pronunciation_dictionary_locators are not supported", param="pronunciation_dictionary_locators"
            )
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

    def _alignment(self, event: Timings) -> dict:
        """A segment's alignment, once its audio is complete, on a message of its own (`audio` empty).

        `normalizedAlignment` is over the normalized text that was spoken, `alignment` over the text as sent
        (its characters estimated over the same span: the normalizer may rewrite "RM5" as "lima ringgit").
        Times are in ms from the start of the message's chunk, as ElevenLabs documents; with
        `sync_alignment=true` (LiveKit's default) from the start of the context's audio, as LiveKit reads them.
        Each chunk is one segment, ending exactly where the next begins: summing the chunks' spans (pipecat)
        gives the context's clock."""
        t = event.timings
        base = 0 if self.opts.sync_alignment else t.start
        original = estimated(event.text, start=t.start, end=t.end, rate=t.rate)
        return {
            "audio": "",
            "isFinal": False,
            "normalizedAlignment": elevenlabs_alignment(t, base=base),
            "alignment": elevenlabs_alignment(original, base=base),
        }

    def render(self, event: Event) -> dict | None:
        if isinstance(event, Audio):
            audio = base64.b64encode(event.data).decode()
            msg = {"audio": audio, "isFinal": False, "normalizedAlignment": None, "alignment": None}
            return self._tag(msg, event.context)
        if isinstance(event, Timings):
            return self._tag(self._alignment(event), event.context)
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
    service, principal = accepted
    try:  # the voice is looked up only for a caller with the key: to one without, every voice_id is the same
        opts = await parse_options(ws, service, voice_id, authorized=principal.authenticated)
    except TTSError as exc:
        await deny(ws, exc)
        return
    protocol = ElevenLabsProtocol(service.generation, service.streaming, opts, multi=multi, voices=service.voice)
    await Session(ws, service, protocol, principal=principal).run()


# -- HTTP: with-timestamps ----------------------------------------------------------------------------------------


class TimedSpeechBody(BaseModel):
    """The body of ElevenLabs' text-to-speech requests: `text` and `voice_settings.speed` are used; the rest
    (`model_id`, `previous_text`, `language_code`, ...) is accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    text: str = Field(..., json_schema_extra=NOT_BLANK)
    voice_settings: dict[str, Any] | None = None
    apply_text_normalization: str | None = None


async def _timed_job(
    request: Request, voice_id: str, principal: Principal
) -> tuple[SpeechService, SegmentStream, str, ElevenLabsFormat]:
    """The body and the query checked (`KeyGuard` has checked the key); the job prepared (all before any audio)."""
    service: SpeechService | None = getattr(request.app.state, "service", None)
    if service is None:
        raise NotReadyError("the service is still loading its models")
    try:
        output = elevenlabs_format(request.query_params.get("output_format") or "mp3_44100_128")  # ElevenLabs' default
    except UnsupportedFormat as exc:
        raise InvalidRequestError(str(exc), param="output_format", code="unsupported_output_format") from None
    try:
        raw = await request.json()
    except ValueError:
        raise InvalidRequestError("the body must be JSON", code="invalid_json") from None
    try:
        body = TimedSpeechBody.model_validate(raw)
        if not body.text.strip():
            raise InvalidRequestError("text must not be empty", param="text")
        req = SpeechRequest(
            input=body.text,
            voice=voice_id,
            response_format=output.format.name,
            sample_rate=output.rate,
            encoding=output.encoding.name,
            speed=(body.voice_settings or {}).get("speed", 1.0),
            normalize_malaysian=body.apply_text_normalization != "off",
        )
    except ValidationError as exc:
        error = invalid_request(exc)
        if error.param == "input":  # SpeechRequest's name for this API's `text`
            error.param, error.message = "text", "text" + error.message.removeprefix("input")
            error.args = (error.message,)
        raise error from None
    try:  # resolves the voice once (the store, for a saved one); the text's errors name `text`
        stream = await service.prepare_speech(req, principal, text_param="text")
    except InvalidRequestError as exc:
        if exc.param == "voice":
            exc.param = "voice_id"  # what this API calls it
        raise
    return service, stream, body.text, output


def _writer(job: SegmentStream, output: ElevenLabsFormat, *, streaming: bool) -> AudioWriter:
    gen = job.gen
    return AudioWriter(
        output.format, source_rate=job.service.sample_rate, speed=gen.speed, rate=output.rate,
        encoding=output.encoding.name, bit_rate=output.bit_rate,
        complexity=job.service.streaming.opus_complexity, streaming=streaming,
    )  # fmt: skip


def _alignments(timeline: Timeline, text: str) -> dict:
    """`normalized_alignment` over the spoken text (each segment placed where its audio is: the aligner's or the
    estimate), `alignment` over the text as sent, spread over all the audio."""
    rate = timeline.writer.rate
    spoken = SegmentTimings.join(timeline.segments, rate)
    sent = estimated(text, start=0, end=spoken.end, rate=rate)
    return {"alignment": elevenlabs_http_alignment(sent), "normalized_alignment": elevenlabs_http_alignment(spoken)}


def _line(obj: dict) -> bytes:
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode()


async def _timed_lines(chunks: AsyncIterator[np.ndarray], timeline: Timeline, text: str) -> AsyncIterator[bytes]:
    """JSON lines: `{"audio_base64", "alignment": null, "normalized_alignment": null}` as audio comes, then the
    encoder's tail with both alignments once the audio is complete."""
    writer = timeline.writer
    try:
        async for chunk in chunks:
            if data := await writer.awrite(chunk):
                yield _line({"audio_base64": base64.b64encode(data).decode(), "alignment": None, "normalized_alignment": None})
        tail = await writer.afinish()
        yield _line({"audio_base64": base64.b64encode(tail).decode(), **_alignments(timeline, text)})
    finally:
        writer.close()
        await chunks.aclose()  # type: ignore[attr-defined]


async def _timed_whole(chunks: AsyncIterator[np.ndarray], timeline: Timeline, text: str) -> dict:
    """The whole audio, encoded, and both alignments: `convert_with_timestamps`' one JSON object."""
    writer = timeline.writer
    try:
        parts = [c async for c in chunks]
        audio = await writer.aencode_all(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        return {"audio_base64": base64.b64encode(audio).decode(), **_alignments(timeline, text)}
    finally:
        writer.close()
        await chunks.aclose()  # type: ignore[attr-defined]


async def _timed_http(request: Request, voice_id: str, principal: Principal, *, stream: bool) -> Response:
    slot = timeline = None
    try:
        service, job, text, output = await _timed_job(request, voice_id, principal)
        slot = service.admit("speech")
        await lease_for(request.app.state.key_limits, principal, slot)  # the key's own limits
        timeline = Timeline(service, _writer(job, output, streaming=stream))
        chunks = job.audio(timeline)
        if not stream:  # the client may leave while the whole audio is made: watched, the backend stopped
            body = await until_disconnected(request.receive, _timed_whole(chunks, timeline, text))
            slot.release()
            return JSONResponse(body, headers={"X-Request-Id": job.request_id} | finish_headers(job.usage))
        first = await until_disconnected(request.receive, _prime(chunks))
        lines = _abort_on_error(_timed_lines(_with_first(first, chunks), timeline, text), job)
        response = StreamingResponse(lines, media_type="application/json", headers={"X-Request-Id": job.request_id})
        return AdmittedResponse(response, slot)
    except BaseException:
        if timeline is not None:
            timeline.writer.close()  # idempotent: a response that never started holds no encoder
        if slot is not None:
            slot.release()
        raise


@router.post("/v1/text-to-speech/{voice_id}/with-timestamps", include_in_schema=False)
async def with_timestamps(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `convert_with_timestamps`: the whole audio and its alignment in one JSON object."""
    return await _timed_http(request, voice_id, principal, stream=False)


@router.post("/v1/text-to-speech/{voice_id}/stream/with-timestamps", include_in_schema=False)
async def stream_with_timestamps(request: Request, voice_id: str, principal: Principal = Depends(caller)) -> Response:
    """ElevenLabs' `stream_with_timestamps`: JSON lines of audio, the alignment once the audio is complete."""
    return await _timed_http(request, voice_id, principal, stream=True)
