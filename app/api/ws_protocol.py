"""uvicorn's WebSocket protocol (Sans-I/O websockets, its default), with each connection's end known to the app.

RFC 6455 (7.1.1): once the server has sent its close frame, it closes the TCP connection after the client's
close reply. uvicorn's protocol does so while it runs (its close timer bounds the wait), but the app returns as
soon as its close frame is out, and uvicorn's `shutdown()` closes every connection left at once, even one whose
client has not answered yet. A client that reads late (a busy box, a proxy between) then still has that socket's
last frames unread; its reply, or its keep-alive ping, meets a closed socket, and the reset that answers it can
lose what it had not read (the chaos run of docs/performance.md section 10b saw a context's audio,
`segment.done` and `done` lost so, after `segment.started`, on a front-end rolled by SIGTERM).

So each connection's end is a future in its scope's `extensions` (`CONNECTION_CLOSED`), which the drain
(app/api/drain.py) waits for before it counts a socket done: uvicorn's shutdown comes after the handshakes.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request

CONNECTION_CLOSED = "tts.connection_closed"  # scope extension: a future done when the TCP connection has ended


class ClosingWebSocketsProtocol(WebSocketsSansIOProtocol):
    """The protocol `tts-api` serves WebSockets with (uvicorn's `ws` option)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.closed: asyncio.Future[None] = self.loop.create_future()
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.closed.done():
            self.closed.set_result(None)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # none when the handshake was refused (no app runs)
        if scope is not None:
            scope["extensions"] = {**scope.get("extensions", {}), CONNECTION_CLOSED: self.closed}  # type: ignore[typeddict-item]
