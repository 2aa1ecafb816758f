"""A front-end's drain on SIGTERM, so that a deploy drops no call (issue 32, item 2).

The app takes SIGTERM before uvicorn does (`take_sigterm`, installed by the lifespan):
1. `/ready` says 503 at once, so that the load balancer stops sending here, and all else is served as before
   for `DRAIN_GRACE_SECONDS` (requests already on their way still arrive);
2. then new work is refused (`DrainGuard`): an HTTP request or a WebSocket handshake gets 503 `shutting_down`
   with `Retry-After`; each WebSocket session ends its socket with 1012 once its current contexts are done
   (`quiet`, asked by app/api/session.py), at once when none is in flight;
   a socket is done when its connection has ended: the client's reply to its close frame (bounded by uvicorn's
   close timer, `CLOSE_LINGER` at most), so that no client loses the last frames it has not read yet
   (app/api/ws_protocol.py);
3. when no request and no socket is left, or `SHUTDOWN_GRACE_SECONDS` after the signal, the signal goes on to
   uvicorn's handler: uvicorn closes what is left and runs the lifespan's shutdown, which stops the engine.
Under `API_WORKERS` uvicorn's supervisor sends SIGTERM to every worker and waits for each: each drains so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from enum import Enum
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from app.api.errors import error_body
from app.api.ws_protocol import CONNECTION_CLOSED

logger = logging.getLogger(__name__)

CLOSE_RESTART = 1012  # WebSocket "service restart": the client may reconnect at once (to another replica)
RETRY_AFTER = 1  # seconds: another replica takes the request; this one will not
PROBES = ("/health", "/ready", "/metrics")  # answered as ever, and not counted as work in flight
POLL = 0.05  # seconds between looks at what is left while refusing
CLOSE_LINGER = 11.0  # seconds a socket closed by the app waits for its client's reply (uvicorn's timer: 10)


class Phase(Enum):
    SERVING = "serving"
    DRAINING = "draining"  # not ready, still serving
    REFUSING = "refusing"  # new work refused; in-flight work finishing
    DONE = "done"  # drained or past the deadline; uvicorn has the signal


class Drain:
    """The drain's phase and the work in flight (HTTP requests and open WebSockets, counted by `DrainGuard`)."""

    def __init__(self, grace: float, deadline: float) -> None:
        self.grace = min(grace, deadline)  # seconds of DRAINING
        self.deadline = deadline  # seconds from the signal until uvicorn gets it, whatever is left
        self.phase = Phase.SERVING
        self.in_flight = 0
        self._refusing: asyncio.Future[None] | None = None
        self._task: asyncio.Task | None = None

    @property
    def ready(self) -> bool:
        return self.phase is Phase.SERVING

    @property
    def refusing(self) -> bool:
        return self.phase in (Phase.REFUSING, Phase.DONE)

    def wakers(self) -> list[asyncio.Future[None]]:
        """What a WebSocket session waits on besides its socket: the start of the refusal, until it comes."""
        if self.refusing:
            return []
        if self._refusing is None:
            self._refusing = asyncio.get_running_loop().create_future()
        return [self._refusing]

    def poll(self) -> list[float]:
        """The longest a session may sleep before it looks again whether its contexts are done."""
        return [POLL] if self.refusing else []

    def may_close(self, closing: bool, streams: list[Any]) -> bool:
        """Whether a WebSocket session ends its socket now (1012, its quiet contexts ended first): new work is
        refused, the client has not closed it itself, and none of its contexts has anything in flight."""
        return self.refusing and not closing and all(quiet(s) for s in streams)

    def start(self, then: Callable[[], None]) -> None:
        """Begin draining (a second signal changes nothing); `then()` when drained or at the deadline."""
        if self.phase is not Phase.SERVING:
            logger.info("SIGTERM again while draining; the drain goes on (%d in flight)", self.in_flight)
            return
        self._task = asyncio.get_running_loop().create_task(self._run(then), name="drain")

    async def _run(self, then: Callable[[], None]) -> None:
        t0 = time.monotonic()
        self.phase = Phase.DRAINING
        logger.info("SIGTERM: /ready says 503; serving %g s more, then draining for up to %g s",
                    self.grace, self.deadline - self.grace)  # fmt: skip
        try:
            await asyncio.sleep(self.grace)
            self.phase = Phase.REFUSING
            if self._refusing is not None and not self._refusing.done():
                self._refusing.set_result(None)
            while self.in_flight and time.monotonic() - t0 < self.deadline:
                await asyncio.sleep(POLL)
            if self.in_flight:
                logger.warning("drain deadline (%g s) reached with %d requests or sockets open; they are cut",
                               self.deadline, self.in_flight)  # fmt: skip
            else:
                logger.info("drained in %.1f s", time.monotonic() - t0)
        finally:
            self.phase = Phase.DONE
        then()


def quiet(stream: Any) -> bool:
    """A WebSocket context with nothing in flight: every text it received is spoken (`SegmentStream`)."""
    return stream.idle and stream.feed.pending_chars == 0


def shutting_down(message: str) -> JSONResponse:
    """503 `shutting_down` in OpenAI's error shape, with `Retry-After`; the connection is closed after it."""
    headers = {"Retry-After": str(RETRY_AFTER), "Connection": "close"}
    return JSONResponse(error_body(message, "api_error", None, "shutting_down"), status_code=503, headers=headers)


class DrainGuard:
    """ASGI middleware: counts the requests and sockets in flight for the drain, answers `/ready` 503 from the
    signal on, and refuses new work once the drain refuses it."""

    def __init__(self, app: ASGIApp, drain: Drain) -> None:
        self.app = app
        self.drain = drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if kind == "http" and scope["path"] in PROBES:
            if scope["path"] == "/ready" and not self.drain.ready:
                await shutting_down("the server is shutting down")(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self.drain.refusing:
            await self._refuse(scope, receive, send)
            return
        self.drain.in_flight += 1
        closing = False

        async def watched_send(message: Message) -> None:
            nonlocal closing
            closing = closing or message["type"] == "websocket.close"
            await send(message)

        try:
            await self.app(scope, receive, watched_send if kind == "websocket" else send)
        finally:
            closed = scope.get("extensions", {}).get(CONNECTION_CLOSED)
            if closing and closed is not None:  # its close frame is out: done when the client has answered it
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(closed), CLOSE_LINGER)
            self.drain.in_flight -= 1

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = shutting_down("the server is restarting; retry (another replica will answer)")
        if scope["type"] == "http":
            await response(scope, receive, send)
            return
        ws = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await ws.send_denial_response(response)
        else:  # a server without the denial extension: accept, then close at once
            await ws.accept()
            await ws.close(CLOSE_RESTART, "the server is restarting")


def take_sigterm(drain: Drain) -> Callable[[], None]:
    """Make SIGTERM start `drain`, then go on to the handler it had before (uvicorn's, which stops the server).
    Returns the function that puts that handler back. Signals are the main thread's: elsewhere (an app served
    in a thread) nothing is taken."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGTERM)
    if previous is None:  # a handler not set from Python: put the default back after the drain
        previous = signal.SIG_DFL

    def restore() -> None:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, previous)

    def pass_on() -> None:
        restore()
        signal.raise_signal(signal.SIGTERM)

    def on_sigterm(sig: int, frame: object) -> None:
        loop.call_soon_threadsafe(drain.start, pass_on)

    signal.signal(signal.SIGTERM, on_sigterm)
    return restore
