"""Logging set-up for every process of the service (API front-ends and the codec engine).

A client controls some of what is logged (a `model`, a `context_id`, a voice name, a query string): every record's
message has its control characters escaped (no forged lines), `clip()` bounds such a value where it is logged,
and the server's access lines have the values of key-like query parameters redacted.
"""

from __future__ import annotations

import logging
import re
import sys

from app.observability import tracing

# C0/C1 controls, DEL, the line and paragraph separators and the bidi overrides/isolates
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# the value of a query parameter whose name looks like a credential (api_key, xi_api_key, token, auth, ...)
_SECRET_PARAM = re.compile(r"([?&][^=&#\s]*(?:key|token|auth|secret|passw|signature|session)[^=&#\s]*=)[^&#\s]*", re.I)
REDACTED = "***"
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s%(request_context)s"


def escape(text: str) -> str:
    """`text` with its control characters (newlines included) as `\\n`, `\\x1b`, `\\u202e` escapes."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def clip(value: object, limit: int = 80) -> str:
    """A client's value for a log line: escaped, and at most `limit` characters (then `...(+N)`)."""
    text = escape(value if isinstance(value, str) else repr(value))
    return text if len(text) <= limit else f"{text[:limit]}...(+{len(text) - limit})"


def redact_query(text: str) -> str:
    """`text` (a path with its query string) with the values of key-like parameters replaced by `***`."""
    return _SECRET_PARAM.sub(rf"\g<1>{REDACTED}", text)


class SafeFormatter(logging.Formatter):
    """Escapes control characters in the message (a traceback after it keeps its lines)."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape(record.message)
        return super().formatMessage(record)


class RedactQueryFilter(logging.Filter):
    """For uvicorn's access and WebSocket lines: text arguments escaped, key-like query values redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(escape(a)) if isinstance(a, str) else a for a in record.args)
        return True


class RefusedHandshakeFilter(logging.Filter):
    """uvicorn's websockets-sansio logs an ERROR after every handshake refused with an HTTP response (it never
    marks that handshake complete): a refused client is not a server error (nor an error report). INFO instead."""

    MESSAGE = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == self.MESSAGE and record.levelno == logging.ERROR:
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class RequestContextFilter(logging.Filter):
    """Gives every record `request_context`: ` [request=<id> trace=<trace id>]` for a line logged while a request
    is served (app/observability/tracing.py: the client's X-Request-Id and traceparent, or ours), else empty."""

    def filter(self, record: logging.LogRecord) -> bool:
        trace = tracing.current()
        record.request_context = f" [request={trace.request_id} trace={trace.trace_id}]" if trace else ""
        return True


def install_log_filters() -> None:
    """Put `RedactQueryFilter` (and `RefusedHandshakeFilter`) on uvicorn's loggers, once; uvicorn's dictConfig
    keeps a logger's filters."""
    for name, filters in (
        ("uvicorn.access", [RedactQueryFilter]),
        ("uvicorn.error", [RedactQueryFilter, RefusedHandshakeFilter]),
    ):
        logger = logging.getLogger(name)
        for kind in filters:
            if not any(isinstance(f, kind) for f in logger.filters):
                logger.addFilter(kind())


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    handler.addFilter(RequestContextFilter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
    install_log_filters()
