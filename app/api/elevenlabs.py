"""ElevenLabs-compatible text-streaming WebSockets, so agent plugins that speak ElevenLabs can use our voices.

`/v1/text-to-speech/{voice_id}/stream-input` (one context per socket) and `.../multi-stream-input` (many
`context_id`s on one socket), the endpoints LiveKit's `livekit-plugins-elevenlabs` and pipecat's
`ElevenLabsTTSService` connect to. Text in (`{"text": ...}`, `flush`, `close_context`, `close_socket`), base64
`pcm_24000` audio out (`{"audio", "contextId", "isFinal": false}`), then `{"isFinal": true}` per context.
What is not supported is refused with a clear error (the README lists it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from app.api.errors import describe
from app.api.segment_stream import AudioOut, SegmentStream
from app.api.ws import (
    CLOSE_ERROR,
    CLOSE_NORMAL,
    Sender,
    SessionEnd,
    close_quietly,
    deny,
    get_service_or_none,
    header_key,
    key_ok,
    receive_json,
)
from app.env import Settings
from app.errors import AuthenticationError, InvalidRequestError, NotReadyError, TTSError
from app.protocol import GenerationFields
from app.serving import SpeechService

logger = logging.getLogger(__name__)

router = APIRouter()

OUTPUT_FORMAT = "pcm_24000"
DEFAULT_CONTEXT = "default"  # multi-stream messages without a context_id
_BOOL = {"true": True, "false": False, "1": True, "0": False}


@dataclass
class Options:
    """The query parameters we use; the rest are accepted and ignored (see the README)."""

    voice: str
    model_id: str
    normalize: bool
    inactivity_timeout: float


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
    fmt = q.get("output_format")
    if fmt != OUTPUT_FORMAT:
        raise InvalidRequestError(
            f"output_format {fmt!r} is not supported; this server streams {OUTPUT_FORMAT} only "
            f"(16-bit mono PCM at 24 kHz): add output_format={OUTPUT_FORMAT}",
            param="output_format",
            code="unsupported_output_format",
        )
    if _bool_param(ws, "enable_ssml_parsing"):
        raise InvalidRequestError("enable_ssml_parsing=true is not supported", param="enable_ssml_parsing")
    normalization = q.get("apply_text_normalization", "auto")
    if normalization not in ("auto", "on", "off"):
        raise InvalidRequestError("apply_text_normalization must be auto, on or off", param="apply_text_normalization")
    for name in ("sync_alignment", "auto_mode", "enable_logging", "apply_language_text_normalization"):
        _bool_param(ws, name)  # validated; alignment is not sent, segmentation is always automatic
    timeout = service.settings.stream_idle_timeout
    if "inactivity_timeout" in q:
        try:
            timeout = float(q["inactivity_timeout"])
        except ValueError:
            raise InvalidRequestError("inactivity_timeout must be a number of seconds", param="inactivity_timeout") from None
        if not 1 <= timeout <= 180:
            raise InvalidRequestError("inactivity_timeout must be between 1 and 180 seconds", param="inactivity_timeout")
        timeout = min(timeout, service.settings.stream_idle_timeout)
    voice = service.resolve_voice(voice_id, param="voice_id")
    return Options(voice, q.get("model_id", ""), normalization != "off", timeout)


@router.websocket("/v1/text-to-speech/{voice_id}/stream-input")
async def stream_input(ws: WebSocket, voice_id: str) -> None:
    """ElevenLabs' single-context text streaming."""
    await _serve(ws, voice_id, multi=False)


@router.websocket("/v1/text-to-speech/{voice_id}/multi-stream-input")
async def multi_stream_input(ws: WebSocket, voice_id: str) -> None:
    """ElevenLabs' multi-context text streaming (what the LiveKit and pipecat plugins use)."""
    await _serve(ws, voice_id, multi=True)


