"""The WebSocket session loop behind both text-streaming protocols (ours and ElevenLabs').

A `Protocol` adapter (`app/api/protocols/`) turns each client message into commands and each session event
into a message; `Session` does the rest: the handshake's checks, reading, serialized sends with a time limit,
the idle timeout, the segmenter's timer, one writer task per context, cancellation, clean-up and close codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect, WebSocketState

from app.api.auth import Authenticator, header_key
from app.api.drain import CLOSE_RESTART, Drain
from app.api.errors import describe
from app.api.protocols.adapter import (
    Audio,
    Auth,
    CancelContext,
    CloseSocket,
    Command,
    ContextFinal,
    ContextStarted,
    EndContext,
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
from app.api.socket_limits import CLOSE_TRY_LATER, SocketLimits
from app.audio.output import AudioWriter
from app.errors import AuthenticationError, InvalidRequestError, NotReadyError, OverloadedError, TTSError
from app.observability.logs import clip
from app.service.leases import NO_LEASE, Lease
from app.service.principal import CALLER, Principal
from app.service.segments import SegmentStream
from app.service.speech import SpeechService
from app.service.text_input import clean_text

logger = logging.getLogger(__name__)

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008  # bad auth, bad config, a client that does not read
CLOSE_TOO_BIG = 1009  # a message over WS_MAX_MESSAGE_BYTES
CLOSE_ERROR = 1011
# CLOSE_TRY_LATER (1013): a key came, but its share of sockets is taken; or a key's or tenant's limit is reached


class SessionEnd(Exception):
    """Ends a session: the error to report and the close code."""

    def __init__(self, error: TTSError, code: int = CLOSE_POLICY) -> None:
        super().__init__(error.message)
        self.error = error
        self.code = code


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


async def handshake(ws: WebSocket, invalid_key: str, *key_headers: str) -> tuple[SpeechService, Principal] | None:
    """The checks before a socket is accepted: a key in the headers must be right, the service must be up.
    Returns the service and the socket's principal (unauthenticated when a key is needed and the headers carried
    none: a message must bring it); None when refused (answered)."""
    given = header_key(ws.headers, *key_headers)
    authenticator: Authenticator = ws.app.state.authenticator
    principal = authenticator.identify(given, ws.client.host if ws.client else None)
    if given is not None and not principal.authenticated:
        await deny(ws, AuthenticationError(invalid_key))
        return None
    service: SpeechService | None = getattr(ws.app.state, "service", None)
    if service is None:
        await deny(ws, NotReadyError("the service is still loading its models"))
        return None
    CALLER.set(principal)  # this socket's task serves it from here (a voice looked up at the handshake: its tenant's)
    return service, principal


class Sender:
    """Serialized sends with a time limit: a client that stops reading ends the session instead of holding
    its backend requests forever."""

    def __init__(self, ws: WebSocket, timeout: float) -> None:
        self.ws = ws
        self.timeout = timeout
        self._lock = asyncio.Lock()

    async def _send(self, op: Callable[[], Awaitable[None]], live: Callable[[], bool] | None) -> None:
        async with self._lock:
            if live is not None and not live():
                return
            try:
                await asyncio.wait_for(op(), self.timeout)
            except TimeoutError:
                raise SessionEnd(
                    InvalidRequestError(
                        f"the client did not read its audio for {self.timeout:g} s; session ended",
                        code="backpressure",
                    )
                ) from None

    async def send(self, message: dict | bytes | None, live: Callable[[], bool] | None = None) -> None:
        """A JSON object as a text frame, bytes as a binary frame; None sends nothing, nor does a message whose
        `live()` is false once its turn to be sent comes (a context cancelled meanwhile)."""
        if isinstance(message, bytes):
            await self._send(lambda: self.ws.send_bytes(message), live)
        elif message is not None:
            text = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
            await self._send(lambda: self.ws.send_text(text), live)


def _message_bytes(message: dict) -> int:
    data, text = message.get("bytes"), message.get("text")
    if data is not None:
        return len(data)
    return len(text.encode("utf-8", "surrogatepass")) if text else 0


def check_size(message: dict, limit: int) -> None:
    """A message over `limit` bytes ends the session (1009); uvicorn's ws_max_size stops it first, in tts-api."""
    if _message_bytes(message) > limit:
        error = InvalidRequestError(f"a message may be at most {limit} bytes (WS_MAX_MESSAGE_BYTES)",
                                    code="message_too_big")  # fmt: skip
        raise SessionEnd(error, CLOSE_TOO_BIG)


