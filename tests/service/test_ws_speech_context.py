"""`/v1/audio/speech` `context`: per-sentence HTTP callers get the previous sentence's speech as context."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable

import httpx

from app.main import Components
from app.prompts import context_prompt, speech_prompt
from app.settings import Settings
from tools.fake_vllm import FakeVLLM
from tools.harness import LocalCodec, PassthroughNormalizer, serve


def say(url: str, text: str, **fields: object) -> httpx.Response:
    resp = httpx.post(f"{url}/v1/audio/speech", json={"input": text, "voice": "idayu"} | fields, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp


def test_a_context_id_carries_the_previous_sentence(app_url: str, fake: FakeVLLM) -> None:
    say(app_url, "First sentence.", context={"id": "conv-1"})
    say(app_url, "Second sentence.", context={"id": "conv-1", "previous_text": "First sentence."})
    say(app_url, "Other conversation.", context={"id": "conv-2"})
    say(app_url, "Without context.")
    first, second, other, plain = (r.prompt for r in fake.requests)
    assert first == speech_prompt("idayu", "First sentence.")
    assert second == context_prompt("idayu", "First sentence.", fake.expected_tokens(first), "Second sentence.")
    assert other == speech_prompt("idayu", "Other conversation.")
    assert plain == speech_prompt("idayu", "Without context.")


def test_context_is_not_used_when_it_does_not_fit(app_url: str, fake: FakeVLLM) -> None:
    say(app_url, "First sentence.", context={"id": "c"})
    say(app_url, "Wrong previous text.", context={"id": "c", "previous_text": "Something else entirely."})
    say(app_url, "Another voice.", voice="jenny", context={"id": "c"})
    prompts = [r.prompt for r in fake.requests]
    assert prompts[1] == speech_prompt("idayu", "Wrong previous text.")
    assert prompts[2] == speech_prompt("jenny", "Another voice.")


def test_a_request_sent_while_the_previous_one_generates_waits_for_its_tokens(app_url: str, fake: FakeVLLM) -> None:
    fake.rate = 200  # 0.6 s per sentence
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(say, app_url, "Sent first.", context={"id": "pipelined"})
        assert fake.wait_for(lambda: len(fake.requests) == 1, timeout=5)
        second = pool.submit(say, app_url, "Sent right after.", context={"id": "pipelined"})
        first.result(), second.result()
    p1, p2 = (r.prompt for r in fake.requests)
    assert p2 == context_prompt("idayu", "Sent first.", fake.expected_tokens(p1), "Sent right after.")


def test_stream_context_false_turns_it_off(settings_for: Callable[..., Settings], fake: FakeVLLM) -> None:
    parts = Components(codec=LocalCodec(), normalizer=PassthroughNormalizer())
    with serve(settings_for(stream_context=False), parts) as url:
        say(url, "One.", context={"id": "x"})
        say(url, "Two.", context={"id": "x"})
    assert fake.requests[1].prompt == speech_prompt("idayu", "Two.")


def test_a_bad_context_is_a_400(app_url: str) -> None:
    resp = httpx.post(f"{app_url}/v1/audio/speech", json={"input": "Hi.", "context": {"previous_text": "x"}})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "context"