async def _serve(ws: WebSocket, voice_id: str, *, multi: bool) -> None:
    settings: Settings = ws.app.state.settings
    given = header_key(ws, "xi-api-key")
    if given is not None and not key_ok(settings, given):
        await deny(ws, AuthenticationError("invalid API key (xi-api-key)"))
        return
    service = get_service_or_none(ws)
    if service is None:
        await deny(ws, NotReadyError("the service is still loading its models"))
        return
    try:
        opts = parse_options(ws, service, voice_id)
    except TTSError as exc:
        await deny(ws, exc)
        return
    await ws.accept()
    await ElevenLabsSession(service, ws, opts, multi=multi, authorized=key_ok(settings, given)).run()


class _Context:
    def __init__(self, cid: str, stream: SegmentStream, out: AudioOut) -> None:
        self.cid = cid
        self.stream = stream
        self.out = out
        self.writer: asyncio.Task | None = None


class ElevenLabsSession:
    """One ElevenLabs-protocol connection: its contexts, each a `SegmentStream` with its own writer task."""

    def __init__(self, service: SpeechService, ws: WebSocket, opts: Options, *, multi: bool, authorized: bool) -> None:
        self.service = service
        self.ws = ws
        self.opts = opts
        self.multi = multi
        self.authorized = authorized
        self.sender = Sender(ws, service.settings.stream_send_timeout)
        self.contexts: dict[str, _Context] = {}
        self.writers: set[asyncio.Task] = set()
        self.session_id = f"tts-11l-{uuid.uuid4().hex[:12]}"
        self.closing = False  # close_socket received (multi) or the input ended (single)

    async def run(self) -> None:
        receiving: asyncio.Future | None = None
        code = CLOSE_NORMAL
        logger.info(
            "%s elevenlabs %s voice=%s model_id=%s",
            self.session_id,
            "multi-stream-input" if self.multi else "stream-input",
            self.opts.voice,
            self.opts.model_id or "-",
        )
        try:
            last_message = time.monotonic()
            while True:
                for w in [w for w in self.writers if w.done()]:
                    self.writers.discard(w)
                    w.result()  # SessionEnd on backpressure, a send to a client that went away
                if self.closing and not self.contexts:
                    return
                if receiving is None:
                    receiving = asyncio.ensure_future(self.ws.receive())
                dues = [d for c in self.contexts.values() if (d := c.stream.due_in()) is not None]
                idle_left = self.opts.inactivity_timeout - (time.monotonic() - last_message)
                timeout = max(0.0, min([*dues, idle_left]))
                done, _ = await asyncio.wait({receiving, *self.writers}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if receiving in done:
                    message, receiving = receiving.result(), None
                    last_message = time.monotonic()
                    if not await self._handle(message):
                        return
                    continue
                for c in self.contexts.values():
                    c.stream.tick()
                idle = all(c.stream.idle for c in self.contexts.values())
                if not done and time.monotonic() - last_message >= self.opts.inactivity_timeout and idle:
                    logger.info("%s: inactive for %g s; closing", self.session_id, self.opts.inactivity_timeout)
                    return
        except SessionEnd as end:
            code = end.code
            with contextlib.suppress(Exception):
                await self._error(end.error, None)
            logger.info("%s ended: %s", self.session_id, end.error.message)
        except WebSocketDisconnect:
            logger.info("%s: client disconnected", self.session_id)
        except Exception:
            logger.exception("%s failed", self.session_id)
            code = CLOSE_ERROR
        finally:
            if receiving is not None:
                receiving.cancel()
            for c in list(self.contexts.values()):
                await self._drop(c)
            await close_quietly(self.ws, code)

    # -- client messages --------------------------------------------------------------------------
    async def _handle(self, message: dict) -> bool:
        cid: str | None = None
        try:
            obj = await receive_json(self.ws, message)
            if obj is None:
                return False
            if not self.authorized:
                if not key_ok(self.service.settings, obj.get("xi_api_key") or _bearer(obj.get("authorization"))):
                    raise SessionEnd(AuthenticationError("missing or invalid API key: send the xi-api-key header"))
                self.authorized = True
            cid = (obj.get("context_id") or obj.get("contextId") or DEFAULT_CONTEXT) if self.multi else DEFAULT_CONTEXT
            if obj.get("pronunciation_dictionary_locators"):
                raise InvalidRequestError(
                    "pronunciation_dictionary_locators are not supported", param="pronunciation_dictionary_locators"
                )
            if self.multi and obj.get("close_socket"):
                self.closing = True
                for c in self.contexts.values():
                    c.stream.end()
                return True
            ctx = self.contexts.get(cid)
            if self.multi and obj.get("close_context"):
                if ctx is not None:
                    ctx.stream.end()
                return True
            text = obj.get("text")
            if text is not None and not isinstance(text, str):
                raise InvalidRequestError("text must be a string", param="text")
            if ctx is None:
                if not text or self.closing:
                    return True  # a keep-alive, or input after the end
                ctx = self._open(cid, obj)
            if text == "" and not self.multi:
                ctx.stream.end()  # stream-input: an empty text ends the input
                self.closing = True
                return True
            if text and text.strip():
                ctx.stream.push(text)
            if obj.get("flush") or obj.get("try_trigger_generation") is True:
                ctx.stream.flush()
        except SessionEnd:
            raise
        except InvalidRequestError as exc:
            await self._error(exc, cid)
        return True

    def _open(self, cid: str, first: dict) -> _Context:
        settings = self.service.settings
        vs = first.get("voice_settings") or {}
        if not isinstance(vs, dict):
            raise InvalidRequestError("voice_settings must be an object", param="voice_settings")
        speed = vs.get("speed", 1.0)
        try:
            gen = GenerationFields(response_format="pcm", speed=speed).resolved(settings)
        except ValueError as exc:
            raise InvalidRequestError(f"voice_settings.speed: {exc}", param="voice_settings.speed") from None
        stream = SegmentStream(
            self.service, self.opts.voice, gen, normalize_malaysian=self.opts.normalize, use_context=settings.stream_context
        )
        ctx = _Context(cid, stream, AudioOut("pcm", gen.speed, self.service.sample_rate))
        ctx.writer = asyncio.create_task(self._write(ctx), name=f"{self.session_id}-{cid}")
        self.writers.add(ctx.writer)
        self.contexts[cid] = ctx
        return ctx

    # -- output -----------------------------------------------------------------------------------
    def _tag(self, obj: dict, cid: str | None) -> dict:
        if self.multi and cid is not None:
            obj["contextId"] = cid
        return obj

    async def _error(self, exc: TTSError, cid: str | None) -> None:
        info = describe(exc)
        await self.sender.json(self._tag({"error": info.message, "message": info.message, "code": info.code or info.type}, cid))

    async def _audio(self, ctx: _Context, data: bytes) -> None:
        if data:
            msg = {"audio": base64.b64encode(data).decode(), "isFinal": False, "normalizedAlignment": None, "alignment": None}
            await self.sender.json(self._tag(msg, ctx.cid))

    async def _write(self, ctx: _Context) -> None:
        events = ctx.stream.events()
        try:
            async for ev in events:
                if ev.kind == "audio":
                    await self._audio(ctx, await ctx.out.encode(ev.audio))
                elif ev.kind == "error":
                    logger.warning("%s %s segment %d failed: %s", self.session_id, ctx.cid, ev.index, ev.error.message)
                    await self._error(ev.error, ctx.cid)
            await self._audio(ctx, await ctx.out.finish())
            await self.sender.json(self._tag({"isFinal": True}, ctx.cid))
            logger.info("%s %s done: %s", self.session_id, ctx.cid, ctx.stream.usage.as_dict())
        finally:
            await events.aclose()
            ctx.out.close()
            if self.contexts.get(ctx.cid) is ctx:
                del self.contexts[ctx.cid]

    async def _drop(self, ctx: _Context) -> None:
        """Cancel a context's synthesis (its backend request is closed at once)."""
        if ctx.writer is not None and not ctx.writer.done():
            ctx.writer.cancel()
            with contextlib.suppress(BaseException):
                await ctx.writer
        self.contexts.pop(ctx.cid, None)


def _bearer(value: object) -> str | None:
    if isinstance(value, str) and value.lower().startswith("bearer "):
        return value[7:].strip()
    return None