def receive_json(message: dict) -> dict | None:
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


async def close_quietly(ws: WebSocket, code: int, reason: str = "") -> None:
    if ws.application_state == WebSocketState.CONNECTED and ws.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code, reason[:120])


def check_room(drain: Drain, open_contexts: int, max_contexts: int) -> None:
    """A new context is refused while the server drains, or when the socket has `max_contexts` open."""
    if drain.refusing:
        raise InvalidRequestError("the server is restarting: open this context on a new connection",
                                  param="context_id", code="shutting_down")  # fmt: skip
    if open_contexts >= max_contexts:
        raise InvalidRequestError(
            f"{open_contexts} contexts are open on this socket; the limit is {max_contexts}",
            param="context_id",
            code="too_many_contexts",
        )


class Context:
    """One text stream of a session: its segments, its audio encoder, the task that writes them and its stream
    lease (given back when the task ends: app/api/socket_limits.py)."""

    def __init__(self, cid: str, stream: SegmentStream, out: AudioWriter, lease: Lease = NO_LEASE) -> None:
        self.cid = cid
        self.stream = stream
        self.out = out
        self.lease = lease
        self.writer: asyncio.Task | None = None
        self.cancelled = False  # CancelContext: nothing more of it is sent but its final message

    @classmethod
    def open(cls, service: SpeechService, spec: Open, lease: Lease = NO_LEASE) -> Context:
        """The context an `Open` command asks for: its segment stream and its audio writer."""
        stream = service.context_stream(
            spec.voice, spec.gen, spec.output, text=spec.text,
            use_context=spec.use_context, ssml=spec.ssml,
        )  # fmt: skip
        return cls(spec.context, stream, service.renderer.writer(spec.output), lease)

    def push(self, text: str, limit: int) -> None:
        """A text delta taken, unless the characters waiting to be synthesized would then be over `limit`
        (checked before the text is taken: nothing over the limit is segmented; the session ends)."""
        pending = self.stream.feed.pending_chars + len(text)
        if pending > limit:
            raise SessionEnd(
                InvalidRequestError(
                    f"{pending} characters wait to be synthesized; the limit is {limit}",
                    param="text",
                    code="too_much_pending_text",
                )
            )
        self.stream.feed.push(clean_text(text, "text"))


class ClientSockets:
    """Open WebSockets per caller (its principal's `share_key`: its address, "-" when unknown), at most its
    `limits.sockets` each (0: no limit); event loop only, so no lock. Sockets still waiting for their key
    (unauthenticated principals) are counted apart: they never take an authenticated caller's share."""

    def __init__(self) -> None:
        self.open: dict[tuple[bool, str], int] = {}

    @staticmethod
    def _key(caller: Principal) -> tuple[bool, str]:
        return caller.authenticated, caller.share_key or "-"

    def take(self, caller: Principal) -> bool:
        key, limit = self._key(caller), caller.limits.sockets
        if limit and self.open.get(key, 0) >= limit:
            return False
        self.open[key] = self.open.get(key, 0) + 1
        return True

    def give_back(self, caller: Principal) -> None:
        key = self._key(caller)
        left = self.open.get(key, 0) - 1
        if left > 0:
            self.open[key] = left
        else:
            self.open.pop(key, None)


def too_many_sockets(caller: Principal) -> OverloadedError:
    limit = caller.limits.sockets
    if caller.authenticated:
        return OverloadedError(f"too many WebSockets open from this client (limit {limit}); retry later")
    return OverloadedError(
        f"too many WebSockets waiting for their API key from this client (limit {limit}); send the key in the"
        " handshake's headers, or retry later"
    )


