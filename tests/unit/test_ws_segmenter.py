"""The pure parts of streaming input: the segmenter's rules, the bounded context, the context store."""

from __future__ import annotations

import asyncio

import pytest

from app.service.context import ContextStore, SpeechContext, trim_context
from app.text.segmenter import TextSegmenter


def feed(seg: TextSegmenter, text: str, now: float = 0.0) -> list[str]:
    out: list[str] = []
    for word in text.split(" "):
        out += seg.push(word + " ", now)
    return out


def test_a_sentence_is_ready_once_the_next_one_begins() -> None:
    seg = TextSegmenter(max_wait=None)
    assert seg.push("Hello there.", 0) == []
    assert seg.push(" ", 0) == []  # "Hello there. dr" could still be one sentence
    assert seg.push("How", 0) == ["Hello there."]
    assert seg.push(" are you? I am", 0) == ["How are you?"]
    assert seg.flush() == ["I am"]
    assert seg.flush() == []


def test_abbreviations_and_lowercase_do_not_end_a_sentence() -> None:
    seg = TextSegmenter(max_wait=None)
    assert feed(seg, "Ask Dr. Tan about it. ok then. Next") == ["Ask Dr. Tan about it. ok then."]


def test_long_text_is_cut_at_a_clause_then_at_a_space() -> None:
    seg = TextSegmenter(max_chars=40, first_max_chars=20, max_wait=None)
    text = "Well, in the first place we should consider all the options we have before deciding anything"
    out = feed(seg, text)
    assert out[0] == "Well,"  # the first segment is short: the first audio does not wait
    assert all(len(s) <= 40 for s in out)
    assert " ".join(out + seg.flush()) == text


def test_the_time_rule_cuts_complete_words_only() -> None:
    seg = TextSegmenter(max_wait=0.5)
    assert seg.due_in(0.0) is None
    assert seg.push("The quick brown fo", 10.0) == []
    assert seg.due_in(10.2) == pytest.approx(0.3)
    assert seg.tick(10.2) == []
    assert seg.tick(10.5) == ["The quick brown"]  # "fo" may go on
    assert seg.buffered == " fo"
    assert seg.push("x jumps. ", 10.6) == []
    assert seg.tick(11.2) == ["fox jumps."]  # a trailing space completes the word


def test_trim_context_keeps_the_last_tokens_and_a_matching_share_of_words() -> None:
    assert trim_context("", [1, 2], 10) is None
    assert trim_context("a b", [], 10) is None
    ctx = trim_context("one two three four", [1, 2, 3, 4, 5, 6, 7, 8], 4, voice="v")
    assert ctx == SpeechContext("three four", (5, 6, 7, 8), "v")
    assert trim_context("a b", [1, 2], 10) == SpeechContext("a b", (1, 2), "")


async def test_context_store_waits_for_a_claim_and_expires() -> None:
    now = [0.0]
    store = ContextStore(ttl=10, clock=lambda: now[0])
    assert await store.previous("c", timeout=0.1) is None
    claim = store.claim("c")
    waiter = asyncio.ensure_future(store.previous("c", timeout=5))
    await asyncio.sleep(0)
    assert not waiter.done()  # the previous request is still generating
    store.resolve("c", claim, SpeechContext("hi", (1,), "v"))
    assert await waiter == SpeechContext("hi", (1,), "v")
    now[0] = 9.0
    assert await store.previous("c", timeout=0.1) is not None
    now[0] = 10.5
    assert await store.previous("c", timeout=0.1) is None
    assert len(store) == 0


async def test_context_store_is_bounded() -> None:
    store = ContextStore(ttl=10, max_entries=2)
    claims = [store.claim(k) for k in "abc"]
    assert len(store) == 2
    assert claims[0].done() and claims[0].result() is None
