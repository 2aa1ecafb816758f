"""The server cannot be held by slow or huge request heads: 300 connections that trickle their headers, or send
nothing, are closed after HEADER_TIMEOUT while /health answers; a header of 8 MiB is refused (431) once it is
over MAX_HEADER_BYTES, never buffered whole. Real sockets on tts-api's own uvicorn options."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.security.limits_harness import limits_settings, serve_like_tts_api
from tools.fake_vllm import FakeVLLM

HEADER_TIMEOUT = 1.0


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with (
        FakeVLLM(n_tokens=40, rate=0) as fake,
        serve_like_tts_api(limits_settings(fake.url, header_timeout=HEADER_TIMEOUT)) as (base, _),
    ):
        yield base


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def closed_by_server(reader: asyncio.StreamReader, timeout: float) -> bytes | None:
    """What the server sent before it closed the connection; None if it did not close within `timeout`."""
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    except TimeoutError:
        return None
    except ConnectionResetError:
        return b""


async def test_300_slow_connections_are_closed_and_do_not_hold_the_server(url: str) -> None:
    host, port = host_port(url)
    conns = [await asyncio.open_connection(host, port) for _ in range(300)]
    started = time.monotonic()
    for i, (_, writer) in enumerate(conns):
        if i % 2:  # half trickle a request head that never ends, half send nothing at all
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        t = time.monotonic()
        health = await client.get("/health")
        took = time.monotonic() - t
    assert health.status_code == 200 and took < 1.0, f"/health took {took:.2f} s beside 300 slow connections"
    for _, writer in conns[1::2]:  # keep trickling: bytes that arrive do not extend the deadline
        writer.write(b"a")
    results = await asyncio.gather(*(closed_by_server(r, HEADER_TIMEOUT + 5) for r, _ in conns))
    elapsed = time.monotonic() - started
    assert all(r is not None for r in results), f"{sum(r is None for r in results)} of 300 still open"
    assert elapsed >= HEADER_TIMEOUT * 0.9
    assert all(r == b"" or r.startswith(b"HTTP/1.1 408") for r in results)
    for _, writer in conns:
        writer.close()


def test_a_request_head_over_the_cap_is_refused_before_it_is_all_sent(url: str) -> None:
    host, port = host_port(url)
    chunk = b"a" * 65536
    sent = 0
    answer = b""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < 8 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
                if select.select([sock], [], [], 0.05)[0]:
                    break
            else:
                sock.sendall(b"\r\n\r\n")
            while data := sock.recv(65536):
                answer += data
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert not answer.startswith(b"HTTP/1.1 200"), "an 8 MiB header was accepted"
    assert sent < 8 * 1024 * 1024, "the server read the whole 8 MiB header"
    assert answer == b"" or (answer.startswith(b"HTTP/1.1 431") and b"headers_too_large" in answer)
    assert httpx.get(f"{url}/health").status_code == 200


def test_normal_requests_and_keep_alive_still_work(url: str) -> None:
    with httpx.Client(base_url=url) as client:
        for _ in range(3):
            assert client.get("/health").status_code == 200
            time.sleep(HEADER_TIMEOUT * 0.6)  # idle between requests is keep-alive time, not head time
        big = {"x-fine": "b" * 30_000}  # under MAX_HEADER_BYTES
        assert client.get("/health", headers=big).status_code == 200


def test_tts_api_serves_with_every_limit_of_its_settings() -> None:
    from app.api.limits import GuardedHttpToolsProtocol
    from app.cli import server_options

    settings = limits_settings(
        "http://127.0.0.1:1", header_timeout=3.0, max_header_bytes=8192, keep_alive_timeout=7.0,
        max_connections=99, ws_max_message_bytes=4096,
    )
    options = server_options(settings)
    protocol = options["http"]
    assert issubclass(protocol, GuardedHttpToolsProtocol)
    assert (protocol.header_timeout, protocol.max_head_bytes) == (3.0, 8192)
    assert options["timeout_keep_alive"] == 7.0 and options["limit_concurrency"] == 99
    assert options["ws_max_size"] == 4096 and options["h11_max_incomplete_event_size"] == 8192
