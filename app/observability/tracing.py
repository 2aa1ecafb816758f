"""Follow one call: its request id and W3C trace context, carried from the client to our logs, to vLLM and back,
and OpenTelemetry spans of its stages when an OTLP endpoint is configured.

A request's identity (`RequestTrace`) lives in a context variable set by `app.api.request_id.RequestIdentity` for
each HTTP request and WebSocket: the tasks a request starts inherit it. The request id is the client's
`X-Request-Id` when it is safe to log (`valid_request_id`), else one of ours; the trace id is the client's
`traceparent`'s (parsed per W3C Trace Context level 1) when valid, else a new trace. With tracing off (no
`OTEL_EXPORTER_OTLP_ENDPOINT`), OpenTelemetry is never imported and every span call is a no-op.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.settings import ObservabilitySettings

logger = logging.getLogger(__name__)

# A client's X-Request-Id is used only when it is this: no spaces, quotes or controls, at most 128 characters.
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
SERVICE_NAME = "tts-api"


def valid_request_id(value: str | None) -> str | None:
    """`value` if it is a safe request id (letters, digits, `._:/+=@-`, 1-128 characters), else None."""
    return value if value is not None and _SAFE_ID.fullmatch(value) else None


def parse_traceparent(value: str | None) -> tuple[str, str, int] | None:
    """(trace id, parent span id, flags) of a W3C `traceparent`, or None where the spec says to ignore it:
    a malformed header, version ff, an all-zero trace or span id; version 00 must be exactly 55 characters, a
    later version may carry more fields after a `-`."""
    if value is None:
        return None
    value = value.strip()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if len(value) != 55 and (version == "00" or value[55] != "-"):
        return None
    return trace_id, span_id, int(flags, 16)


def new_request_id() -> str:
    return f"tts-{uuid.uuid4().hex[:16]}"


@dataclass
class RequestTrace:
    """One request's identity: its id (the client's or ours), its trace, and the span our server stands for."""

    request_id: str
    trace_id: str
    span_id: str  # our server span: the parent of what we send to vLLM
    sampled: bool = True
    client_id: bool = False  # the request id is the client's X-Request-Id
    parent_id: str | None = None  # the span id of the client's traceparent
    started: float = field(default_factory=time.perf_counter)
    span: Any = None  # the OpenTelemetry server span, when tracing is on

    @property
    def traceparent(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    @classmethod
    def from_headers(cls, request_id: str | None, traceparent: str | None) -> RequestTrace:
        rid = valid_request_id(request_id)
        parent = parse_traceparent(traceparent)
        trace_id, sampled = (parent[0], bool(parent[2] & 1)) if parent else (secrets.token_hex(16), True)
        return cls(
            rid or new_request_id(),
            trace_id,
            secrets.token_hex(8),
            sampled,
            client_id=rid is not None,
            parent_id=parent[1] if parent else None,
        )


_current: ContextVar[RequestTrace | None] = ContextVar("tts_request_trace", default=None)
# the backend request of this task (a segment's vLLM request): its id, and how many attempts it has made


def current() -> RequestTrace | None:
    return _current.get()


def bind(trace: RequestTrace | None) -> Any:
    """Make `trace` the current request's; returns the token for `unbind`."""
    return _current.set(trace)


def unbind(token: Any) -> None:
    _current.reset(token)


def request_id() -> str:
    """The current request's id (the client's X-Request-Id when it sent a safe one); a new id outside a request."""
    trace = _current.get()
    return trace.request_id if trace is not None else new_request_id()


def job_request_id() -> str:
    """A new id for one generation job of the current request: the request's id with a suffix of its own."""
    trace = _current.get()
    return f"{trace.request_id}-{uuid.uuid4().hex[:8]}" if trace is not None else new_request_id()


def trace_headers() -> dict[str, str]:
    """`traceparent` for a request to vLLM (our trace, our server span the parent); none outside a request. Its
    `X-Request-Id` is the job's, unique per attempt (app.backend.pool: `-rN` for the Nth resend)."""
    trace = _current.get()
    return {"traceparent": trace.traceparent} if trace is not None else {}


