"""The request-id edge: every HTTP request and WebSocket gets its `RequestTrace` (app/observability/tracing.py)
from the client's `X-Request-Id` and `traceparent` (or new ones), bound for the whole request; the response
carries both back (HTTP headers; a WebSocket's in its handshake response). With tracing on, the request is a
server span, and the time to its first byte a span of its own."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import tracing

REQUEST_ID = "X-Request-Id"
TRACEPARENT = "traceparent"


class RequestIdentity:
    """ASGI middleware: binds the request's `RequestTrace`, returns `X-Request-Id` and `traceparent`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        trace = tracing.RequestTrace.from_headers(headers.get(REQUEST_ID), headers.get(TRACEPARENT))
        method = scope.get("method", "WS")  # the span's name gets the route's template once routed
        tracing.start_request_span(trace, method, {"url.path": scope.get("path", "")})
        token = tracing.bind(trace)
        status: int | None = None
        first_byte = True

        async def send_identified(message: Message) -> None:
            nonlocal status, first_byte
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                out = MutableHeaders(scope=message)
                out[REQUEST_ID] = trace.request_id
                out[TRACEPARENT] = trace.traceparent
            elif kind == "websocket.accept":
                message = {**message, "headers": [*message.get("headers", []), *_raw(trace)]}
            elif first_byte and (kind == "websocket.send" or (kind == "http.response.body" and message.get("body"))):
                first_byte = False
                tracing.mark("tts.first_byte", trace.started)
            await send(message)

        try:
            await self.app(scope, receive, send_identified)
        finally:
            tracing.unbind(token)
            route = getattr(scope.get("route"), "path", None)  # set by the router, in this same scope
            tracing.end_request_span(trace, status, f"{method} {route}" if route else None)


def _raw(trace: tracing.RequestTrace) -> list[tuple[bytes, bytes]]:
    return [(b"x-request-id", trace.request_id.encode()), (b"traceparent", trace.traceparent.encode())]
