"""Follow one call (issue 31, item 4): a client's `X-Request-Id` and `traceparent` reach our log line, the request
vLLM receives and the response; invalid ones are replaced by ours; with an OTLP endpoint the request's spans reach a
collector (a real OTLP/HTTP receiver on a loopback port, decoding the protobuf with opentelemetry-proto)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import websockets

from app.main import Components
from app.observability.logs import LOG_FORMAT, RequestContextFilter, SafeFormatter
from app.observability.tracing import parse_traceparent, valid_request_id
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

COLLECTOR_PORT = 9321  # this suite's port (h-gpu's range 9321-9324)
SPEECH = {"input": "Hello there. How are you today?", "voice": "husein", "response_format": "pcm"}
STAGES = {"tts.admission", "tts.normalization", "tts.backend.first_token", "tts.first_decode", "tts.first_byte"}


def traceparent() -> tuple[str, str, str]:
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def components() -> Components:
    return Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())


@pytest.fixture
def app_logs() -> Iterator[list[str]]:
    """The service's log lines as our handler formats them (request id and trace id appended)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(SafeFormatter(LOG_FORMAT))
    handler.addFilter(RequestContextFilter())
    logger = logging.getLogger("app")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def vllm_headers(fake: FakeVLLM) -> list[dict[str, str]]:
    return [{k.lower(): v for k, v in r.headers.items()} for r in fake.requests]


# --- the parsers ---------------------------------------------------------------------------------------


def test_traceparent_is_parsed_as_w3c_says() -> None:
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    assert parse_traceparent(f"00-{tid}-{sid}-01") == (tid, sid, 1)
    assert parse_traceparent(f"00-{tid}-{sid}-00") == (tid, sid, 0)
    assert parse_traceparent(f"01-{tid}-{sid}-01-more") == (tid, sid, 1)  # a later version may add fields
    for bad in (
        f"00-{tid.upper()}-{sid}-01",  # upper case
        f"00-{'0' * 32}-{sid}-01",  # all-zero trace id
        f"00-{tid}-{'0' * 16}-01",  # all-zero parent id
        f"ff-{tid}-{sid}-01",  # version ff is invalid
        f"00-{tid}-{sid}-01-extra",  # version 00 is exactly 55 characters
        f"01-{tid}-{sid}-01x",  # a later version's extra fields follow a dash
        f"00-{tid[:-1]}-{sid}-01",
        "00-xyz",
        "",
        None,
    ):
        assert parse_traceparent(bad) is None, bad


def test_request_ids_are_bounded_and_safe() -> None:
    for good in ("call-42", "6f1c2d1e-6d3b-4c55-9a0e-3a3f3c1b2a10", "a" * 128, "tenant/abc:1=2+3@x.y_z"):
        assert valid_request_id(good) == good
    for bad in ("a" * 129, "", "has space", "new\nline", "quote\"d", "-leading-dash", "ünïcode", None):
        assert valid_request_id(bad) is None, bad


# --- one call through the service --------------------------------------------------------------------------


