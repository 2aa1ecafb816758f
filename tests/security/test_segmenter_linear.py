"""The segmenter's work is linear in its input: 100k characters cost O(n) splitter work, in one push or many."""

from __future__ import annotations

import pytest

from app.text.segmenter import TextSegmenter
from app.text.sentences import SentenceSplitter

N = 100_000
SENTENCES = "Dr. Tan will see you at ten, if that suits you. Is that fine? Yes! "
NO_STOPS = "and then we will talk about it later with everyone here "


class CountingSplitter(SentenceSplitter):
    """The real splitter, counting the characters it is given."""

    def __init__(self, budget: int = 10 * N) -> None:
        super().__init__()
        self.chars = 0
        self.budget = budget

    def split(self, text: str) -> list[str]:
        self.chars += len(text)
        assert self.chars <= self.budget, f"over {self.budget} characters split for {N}: not linear"
        return super().split(text)


def text_of(unit: str) -> str:
    return (unit * (N // len(unit) + 1))[:N]


def run(text: str, pushes: list[str]) -> tuple[CountingSplitter, list[str]]:
    splitter = CountingSplitter()
    seg = TextSegmenter(max_chars=250, first_max_chars=100, max_wait=None, splitter=splitter)
    out: list[str] = []
    for piece in pushes:
        out += seg.push(piece, 0.0)
    out += seg.flush()
    assert " ".join(out) == " ".join(text.split())  # nothing lost, nothing added
    assert all(len(s) <= 250 for s in out)
    return splitter, out


@pytest.mark.parametrize("unit", [SENTENCES, NO_STOPS], ids=["sentences", "no-sentence-end"])
@pytest.mark.parametrize("size", [N, 1_000, 7, 1], ids=["one-push", "1000-char-pushes", "7-char-pushes", "1-char"])
def test_the_splitter_sees_each_character_a_bounded_number_of_times(unit: str, size: int) -> None:
    text = text_of(unit)
    splitter, out = run(text, [text[i : i + size] for i in range(0, N, size)])
    # the old segmenter re-split the whole buffer per sentence: ~N^2 / 60 characters for one push
    assert splitter.chars <= 10 * N, f"{splitter.chars / N:.1f} characters split per character"
    assert len(out) >= N // 250


def test_one_push_splits_each_character_a_few_times() -> None:
    text = text_of(SENTENCES)
    one, _ = run(text, [text])
    assert one.chars <= 6 * N  # each sentence is split within a window about its size


def test_a_long_sentence_in_one_push_is_cut_like_one_pushed_word_by_word() -> None:
    text = "word " * 200 + "end. Next"
    by_words, _ = run(text, [w + " " for w in text.split(" ")])
    one = TextSegmenter(max_chars=250, first_max_chars=100, max_wait=None)
    words = TextSegmenter(max_chars=250, first_max_chars=100, max_wait=None)
    out_one = one.push(text, 0.0) + one.flush()
    out_words = [s for w in text.split(" ") for s in words.push(w + " ", 0.0)] + words.flush()
    assert out_one == out_words
    assert max(len(s) for s in out_one) <= 250
