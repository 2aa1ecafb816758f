"""Limits applied before the app sees a request: the body size (an ASGI middleware) and the request head's
size and read time (uvicorn's httptools protocol, guarded).

uvicorn caps neither how long a client may take to send its headers nor, with httptools, how large they may be:
a slow or huge request head would hold a connection, and its buffer, for as long as the client likes.
"""

from __future__ import annotations

import asyncio
import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from app.api.errors import error_body, error_response
from app.errors import PayloadTooLargeError
from app.settings import ServerSettings

MULTIPART_SLACK = 128 * 1024  # above the upload's own limit (app/api/uploads.py), which answers first
# A request scope's `extensions` entry: a callable that drops the connection at once, its unsent bytes discarded
# (`transport.abort()`). A plain close would wait for a client that does not read to take them first.
ABORT_CONNECTION = "tts.abort_connection"


class BodySizeLimit:
    """A request body over its limit is a 413 in OpenAI's error shape, as soon as it is announced
    (`Content-Length`) or as soon as its bytes arrive: never buffered whole, never parsed.

    Multipart bodies (uploads) may be `max_multipart_bytes`; every other body `max_bytes`. Once over, the app
    sees the client as gone (`http.disconnect`) and whatever it then sends is dropped; an upload's app sees the
    message that went over first, so that its own limit answers.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_multipart_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_multipart_bytes = max_multipart_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        limit = self.max_multipart_bytes if multipart else self.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await error_response(_too_large(f"{int(declared)} bytes", limit))(scope, receive, send)
            return
        received = 0
        started = refused = over = False

        async def limited_receive() -> Message:
            nonlocal received, refused, over
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and multipart and not over:
                    over = True  # the upload's own, lower limit sees this message and answers (app/api/uploads.py)
                elif received > limit:
                    if not started:
                        await error_response(_too_large(f"over {received} bytes", limit))(scope, receive, send)
                    refused = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 has been answered
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, tracking_send)


def _too_large(size: str, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the request body is {size}; the limit is {limit} bytes (MAX_BODY_BYTES)")


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for the request head (408) and a cap on its bytes (431).

    The deadline runs from the connection's start, and from the first byte of each next request on a
    keep-alive connection, to the end of the headers; idle keep-alive time is uvicorn's `timeout_keep_alive`.
    `configured(server)` is a subclass with a server's limits; uvicorn's worker processes import this class by
    name instead, and `configure` it with their settings. Each request's scope carries `ABORT_CONNECTION` in its
    `extensions`, so that a stream whose client stopped reading can drop the connection (app/api/audio_response.py).
    """

    header_timeout = 10.0
    max_head_bytes = 64 * 1024

    @classmethod
    def configured(cls, server: ServerSettings) -> type[GuardedHttpToolsProtocol]:
        limits = {"header_timeout": server.header_timeout, "max_head_bytes": server.max_header_bytes}
        return type(cls.__name__, (cls,), limits)

    @classmethod
    def configure(cls, server: ServerSettings) -> None:
        cls.header_timeout = server.header_timeout
        cls.max_head_bytes = server.max_header_bytes

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._head_timer is not None and self._head_bytes > self.max_head_bytes:
            self._refuse(431, f"the request line and headers are over {self.max_head_bytes} bytes", "headers_too_large")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        extensions = {**self.scope.get("extensions", {}), ABORT_CONNECTION: self.transport.abort}  # uvicorn's kept
        self.scope["extensions"] = extensions  # type: ignore[typeddict-item]
        if self._head_timer is None:  # the next request on a keep-alive connection
            self._start_head()

    def on_headers_complete(self) -> None:
        self._stop_head()
        super().on_headers_complete()

    def _start_head(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._refuse(408, f"the request headers did not arrive within {self.header_timeout:g} s", "header_timeout")

    def _refuse(self, status: int, message: str, code: str) -> None:
        self._stop_head()
        if self.transport.is_closing():
            return
        body = json.dumps(error_body(message, "invalid_request_error", None, code)).encode()
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: application/json\r\ncontent-length: "
            + str(len(body)).encode()
            + b"\r\nconnection: close\r\n\r\n"
            + body
        )
        self.transport.close()
