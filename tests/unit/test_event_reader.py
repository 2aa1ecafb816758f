"""The hot-path reader of vLLM's stream: token ids or text, events split anywhere, error events."""

from __future__ import annotations

import json

import pytest

from app.backend.sse import BackendStreamError, StreamFormatError
from app.backend.vllm import EventReader, StreamStats
from tools.fake_vllm import EOS_TOKEN_ID, SPEECH_TOKEN_ID_BASE

BASE = SPEECH_TOKEN_ID_BASE


def event(text: str = "", ids: list[int] | None = None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choice: dict = {"index": 0, "text": text, "finish_reason": finish}
    if ids is not None:
        choice["token_ids"] = ids
    return f"data: {json.dumps({'choices': [choice], 'usage': usage})}\n\n".encode()


def test_token_ids_map_to_codes_and_other_ids_are_skipped() -> None:
    reader, stats = EventReader(BASE), StreamStats()
    data = event("ignored text", [BASE + 5, BASE + 65535, 42, EOS_TOKEN_ID], finish="stop") + b"data: [DONE]\n\n"
    assert reader.feed(data, stats) == [5, 65535]
    assert reader.done and stats.finish_reason == "stop"


def test_events_split_anywhere_across_chunks() -> None:
    stream = event(ids=[BASE + 1, BASE + 2]) + event(ids=[BASE + 3], usage={"prompt_tokens": 7}) + b"data: [DONE]\n\n"
    for cut in range(1, len(stream)):
        reader, stats = EventReader(BASE), StreamStats()
        got = reader.feed(stream[:cut], stats) + reader.feed(stream[cut:], stats)
        assert got == [1, 2, 3] and reader.done and stats.prompt_tokens == 7


def test_without_a_known_id_range_the_text_is_parsed() -> None:
    reader, stats = EventReader(None), StreamStats()
    got = reader.feed(event("<|s_7|><|s_1", [BASE + 7, BASE + 12]) + event("2|>", []), stats)
    assert got == [7, 12]  # a token split across two events' text


def test_an_event_without_token_ids_falls_back_to_its_text() -> None:
    reader = EventReader(BASE)
    assert reader.feed(event("<|s_9|>"), StreamStats()) == [9]


@pytest.mark.parametrize(
    ("bad", "error"), [(b'data: {"error": {"message": "boom"}}\n\n', BackendStreamError), (b"data: {oops\n\n", StreamFormatError)]
)
def test_an_error_event_keeps_the_tokens_before_it(bad: bytes, error: type) -> None:
    reader = EventReader(BASE)
    assert reader.feed(event(ids=[BASE + 1, BASE + 2]) + bad + event(ids=[BASE + 3]), StreamStats()) == [1, 2]
    assert isinstance(reader.error, error) and reader.done
