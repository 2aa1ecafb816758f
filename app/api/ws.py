"""`/v1/audio/speech/stream`: text in over a WebSocket as an LLM writes it, audio out as soon as a segment is ready.

Client messages are JSON: `config` (first), `text`, `flush`, `close`. The server answers `session.started`,
then per segment `segment.started`, its audio (binary frames, or `audio` events with base64), `segment.done`;
`error` events in OpenAI's error shape; `done` with usage last, then it closes the socket (1000).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.api.errors import describe
from app.api.segment_stream import AudioOut, SegmentStream
from app.env import Settings
from app.errors import AuthenticationError, InvalidRequestError, NotReadyError, TTSError
from app.protocol import StreamConfig
from app.serving import SpeechService

logger = logging.getLogger(__name__)

router = APIRouter()

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # bad auth, bad config, a client that does not read
CLOSE_ERROR = 1011


class SessionEnd(Exception):
    """Ends a session: the error to report and the close code."""

    def __init__(self, error: TTSError, code: int = CLOSE_POLICY) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = code


def error_event(exc: TTSError, **extra: object) -> dict:
    return {"type": "error", **extra, **describe(exc).body()}


def header_key(ws: WebSocket, *names: str) -> str | None:
    """The API key a client sent in a header: `Authorization: Bearer <key>` or one of `names` (e.g. xi-api-key)."""
    scheme, _, given = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and given.strip():
        return given.strip()
    for name in names:
        if ws.headers.get(name):
            return ws.headers[name].strip()
    return None


def key_ok(settings: Settings, given: str | None) -> bool:
    return not settings.api_key or (given is not None and secrets.compare_digest(given, settings.api_key))


async def deny(ws: WebSocket, exc: TTSError) -> None:
    """Refuse the handshake with an HTTP error in OpenAI's shape (or, where the server cannot, close at once)."""
    info = describe(exc)
    body = info.body()
    try:
        await ws.send_denial_response(JSONResponse(body, status_code=info.status))
    except RuntimeError:  # the server lacks the websocket.http.response extension
        await ws.accept()
        await ws.send_text(json.dumps({"type": "error", **body}))
        await ws.close(CLOSE_POLICY)


def get_service_or_none(ws: WebSocket) -> SpeechService | None:
    return getattr(ws.app.state, "service", None)


class Sender:
    """Serialized sends with a time limit: a client that stops reading ends the session instead of holding
    its backend requests forever."""

    def __init__(self, ws: WebSocket, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def _send(self, op: Callable[[], Awaitable[None]]) -> None:
        async with self._lock:
            try:
                await asyncio.wait_for(op(), self.timeout)
            except TimeoutError:
                raise SessionEnd(
                    InvalidRequestError(
                        f"the client did not read its audio for {self.timeout:g} s; session ended",
                        code="backpressure",
                    )
                ) from None

    async def json(self, obj: dict) -> None:
        await self._send(lambda: self.ws.send_text(json.dumps(obj, separators=(",", ":"), ensure_ascii=False)))

    async def bytes(self, data: bytes) -> None:
        await self._send(lambda: self.ws.send_bytes(data))


async def close_quietly(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code, reason[:120])


async def receive_json(ws: WebSocket, message: dict) -> dict | None:
    """A received WebSocket message as a JSON object; None for a disconnect. Raises InvalidRequestError."""
    if message["type"] == "websocket.disconnect":
        return None
    text = message.get("text")
    if text is None:
        raise InvalidRequestError("send JSON text messages, not binary ones", code="invalid_message")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"message is not JSON: {exc}", code="invalid_message") from exc
    if not isinstance(obj, dict):
        raise InvalidRequestError("message must be a JSON object", code="invalid_message")
    return obj


def validation_error(exc: ValidationError) -> InvalidRequestError:
    err = exc.errors()[0]
    loc = [str(p) for p in err.get("loc", ())]
    param = loc[0] if loc else None
    return InvalidRequestError(f"{param}: {err['msg']}" if param else err["msg"], param=param)