def test_a_call_keeps_its_request_id_and_trace_in_our_log_vllm_and_the_response(
    fake: FakeVLLM, settings_for: Callable[..., Settings], app_logs: list[str]
) -> None:
    header, trace_id, parent = traceparent()
    long_text = {**SPEECH, "input": "First sentence here. " * 30}  # several segments: several vLLM requests
    with serve(settings_for(stream_segment_max_chars=60), components()) as url:
        r = httpx.post(
            f"{url}/v1/audio/speech", json=long_text, headers={"X-Request-Id": "call-42", "traceparent": header},
            timeout=30,
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "call-42"
    returned = parse_traceparent(r.headers["traceparent"])
    assert returned is not None and returned[0] == trace_id and returned[1] != parent  # our span, their trace
    sent = vllm_headers(fake)
    assert len(sent) >= 2
    ids = [h["x-request-id"] for h in sent]
    assert all(i == "call-42" or i.startswith("call-42-") for i in ids) and len(set(ids)) == len(ids)  # unique
    assert {parse_traceparent(h["traceparent"])[0] for h in sent} == {trace_id}
    assert {r.id for r in fake.requests} == {f"cmpl-{i}" for i in ids}  # vLLM's own request ids
    summary = [line for line in app_logs if "speech tokens" in line and "completed" in line]
    assert summary and f"[request=call-42 trace={trace_id}]" in summary[-1], app_logs


def test_invalid_ids_are_replaced_by_ours(fake: FakeVLLM, app_url: str) -> None:
    header, trace_id, _ = traceparent()
    bad = {"X-Request-Id": "x" * 200, "traceparent": header.upper()}
    r = httpx.post(f"{app_url}/v1/audio/speech", json=SPEECH, headers=bad, timeout=30)
    assert r.status_code == 200
    ours = r.headers["x-request-id"]
    assert ours.startswith("tts-") and valid_request_id(ours)
    new_trace = parse_traceparent(r.headers["traceparent"])
    assert new_trace is not None and new_trace[0] != trace_id  # ignored: a new trace
    (sent,) = vllm_headers(fake)
    assert sent["x-request-id"].startswith(ours)
    assert parse_traceparent(sent["traceparent"])[0] == new_trace[0]


def test_a_refused_request_carries_its_id_too(app_url: str) -> None:
    r = httpx.post(f"{app_url}/v1/audio/speech", json={"voice": "husein"}, headers={"X-Request-Id": "bad-1"})
    assert r.status_code in (400, 422)
    assert r.headers["x-request-id"] == "bad-1" and parse_traceparent(r.headers["traceparent"])


def test_a_websocket_handshake_returns_both(app_url: str) -> None:
    header, trace_id, _ = traceparent()

    async def handshake() -> dict[str, str]:
        url = app_url.replace("http://", "ws://") + "/v1/audio/speech/stream"
        headers = {"X-Request-Id": "ws-call-7", "traceparent": header}
        async with websockets.connect(url, additional_headers=headers) as ws:
            return dict(ws.response.headers)

    got = {k.lower(): v for k, v in asyncio.run(handshake()).items()}
    assert got["x-request-id"] == "ws-call-7"
    assert parse_traceparent(got["traceparent"])[0] == trace_id


# --- spans to an OTLP collector ----------------------------------------------------------------------------


@pytest.fixture
def collector() -> Iterator[list]:
    """A tiny OTLP/HTTP receiver: every span it is sent, decoded with opentelemetry-proto."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
        ExportTraceServiceResponse,
    )

    spans: list = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    spans.extend((resource_spans.resource, s) for s in scope_spans.spans)
            reply = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", COLLECTOR_PORT), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield spans
    server.shutdown()
    server.server_close()


def test_spans_reach_an_otlp_collector_under_the_clients_trace(
    fake: FakeVLLM, settings_for: Callable[..., Settings], collector: list
) -> None:
    header, trace_id, parent = traceparent()
    settings = settings_for(otel_exporter_otlp_endpoint=f"http://127.0.0.1:{COLLECTOR_PORT}")
    with serve(settings, components()) as url:
        r = httpx.post(f"{url}/v1/audio/speech", json=SPEECH, headers={"traceparent": header}, timeout=30)
        assert r.status_code == 200
    # the app has stopped: its spans were flushed at the lifespan's end
    spans = {s.name: s for _, s in collector}
    assert set(spans) >= STAGES, sorted(spans)
    assert {s.trace_id.hex() for _, s in collector} == {trace_id}
    server = spans["POST /v1/audio/speech"]  # the route's template
    assert server.parent_span_id.hex() == parent  # the client's span is our server span's parent
    assert parse_traceparent(r.headers["traceparent"])[1] == server.span_id.hex()
    for name in STAGES:
        assert spans[name].parent_span_id == server.span_id, name
        assert spans[name].end_time_unix_nano >= spans[name].start_time_unix_nano
    # vLLM was told the same trace, under our span
    (sent,) = vllm_headers(fake)
    assert parse_traceparent(sent["traceparent"])[:2] == (trace_id, server.span_id.hex())
    resource = {a.key: a.value.string_value for a in collector[0][0].attributes}
    assert resource["service.name"] == "tts-api"


NO_TRACING = """
import sys
from starlette.testclient import TestClient
from app.main import create_app
from app.settings import Settings
app = create_app(Settings(_env_file=None, tts_api="http://127.0.0.1:9"))
client = TestClient(app)  # no lifespan: nothing loads, the middleware still runs
r = client.get("/health", headers={"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
assert r.headers["traceparent"].split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736", r.headers
loaded = sorted(m for m in sys.modules if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter")))
print("LOADED", loaded)
"""


def test_tracing_off_imports_no_opentelemetry_sdk() -> None:
    proc = subprocess.run([sys.executable, "-c", NO_TRACING], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "LOADED []" in proc.stdout, proc.stdout