class SocketCaller:
    """Who a socket serves: the handshake's principal, or, when that one is unauthenticated, the principal that
    a message's key identifies within `timeout` seconds of the accept (`start()`). It is `CALLER` while the
    session runs, so that the tasks the session starts (its contexts' writers) inherit it.

    It holds the socket's place in `sockets` (`take()` at the handshake, `give_back()` at the end): a socket
    waiting for its key counts among the waiting ones, and moves to its key's share when the key comes."""

    def __init__(
        self,
        authenticator: Authenticator,
        principal: Principal,
        timeout: float,
        missing_key: str,
        sockets: ClientSockets,
    ) -> None:
        self.authenticator = authenticator
        self.principal = principal
        self.timeout = timeout
        self.missing_key = missing_key
        self.sockets = sockets
        self.deadline = math.inf

    @property
    def authorized(self) -> bool:
        return self.principal.authenticated

    def take(self) -> bool:
        """The socket's place among its principal's; False when they are all taken."""
        return self.sockets.take(self.principal)

    def give_back(self) -> None:
        self.sockets.give_back(self.principal)

    def start(self) -> None:
        """The socket is accepted: the key must come within `timeout` seconds from now."""
        self.deadline = time.monotonic() + self.timeout

    def time_left(self) -> list[float]:
        """Seconds left to bring a key; none once authorized."""
        return [] if self.authorized else [self.deadline - time.monotonic()]

    def check_deadline(self) -> None:
        if not self.authorized and time.monotonic() >= self.deadline:
            raise SessionEnd(AuthenticationError(f"no valid API key within {self.timeout:g} s; {self.missing_key}"))

    def authenticate(self, key: str | None) -> Principal:
        """The principal a message's key identifies becomes the socket's (and `CALLER`), its place moved to that
        principal's share; else the session ends (a wrong key; a share with no place left: 1013)."""
        principal = self.authenticator.identify(key, self.principal.client)
        if not principal.authenticated:
            raise SessionEnd(AuthenticationError(self.missing_key))
        if not self.sockets.take(principal):
            raise SessionEnd(too_many_sockets(principal), CLOSE_TRY_LATER)
        self.sockets.give_back(self.principal)
        self.principal = principal
        CALLER.set(principal)  # for the contexts opened from now on; Session.run resets it at the end
        return principal


