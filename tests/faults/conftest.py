"""The real service on a real loopback port, the fake vLLM on another, and clients that misbehave on purpose.

Every test ends by checking that nothing leaked: no request in flight (`/metrics`), no backend stream open.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest

from app.main import Components
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve

TEXT = "Hello! How can I help you? can I get your passport number sir."
RELEASE_SECONDS = 1.0  # the bound: a disconnect frees its slot and closes the backend request by then


@pytest.fixture
def fake() -> Iterator[FakeVLLM]:
    with FakeVLLM(n_tokens=120, rate=0) as server:
        yield server


@pytest.fixture
def service(fake: FakeVLLM) -> Callable[..., object]:
    """`with service(codec=..., normalizer=..., **settings) as url:` runs the app against `fake`."""

    @contextmanager
    def run(codec: object = None, normalizer: object = None, **overrides: object) -> Iterator[str]:
        values: dict = {
            "tts_api": fake.url,
            "backend_read_timeout": 5.0,
            "default_playback_speed": 0.5,
            "default_playback_overlap_speed": 0.1,
            "first_chunk_seconds": 0.2,
            "decode_left_context_seconds": 0.2,
        } | overrides
        parts = Components(codec=codec or LocalCodec(), normalizer=normalizer or PassthroughNormalizer())
        with serve(Settings(_env_file=None, **values), parts) as url:
            yield url
            assert_nothing_leaked(url, fake)

    return run


# -- what leaks ---------------------------------------------------------------------------------------


def metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return float(next(line for line in text.splitlines() if line.startswith(name + " ")).split()[1])


def in_flight(url: str) -> int:
    return int(metric(url, "tts_requests_in_flight"))


def wait_until(predicate: Callable[[], object], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def assert_released(url: str, fake: FakeVLLM, timeout: float = RELEASE_SECONDS) -> None:
    """No request in flight and every backend stream closed, within `timeout` of now."""
    assert wait_until(lambda: in_flight(url) == 0 and fake.active_streams == 0, timeout), (
        f"in flight {in_flight(url)}, backend streams open {fake.active_streams}"
    )


def assert_nothing_leaked(url: str, fake: FakeVLLM) -> None:
    assert_released(url, fake, timeout=5.0)
    assert all(not r.active for r in fake.requests)


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


# -- raw clients ----------------------------------------------------------------------------------------


def open_request(url: str, path: str, body: bytes, headers: dict[str, str], *, send_body: bool = True) -> socket.socket:
    """A raw HTTP/1.1 request on its own socket; the caller reads (or does not) and closes it."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    head = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: close"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (body if send_body else b""))
    return sock


def open_json(url: str, path: str, obj: dict) -> socket.socket:
    body = json.dumps(obj).encode()
    return open_request(url, path, body, {"Content-Type": "application/json", "Content-Length": str(len(body))})


def read_at_least(sock: socket.socket, n: int) -> bytes:
    """At least `n` bytes of the raw response (headers included), or fewer if the server closed first."""
    data = b""
    while len(data) < n:
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def speech(**fields: object) -> dict:
    return {"input": TEXT, "voice": "husein"} | fields


# -- stand-ins ------------------------------------------------------------------------------------------


class GatedNormalizer(PassthroughNormalizer):
    """Blocks every call until `gate` is set; records the texts in the order it normalized them."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.calls: list[str] = []

    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        self.entered.set()
        self.gate.wait(10)
        self.calls.append(text)
        return super().normalize(text, malaysian, language)


class SwitchCodec(LocalCodec):
    """LocalCodec that fails every decode while `failing`, or after `fail_after` successful decodes."""

    def __init__(self, decode_delay: float = 0.0) -> None:
        super().__init__(decode_delay)
        self.failing = False
        self.fail_after: int | None = None
        self.decodes = 0

    def decode(self, windows: list[np.ndarray]) -> list[np.ndarray]:
        if self.failing or (self.fail_after is not None and self.decodes >= self.fail_after):
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        self.decodes += 1
        return super().decode(windows)
