"""The API key: where clients send it (HTTP headers, WebSocket headers, WebSocket messages) and how it is checked."""

from __future__ import annotations

import hmac
from collections.abc import Mapping


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


def key_ok(expected: str, given: str | None) -> bool:
    """True when no key is configured (`expected` empty) or `given` is it; compared in constant time."""
    return not expected or (given is not None and hmac.compare_digest(given.encode(), expected.encode()))
