"""The API key: where clients send it (HTTP headers, WebSocket headers, WebSocket messages) and how it is checked.

On HTTP the key is checked by `KeyGuard`, an ASGI middleware, before a route runs and so before its body is
read (FastAPI parses a JSON body before the route's dependencies run); WebSockets check it at the handshake
(app/api/session.py) or, for a key sent in a message, within `STREAM_AUTH_TIMEOUT` seconds of the accept.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.errors import error_response
from app.errors import AuthenticationError
from app.settings import SecuritySettings

MAX_KEY_CHARS = 1024  # a longer key is wrong without being compared
ELEVENLABS_PREFIX = "/v1/text-to-speech/"  # its clients send the key as `xi-api-key`
MISSING_HTTP_KEY = "missing or invalid API key: send 'Authorization: Bearer <key>'"
MISSING_ELEVENLABS_KEY = "missing or invalid API key: send the xi-api-key header"


def bearer(value: object) -> str | None:
    """The key in `Bearer <key>`; None for another scheme, no key, or a value that is not text."""
    if not isinstance(value, str):
        return None
    scheme, _, key = value.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and key else None


def header_key(headers: Mapping[str, str], *names: str) -> str | None:
    """The key in `Authorization: Bearer <key>`, else in the first present header of `names` (e.g. xi-api-key)."""
    key = bearer(headers.get("authorization"))
    if key is not None:
        return key
    for name in names:
        if headers.get(name):
            return headers[name].strip()
    return None


def message_key(message: Mapping[str, object], *names: str) -> str | None:
    """The key a WebSocket message carries: a text field of `names` (e.g. xi_api_key), else
    `"authorization": "Bearer <key>"`."""
    for name in names:
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return bearer(message.get("authorization"))


def key_ok(expected: str, given: object) -> bool:
    """True when no key is configured (`expected` empty) or `given` is it; compared in constant time.
    Never raises: any text (non-ASCII, lone surrogates, a megabyte) or non-text is simply not the key."""
    if not expected:
        return True
    if not isinstance(given, str) or not given or len(given) > MAX_KEY_CHARS:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


class KeyGuard:
    """Answers 401 to an HTTP request under `/v1/` without the key (when one is set) before the app sees the
    request: its body is never read. (The docs and `/metrics`, bodiless GETs, keep their dependencies.)"""

    def __init__(self, app: ASGIApp, security: SecuritySettings) -> None:
        self.app = app
        self.security = security

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        expected = self.security.api_key
        if (
            scope["type"] == "http"
            and expected
            and (scope["path"] + "/").startswith("/v1/")
            and not key_ok(expected, self._presented(scope))
        ):
            message = MISSING_ELEVENLABS_KEY if scope["path"].startswith(ELEVENLABS_PREFIX) else MISSING_HTTP_KEY
            await error_response(AuthenticationError(message))(scope, receive, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _presented(scope: Scope) -> str | None:
        """`Authorization: Bearer`, or ElevenLabs' own `xi-api-key` header on its routes (`/v1/text-to-speech/`)."""
        headers = Headers(scope=scope)
        if scope["path"].startswith(ELEVENLABS_PREFIX):
            return header_key(headers, "xi-api-key")
        return bearer(headers.get("authorization"))
