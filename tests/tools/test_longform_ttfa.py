"""The long-text benchmark's client (`benchmarks.longform_ttfa.first_audio`): a real socket to the real app."""

from __future__ import annotations

import time

import pytest

from benchmarks.longform_ttfa import first_audio, has_audio


def test_the_first_audio_is_timed_at_its_arrival(app_url: str) -> None:
    started = time.time()
    ttfa = first_audio(app_url, {"input": "hello there", "response_format": "pcm"}, whole=True)
    assert 0 < ttfa < time.time() - started  # the first byte came before the rest was read


def test_a_request_left_after_its_first_audio_and_an_error_status(app_url: str) -> None:
    assert first_audio(app_url, {"input": "hello there " * 40, "response_format": "pcm"}, whole=False) > 0
    with pytest.raises(RuntimeError, match="HTTP 400"):
        first_audio(app_url, {"input": "", "response_format": "pcm"}, whole=True)


def test_only_a_chunk_with_audio_counts() -> None:
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    assert not has_audio(head[:20])
    assert not has_audio(head)
    assert not has_audio(head + b"3c0")  # the size line is not complete yet
    assert not has_audio(head + b"3c0\r\n")  # its data has not come
    assert has_audio(head + b"3c0\r\n\x00")