@router.websocket("/v1/audio/speech/stream")
async def speech_stream(ws: WebSocket) -> None:
    """Streaming text input: see the module docstring and the README's message table."""
    settings: Settings = ws.app.state.settings
    given = header_key(ws)
    if given is not None and not key_ok(settings, given):
        await deny(ws, AuthenticationError("invalid API key"))
        return
    service = get_service_or_none(ws)
    if service is None:
        await deny(ws, NotReadyError("the service is still loading its models"))
        return
    await ws.accept()
    session = SpeechStreamSession(service, ws, header_authorized=given is not None)
    await session.run()


class SpeechStreamSession:
    """One `/v1/audio/speech/stream` connection."""

    def __init__(self, service: SpeechService, ws: WebSocket, *, header_authorized: bool) -> None:
        self.service = service
        self.settings = service.settings
        self.ws = ws
        self.header_authorized = header_authorized
        self.sender = Sender(ws, self.settings.stream_send_timeout)
        self.session_id = f"tts-ws-{uuid.uuid4().hex[:12]}"

    async def run(self) -> None:
        writer: asyncio.Task | None = None
        receiving: asyncio.Future | None = None
        code, reason = CLOSE_NORMAL, ""
        try:
            cfg = await self._configure()
            stream, out, binary = self._start(cfg)
            await self.sender.json(
                {
                    "type": "session.started",
                    "id": self.session_id,
                    "voice": stream.voice,
                    "response_format": cfg.response_format,
                    "sample_rate": self.service.sample_rate,
                    "audio_frames": "binary" if binary else "base64",
                    "context": stream.use_context,
                }
            )
            writer = asyncio.create_task(self._write(stream, out, binary), name=f"{self.session_id}-writer")
            last_message = time.monotonic()
            while True:
                if receiving is None:
                    receiving = asyncio.ensure_future(self.ws.receive())
                due = stream.due_in()
                idle_left = self.settings.stream_idle_timeout - (time.monotonic() - last_message)
                timeout = max(0.0, min(due if due is not None else idle_left, idle_left))
                done, _ = await asyncio.wait({receiving, writer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if writer in done:
                    writer.result()  # raises SessionEnd on backpressure
                    return
                if receiving in done:
                    message, receiving = receiving.result(), None
                    last_message = time.monotonic()
                    if not await self._handle(message, stream):
                        return  # the client went away
                    continue
                stream.tick()
                if time.monotonic() - last_message >= self.settings.stream_idle_timeout and stream.idle:
                    raise SessionEnd(
                        InvalidRequestError(
                            f"no message for {self.settings.stream_idle_timeout:g} s; session closed", code="idle_timeout"
                        )
                    )
        except SessionEnd as end:
            code, reason = end.code, end.error.message
            if end.error.code != "backpressure":
                with contextlib.suppress(Exception):
                    await self.sender.json(error_event(end.error))
            logger.info("%s ended: %s", self.session_id, end.error.message)
        except WebSocketDisconnect:
            logger.info("%s: client disconnected", self.session_id)
        except Exception:
            logger.exception("%s failed", self.session_id)
            code, reason = CLOSE_ERROR, "internal error"
            with contextlib.suppress(Exception):
                await self.sender.json(error_event(TTSError("internal error")))
        finally:
            if receiving is not None:
                receiving.cancel()
            if writer is not None and not writer.done():
                writer.cancel()
                with contextlib.suppress(BaseException):
                    await writer
            await close_quietly(self.ws, code, reason)

    async def _configure(self) -> StreamConfig:
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.settings.stream_idle_timeout)
        except TimeoutError:
            raise SessionEnd(InvalidRequestError("no config message received", code="idle_timeout")) from None
        try:
            obj = await receive_json(self.ws, message)
        except InvalidRequestError as exc:
            raise SessionEnd(exc) from None
        if obj is None:
            raise WebSocketDisconnect()
        if obj.get("type") != "config":
            raise SessionEnd(InvalidRequestError('the first message must be {"type": "config", ...}', param="type"))
        try:
            cfg = StreamConfig.model_validate(obj)
        except ValidationError as exc:
            raise SessionEnd(validation_error(exc)) from None
        if not self.header_authorized and not key_ok(self.settings, cfg.api_key):
            raise SessionEnd(
                AuthenticationError(
                    "missing or invalid API key: send 'Authorization: Bearer <key>' or api_key in the config message"
                )
            )
        return cfg

    def _start(self, cfg: StreamConfig) -> tuple[SegmentStream, AudioOut, bool]:
        try:
            voice = self.service.resolve_voice(cfg.voice_name)
        except TTSError as exc:
            raise SessionEnd(exc) from None
        use_context = self.settings.stream_context if cfg.context is None else cfg.context
        stream = SegmentStream(
            self.service,
            voice,
            cfg.resolved(self.settings),
            normalize_malaysian=cfg.normalize_malaysian,
            language=cfg.language,
            use_context=use_context,
        )
        binary = (cfg.audio_frames or "binary") == "binary"
        logger.info(
            "%s stream voice=%s format=%s context=%s frames=%s",
            self.session_id,
            voice,
            cfg.response_format,
            use_context,
            "binary" if binary else "base64",
        )
        return stream, AudioOut(cfg.response_format, cfg.speed, self.service.sample_rate), binary

    async def _handle(self, message: dict, stream: SegmentStream) -> bool:
        """One client message; False when the client disconnected."""
        try:
            obj = await receive_json(self.ws, message)
            if obj is None:
                return False
            kind = obj.get("type")
            if stream.ended:
                raise InvalidRequestError("the stream is closed; no more messages are accepted", code="closed")
            if kind == "text":
                text = obj.get("text")
                if not isinstance(text, str):
                    raise InvalidRequestError("text must be a string", param="text")
                stream.push(text)
                limit = self.settings.max_input_chars * 4
                if stream.pending_chars > limit:
                    raise SessionEnd(
                        InvalidRequestError(
                            f"{stream.pending_chars} characters wait to be synthesized; the limit is {limit}",
                            param="text",
                            code="too_much_pending_text",
                        )
                    )
                if obj.get("flush") is True:
                    stream.flush()
            elif kind == "flush":
                stream.flush()
            elif kind == "close":
                stream.end()
            elif kind == "config":
                raise InvalidRequestError("config is only accepted as the first message", param="type")
            else:
                raise InvalidRequestError(
                    f"unknown message type {kind!r}; expected text, flush or close", param="type", code="invalid_message"
                )
        except SessionEnd:
            raise
        except InvalidRequestError as exc:
            await self.sender.json(error_event(exc, index=None))
        return True

    async def _write(self, stream: SegmentStream, out: AudioOut, binary: bool) -> None:
        events = stream.events()
        try:
            async for ev in events:
                if ev.kind == "started":
                    ctx = ev.job.context if ev.job else None
                    await self.sender.json(
                        {
                            "type": "segment.started",
                            "index": ev.index,
                            "text": ev.text,
                            "normalized": ev.normalized,
                            "context_tokens": len(ctx.tokens) if ctx else 0,
                        }
                    )
                elif ev.kind == "audio":
                    await self._audio(await out.encode(ev.audio), ev.index, binary)
                elif ev.kind == "done":
                    job = ev.job
                    await self.sender.json(
                        {
                            "type": "segment.done",
                            "index": ev.index,
                            "text": ev.text,
                            "speech_tokens": len(job.tokens),
                            "audio_seconds": round(job.samples_out / job.sample_rate, 3),
                        }
                    )
                elif ev.kind == "error":
                    logger.warning("%s segment %d failed: %s", self.session_id, ev.index, ev.error.message)
                    await self.sender.json(error_event(ev.error, index=ev.index, text=ev.text))
            await self._audio(await out.finish(), None, binary)
            await self.sender.json({"type": "done", "usage": stream.usage.as_dict()})
        finally:
            await events.aclose()
            out.close()

    async def _audio(self, data: bytes, index: int | None, binary: bool) -> None:
        if not data:
            return
        if binary:
            await self.sender.bytes(data)
        else:
            await self.sender.json({"type": "audio", "index": index, "audio": base64.b64encode(data).decode()})