class Session:
    """One accepted connection, driven by `protocol`: its contexts, each a `SegmentStream` with its own writer.

    The session ends when the protocol closes the socket and every context has finished, when the client goes
    away (its contexts' backend requests are closed at once), on a fatal error (`SessionEnd`: an error message,
    then 1008) or an unexpected one (1011), when nothing happened for `protocol.idle_timeout` seconds, or when a
    client not authorized at the handshake sent no valid key within `STREAM_AUTH_TIMEOUT` seconds.

    `principal` is who the socket serves (`SocketCaller`, which holds its place among the open sockets); no
    command runs before it is authenticated.
    """

    def __init__(self, ws: WebSocket, service: SpeechService, protocol: Protocol, *, principal: Principal) -> None:
        self.ws = ws
        self.service = service
        self.protocol = protocol
        timeout, sockets = ws.app.state.settings.security.auth_timeout, ws.app.state.client_sockets
        self.caller = SocketCaller(ws.app.state.authenticator, principal, timeout, protocol.missing_key, sockets)
        self.sender = Sender(ws, service.streaming.send_timeout)
        self.quota = SocketLimits(service.key_limits)  # its caller's key and tenant limits
        self.contexts: dict[str, Context] = {}
        self.writers: set[asyncio.Task] = set()
        self.closing = False  # the protocol closed the socket: no new contexts, end when the last one is done
        self.drain: Drain = ws.app.state.drain
        self.drained = False  # SIGTERM's drain: no new contexts, the quiet ones ended, then 1012
        self.session_id = f"{protocol.id_prefix}-{uuid.uuid4().hex[:12]}"
        limits = service.limits
        self.max_message_bytes = limits.ws_max_message_bytes
        self.max_contexts = limits.stream_max_contexts
        pending = [n for n in (protocol.pending_text_limit, limits.stream_max_pending_chars) if n is not None]
        self.pending_text_limit = min(pending)

    async def run(self) -> None:
        if not self.caller.take():
            await deny(self.ws, too_many_sockets(self.caller.principal))
            return
        token = CALLER.set(self.caller.principal)
        try:
            await self._run()
        finally:
            CALLER.reset(token)
            self.caller.give_back()

    async def _run(self) -> None:
        await self.ws.accept()
        logger.info("%s %s key=%s", self.session_id, self.protocol.describe(), self.caller.principal.key_id)
        self._receiving: asyncio.Future | None = None
        code, reason = CLOSE_NORMAL, ""
        self.caller.start()
        try:
            code, reason = await self._loop()
        except SessionEnd as end:
            code, reason = end.code, describe(end.error).message
            if end.error.code != "backpressure":  # a client that does not read would not read this either
                with contextlib.suppress(Exception):
                    await self.sender.send(self.protocol.render(SessionEnded(end.error)))
            logger.info("%s ended: %s", self.session_id, clip(end.error.message, 300))
        except WebSocketDisconnect:
            logger.info("%s: client disconnected", self.session_id)
        except Exception:
            logger.exception("%s failed", self.session_id)
            code, reason = CLOSE_ERROR, "internal error"
            with contextlib.suppress(Exception):
                await self.sender.send(self.protocol.render(SessionEnded(TTSError("internal error"))))
        finally:
            if self._receiving is not None:
                self._receiving.cancel()
            for c in list(self.contexts.values()):
                await self._drop(c)
            for w in list(self.writers):  # the final messages of cancelled contexts not yet sent
                w.cancel()
            await close_quietly(self.ws, code, reason)

    async def _loop(self) -> tuple[int, str]:
        """Read, write and keep time until the session ends without an error: its close code and reason."""
        code, reason = CLOSE_NORMAL, ""
        last_message = time.monotonic()
        while True:
            self.caller.check_deadline()
            for w in [w for w in self.writers if w.done()]:
                self.writers.discard(w)
                w.result()  # SessionEnd on backpressure, a send to a client that went away
            if not self.drained and self.drain.may_close(self.closing, [c.stream for c in self.contexts.values()]):
                self.drained, code, reason = True, CLOSE_RESTART, "the server is restarting"
                for c in self.contexts.values():
                    c.stream.feed.end()
            if (self.closing or self.drained) and not self.contexts and not self.writers:
                return self.quota.ending(code, reason)
            if self._receiving is None:
                self._receiving = asyncio.ensure_future(self.ws.receive())
            idle_timeout = self.protocol.idle_timeout
            dues = [d for c in self.contexts.values() if (d := c.stream.feed.due_in()) is not None]
            idle_left = idle_timeout - (time.monotonic() - last_message)
            timeout = max(0.0, min([*dues, idle_left, *self.caller.time_left(), *self.drain.poll()]))
            waits = {self._receiving, *self.writers, *self.drain.wakers()}
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if self._receiving in done:
                message, self._receiving = self._receiving.result(), None
                last_message = time.monotonic()
                if not await self._receive(message):
                    return code, reason  # the client went away
                continue
            for c in self.contexts.values():
                c.stream.feed.tick()
            idle = all(c.stream.idle for c in self.contexts.values())
            if not done and time.monotonic() - last_message >= idle_timeout and idle:
                error = self.protocol.idle_error()
                if error is not None:
                    raise SessionEnd(error)
                logger.info("%s: inactive for %g s; closing", self.session_id, idle_timeout)
                return code, reason

    # -- client messages --------------------------------------------------------------------------
    async def _receive(self, message: dict) -> bool:
        """One client message, its commands applied in order; False when the client disconnected."""
        context: str | None = None
        check_size(message, self.max_message_bytes)
        try:
            obj = receive_json(message)
            if obj is None:
                return False
            context = self.protocol.context_of(obj)
            async for command in self.protocol.parse(obj, self.contexts.keys(), closing=self.closing):
                await self._take(command)
        except SessionEnd:
            raise
        except TTSError as exc:
            if self.protocol.awaiting_config or not isinstance(exc, InvalidRequestError):
                raise SessionEnd(exc) from None
            await self.sender.send(self.protocol.render(Rejected(exc, context)))
        return True

    async def _take(self, command: Command) -> None:
        """A command admitted against the caller's limits (app/api/socket_limits.py), then applied; after a
        refusal, no new context or text."""
        if not self.quota.taken(command):
            return
        try:
            lease = await self.quota.admit(command, self.caller.principal)
        except OverloadedError as exc:  # said now; what was accepted is still spoken, then 1013
            self.closing = True
            self.quota.refuse(exc, [c.stream for c in self.contexts.values()], self.session_id)
            await self.sender.send(self.protocol.render(Rejected(exc, getattr(command, "context", None))))
            return
        try:
            self._apply(command, lease)
        except BaseException:
            lease.release()
            raise

    def _apply(self, command: Command, lease: Lease = NO_LEASE) -> None:
        if isinstance(command, Auth):
            if not self.caller.authorized:
                principal = self.caller.authenticate(command.key)
                logger.info("%s authorized: key=%s", self.session_id, principal.key_id)
            return
        if not self.caller.authorized:
            raise SessionEnd(AuthenticationError(self.protocol.missing_key))
        if isinstance(command, Open):
            self._open(command, lease)
        elif isinstance(command, Text):
            self.contexts[command.context].push(command.text, self.pending_text_limit)
        elif isinstance(command, Flush):
            self.contexts[command.context].stream.feed.flush()
        elif isinstance(command, EndContext):
            if command.context in self.contexts:
                self.contexts[command.context].stream.feed.end()
        elif isinstance(command, CancelContext):
            if command.context in self.contexts:
                self._cancel(self.contexts.pop(command.context))
        elif isinstance(command, CloseSocket):
            self.closing = True
            for c in self.contexts.values():
                c.stream.feed.end()
        elif not isinstance(command, KeepAlive):
            raise TypeError(f"unknown command {command!r}")

    def _open(self, spec: Open, lease: Lease) -> None:
        check_room(self.drain, len(self.contexts), self.max_contexts)
        ctx = Context.open(self.service, spec, lease)
        self.contexts[ctx.cid] = ctx
        logger.info("%s %s voice=%s format=%s rate=%d encoding=%s speed=%g context=%s", self.session_id, clip(ctx.cid),
                    clip(spec.voice.name), spec.output.format, ctx.out.rate, ctx.out.encoding.name, spec.output.speed,
                    spec.use_context)  # fmt: skip
        ctx.writer = asyncio.create_task(self._write(ctx), name=f"{self.session_id}-{ctx.cid}")
        ctx.writer.add_done_callback(lambda _: ctx.lease.release())  # however it ends, even before it starts
        self.writers.add(ctx.writer)

    # -- output -----------------------------------------------------------------------------------
    async def _write(self, ctx: Context) -> None:
        """A context's events as messages, in order, then its final message."""
        render = self.protocol.render

        async def send(message: dict | bytes | None) -> None:
            await self.sender.send(message, lambda: not ctx.cancelled)

        pieces = self.service.renderer.pieces(ctx.stream, ctx.out, timed=self.protocol.timings)
        try:
            await send(render(ContextStarted(self.session_id, ctx.cid, ctx.stream, ctx.out.rate)))
            async for piece in pieces:
                ev = piece.event
                if ev is None or ev.kind in ("audio", "pause"):  # the audio as it comes; None: the encoder's tail
                    await self._audio(ctx, piece.data, ev.index if ev is not None else None)
                    continue
                if piece.timings is not None:
                    await send(render(Timings(ctx.cid, ev.index, ev.text, piece.timings)))
                if ev.kind == "error":
                    logger.warning("%s %s segment %d failed: %s", self.session_id, ctx.cid, ev.index, ev.error.message)
                await send(render(Segment(ctx.cid, ev)))
            await ctx.lease.end()  # before its last message: the client's next context finds the stream free
            await send(render(ContextFinal(ctx.cid, ctx.stream.usage)))
            logger.info("%s %s done: %s", self.session_id, ctx.cid, ctx.stream.usage.as_dict())
        finally:
            await pieces.aclose()
            ctx.out.close()
            if self.contexts.get(ctx.cid) is ctx:
                del self.contexts[ctx.cid]

    async def _audio(self, ctx: Context, data: bytes, index: int | None) -> None:
        if data:
            await self.sender.send(self.protocol.render(Audio(ctx.cid, data, index)), lambda: not ctx.cancelled)

    def _cancel(self, ctx: Context) -> None:
        """Stop a context at once (its backend request is closed); its final message follows."""
        ctx.cancelled = True
        ctx.stream.feed.end()
        writer = ctx.writer
        if writer is not None:
            self.writers.discard(writer)
            writer.cancel()
        logger.info("%s %s cancelled", self.session_id, ctx.cid)
        final = asyncio.create_task(self._cancelled(ctx, writer), name=f"{self.session_id}-{ctx.cid}-cancelled")
        self.writers.add(final)

    async def _cancelled(self, ctx: Context, writer: asyncio.Task | None) -> None:
        if writer is not None:
            await asyncio.wait((writer,))  # its clean-up (the backend request closed) is done
            if not writer.cancelled() and writer.exception() is not None:
                logger.info("%s %s ended before its cancel: %s", self.session_id, ctx.cid, writer.exception())
        await ctx.lease.end()
        await self.sender.send(self.protocol.render(ContextFinal(ctx.cid, ctx.stream.usage)))

    async def _drop(self, ctx: Context) -> None:
        """Cancel a context's synthesis (its backend request is closed at once)."""
        if ctx.writer is not None and not ctx.writer.done():
            ctx.writer.cancel()
            with contextlib.suppress(BaseException):
                await ctx.writer
        self.contexts.pop(ctx.cid, None)