# -- OpenTelemetry, only when configured ------------------------------------------------------------------

_tracer: Any = None  # an opentelemetry Tracer while tracing is on
_provider: Any = None


def enabled() -> bool:
    return _tracer is not None


def configure_tracing(settings: ObservabilitySettings) -> bool:
    """Start exporting spans over OTLP/HTTP to `settings.otlp_endpoint` (`/v1/traces` appended, as the OTLP
    specification says for the generic endpoint); nothing (and no import) when it is empty. True when on."""
    global _tracer, _provider
    endpoint = settings.otlp_endpoint.strip()
    if not endpoint or _tracer is not None:
        return _tracer is not None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTELResourceDetector, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:  # a fatal start-up error that says what to install
        raise RuntimeError(
            f"OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed ({exc}): "
            "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http"
        ) from exc

    resource = Resource.create({"service.name": SERVICE_NAME}).merge(OTELResourceDetector().detect())
    _provider = TracerProvider(resource=resource)
    url = endpoint.rstrip("/") + "/v1/traces"
    _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    _tracer = _provider.get_tracer("app.observability.tracing")
    logger.info("OpenTelemetry spans go to %s", url)
    return True


def shutdown_tracing() -> None:
    """Export what is left and stop (the lifespan's end)."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def start_request_span(trace: RequestTrace, name: str, attributes: dict[str, Any]) -> None:
    """Open the server span of `trace` (a child of the client's traceparent, or a new root with `trace`'s trace
    id), so that its spans and what we send to vLLM carry the trace on."""
    if _tracer is None:
        return
    from opentelemetry import trace as otel
    from opentelemetry.context import Context
    from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

    context = Context()  # no traceparent: a new root span, whose trace id becomes the request's
    if trace.parent_id is not None:
        flags = TraceFlags(TraceFlags.SAMPLED if trace.sampled else TraceFlags.DEFAULT)
        parent = SpanContext(int(trace.trace_id, 16), int(trace.parent_id, 16), is_remote=True, trace_flags=flags)
        context = otel.set_span_in_context(NonRecordingSpan(parent))
    span = _tracer.start_span(
        name, context=context, kind=SpanKind.SERVER, attributes=attributes, start_time=_epoch_ns(trace.started)
    )
    span_context = span.get_span_context()
    trace.trace_id = format(span_context.trace_id, "032x")
    trace.span = span
    trace.span_id = format(span_context.span_id, "016x")


def end_request_span(trace: RequestTrace, status: int | None, name: str | None = None) -> None:
    """End the server span; `name`: the method and the route's template (`POST /v1/audio/speech`), as
    OpenTelemetry's HTTP conventions name it (a path with its parameters would make a name per voice)."""
    if trace.span is not None:
        if status is not None:
            trace.span.set_attribute("http.response.status_code", status)
        if name is not None:
            trace.span.update_name(name)
            trace.span.set_attribute("http.route", name.partition(" ")[2])
        trace.span.end()


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[None]:
    """A span of the current request around a block; a no-op when tracing is off or outside a request."""
    trace = _current.get()
    if _tracer is None or trace is None or trace.span is None:
        yield
        return
    from opentelemetry import trace as otel

    with _tracer.start_as_current_span(name, context=otel.set_span_in_context(trace.span), attributes=attributes):
        yield


def mark(name: str, since: float, **attributes: Any) -> None:
    """A finished span of the current request from `since` (a `time.perf_counter()` value) until now: a stage's
    wait, such as the backend's first token."""
    trace = _current.get()
    if _tracer is None or trace is None or trace.span is None:
        return
    from opentelemetry import trace as otel

    s = _tracer.start_span(
        name, context=otel.set_span_in_context(trace.span), attributes=attributes, start_time=_epoch_ns(since)
    )
    s.end()


def _epoch_ns(perf: float) -> int:
    """A `time.perf_counter()` reading as nanoseconds since the epoch (what OpenTelemetry's times are)."""
    return time.time_ns() - int((time.perf_counter() - perf) * 1e9)
