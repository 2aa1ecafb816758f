"""Issue 35, item 3: an HTTP stream whose client never reads held its request slot as long as the client liked
(three SSE streams with a small receive buffer kept `tts_requests_in_flight` at 3 for the 50 s observed, long
after generation ended; 256 of them would starve everyone with 429s). Every HTTP stream now has the WebSocket's
send timeout: a client that takes none of its bytes for STREAM_SEND_TIMEOUT is dropped, its slot and backend
request freed, the drop counted. Real sockets, tts-api's own uvicorn options, the fake vLLM."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM

KEY = "sk-unread-0123456789"
SEND_TIMEOUT = 1.0
SLOTS = 3  # MAX_CONCURRENT_REQUESTS: three unread streams hold them all
LONG = ("Harga dia RM500 sahaja, dan penghantaran percuma untuk semua pelanggan kami. " * 60)[:4096]
AUTH = {"authorization": f"Bearer {KEY}"}

CASES = {
    "sse": ("/v1/audio/speech", {"input": LONG, "stream_format": "sse", "sample_rate": 48000}),
    "audio": ("/v1/audio/speech", {"input": LONG, "response_format": "pcm", "sample_rate": 48000}),
    "elevenlabs-json-lines": ("/v1/text-to-speech/jenny/stream/with-timestamps?output_format=pcm_48000", {"text": LONG}),
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=400, rate=0) as server:  # 8 s of audio per segment, as fast as it can
        yield server


@pytest.fixture(scope="module")
def served(fake: FakeVLLM) -> Iterator[tuple[str, FastAPI]]:
    settings = limits_settings(
        fake.url, api_key=KEY, stream_send_timeout=SEND_TIMEOUT, max_concurrent_requests=SLOTS
    )
    with serve_like_tts_api(settings) as served:
        yield served


def unread_request(url: str, path: str, body: dict) -> socket.socket:
    """A client with a 4 KiB receive buffer that sends its request and never reads a byte."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window it advertises
    sock.connect((host, int(port)))
    data = json.dumps(body).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


def send_timeouts(url: str) -> float:
    text = httpx.get(f"{url}/metrics", headers=AUTH, timeout=10).text
    line = next((x for x in text.splitlines() if x.startswith('tts_stream_send_timeouts_total{endpoint="speech"}')), None)
    return float(line.split()[-1]) if line else 0.0


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.01)


def dropped(sock: socket.socket, timeout: float) -> bool:
    """Whether the server has dropped the connection: what it had sent drains, then EOF or a reset."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize("case", list(CASES))
def test_three_unread_streams_release_their_slots_within_the_send_timeout(
    served: tuple[str, FastAPI], fake: FakeVLLM, case: str
) -> None:
    url, app = served
    admission = app.state.service.admission
    path, body = CASES[case]
    counted = send_timeouts(url)
    first = len(fake.requests)
    socks = [unread_request(url, path, body) for _ in range(SLOTS)]
    try:
        wait_for(lambda: admission.in_use == SLOTS, 10, "the three streams to be admitted")
        # generation stops once the unread bytes fill the buffers (and the look-ahead is made); from then on
        # each slot may be held for the send timeout, plus 2 s
        seen, stopped = -1, time.monotonic()
        deadline = time.monotonic() + 60
        while admission.in_use:
            now = time.monotonic()
            made = sum(r.tokens_sent for r in fake.requests[first:])
            if made != seen:
                seen, stopped = made, now
            held = now - stopped
            assert held <= SEND_TIMEOUT + 2.0, (
                f"{case}: {admission.in_use} slots still held {held:.1f} s after generation stopped ({made} tokens)"
            )
            assert now < deadline, f"{case}: generation never stopped"
            time.sleep(0.01)
        wait_for(lambda: not any(r.active for r in fake.requests[first:]), 2.0, "the backend requests to close")
        assert all(dropped(s, 5.0) for s in socks), "a connection stayed open"
    finally:
        for s in socks:
            s.close()
    assert send_timeouts(url) == counted + SLOTS
    # the slots are free for others: a reading client is served
    r = httpx.post(f"{url}/v1/audio/speech", json={"input": "Hello there.", "stream": False}, headers=AUTH, timeout=30)
    assert r.status_code == 200 and len(r.content) == 400 * 960


def test_a_slow_reader_is_not_dropped(served: tuple[str, FastAPI], fake: FakeVLLM) -> None:
    """A client that reads, however little at a time (8 KiB every 20 ms through a 4 KiB window: the server's
    sends block again and again, each for less than the send timeout), gets its whole stream."""
    url, app = served
    counted = send_timeouts(url)
    sock = unread_request(url, "/v1/audio/speech", {"input": "Hello there. " * 30, "response_format": "pcm"})
    received = b""
    try:
        sock.settimeout(10)
        while not received.endswith(b"\r\n0\r\n\r\n"):  # the chunked body's end
            piece = sock.recv(8192)
            assert piece, "the server closed the connection"
            received += piece
            time.sleep(0.02)
    finally:
        sock.close()
    assert received.startswith(b"HTTP/1.1 200")
    assert send_timeouts(url) == counted
    wait_for(lambda: app.state.service.admission.in_use == 0, 5, "the slot to be released")
