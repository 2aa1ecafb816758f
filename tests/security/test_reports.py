"""Error reports without secrets or customer text (issue 24): the real Sentry SDK, its DSN pointing at a local
HTTP sink (real sockets), the service in its own process. A server error arrives, scrubbed; a client's mistakes
(refused handshakes, bad keys, 4xx) do not arrive at all."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import websockets

from tools.fake_vllm import FakeVLLM

REPO = Path(__file__).resolve().parents[2]
API_KEY = "sk-report-client-31415"
VLLM_KEY = "sk-report-vllm-27182"
CUSTOMER_TEXT = "my card number is 4111-1111-1111-1111"
QUERY_KEY = "sk-report-query-16180"

SERVICE = """
import os, sys
from app.main import Components
from app.settings import Settings
from tools.harness import LocalCodec, serve

class Normalizer:
    def normalize(self, text, malaysian=True, language="auto"):
        if "card number" in text:
            raise RuntimeError("the normalizer broke")
        return text

settings = Settings(
    _env_file=None,
    tts_api=os.environ["T_TTS_API"],
    api_key=os.environ["T_API_KEY"],
    tts_api_key=os.environ["T_VLLM_KEY"],
    sentry_dsn=os.environ["T_DSN"],
    stream_auth_timeout=1.0,
)
with serve(settings, Components(codec=LocalCodec(), normalizer=Normalizer())) as url:
    print(url, flush=True)
    sys.stdin.read()  # until the test is done
import sentry_sdk
sentry_sdk.flush(10)
"""


class Sink(ThreadingHTTPServer):
    """Sentry's ingestion endpoint, as far as the SDK can tell: keeps every envelope, decompressed."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SinkHandler)
        self.envelopes: list[bytes] = []


class SinkHandler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        encoding = self.headers.get("content-encoding", "")
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        elif encoding == "br":
            import brotli

            body = brotli.decompress(body)
        self.server.envelopes.append(body)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def events(envelopes: list[bytes]) -> list[dict]:
    """The error events of the envelopes (an envelope: a header line, then item header / payload lines)."""
    found = []
    for envelope in envelopes:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                found.append(json.loads(payload))
    return found


async def client_mistakes(url: str) -> None:
    ws = url.replace("http://", "ws://")
    multi = f"{ws}/v1/text-to-speech/husein/multi-stream-input?output_format=pcm_16000"
    with pytest.raises(websockets.InvalidStatus):  # refused at the handshake
        await websockets.connect(multi, additional_headers={"xi-api-key": "wrong"})
    for message in ({"text": " ", "xi_api_key": "\ud800"}, {"text": " ", "xi_api_key": "wrong"}):
        async with websockets.connect(multi) as sock:
            await sock.send(json.dumps(message))
            with pytest.raises(websockets.ConnectionClosed):
                async with asyncio.timeout(10):
                    while True:
                        await sock.recv()
    async with websockets.connect(f"{ws}/v1/audio/speech/stream") as sock:  # silent: closed after 1 s
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    await sock.recv()


def test_reports_carry_no_secret_and_no_customer_text(sink: Sink, tmp_path: Path) -> None:
    with FakeVLLM(n_tokens=20, rate=0, api_key=VLLM_KEY) as fake:
        dsn = f"http://publickey@127.0.0.1:{sink.server_address[1]}/1"
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(REPO),
            "HOME": str(tmp_path),
            "T_TTS_API": fake.url,
            "T_API_KEY": API_KEY,
            "T_VLLM_KEY": VLLM_KEY,
            "T_DSN": dsn,
        }
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVICE], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            url = proc.stdout.readline().strip()
            assert url.startswith("http://"), proc.stderr.read()
            keyed = {"authorization": f"Bearer {API_KEY}", "cookie": f"session={API_KEY}"}
            # what clients do wrong: none of it is an error to report
            assert httpx.post(f"{url}/v1/audio/speech", json={"input": CUSTOMER_TEXT}).status_code == 401
            assert httpx.post(f"{url}/v1/audio/speech", headers={"authorization": b"Bearer \xe9\xff"}).status_code == 401
            assert httpx.post(f"{url}/v1/audio/speech", json={"input": ""}, headers=keyed).status_code == 400
            assert httpx.get(f"{url}/nowhere").status_code == 404
            asyncio.run(client_mistakes(url))
            # a server error, with the customer's text in the body and locals, the key in headers and query
            r = httpx.post(
                f"{url}/v1/audio/speech?api_key={QUERY_KEY}", json={"input": CUSTOMER_TEXT}, headers=keyed, timeout=30
            )
            assert r.status_code == 500
            assert httpx.post(f"{url}/v1/audio/speech", json={"input": "fine"}, headers=keyed).status_code == 200
        finally:
            out, err = proc.communicate("", timeout=60)
    assert proc.returncode == 0, err
    received = b"\n".join(sink.envelopes)
    reported = events(sink.envelopes)
    assert reported, f"no event reached the sink: {err[-2000:]}"
    for secret in (API_KEY, VLLM_KEY, QUERY_KEY, CUSTOMER_TEXT, "4111"):
        assert secret.encode() not in received, f"{secret!r} reached the error tracker"
    for event in reported:  # the one server error only: no refused key, handshake, 4xx
        assert "the normalizer broke" in json.dumps(event), json.dumps(event)[:2000]
        for frame in (f for v in event.get("exception", {}).get("values", []) for f in v["stacktrace"]["frames"]):
            assert "vars" not in frame, "local variables were sent"
        request = event.get("request", {})
        assert "data" not in request and "query_string" not in request and "cookies" not in request
        headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
        assert headers.get("authorization") in (None, "[Filtered]")
