"""Normalized text -> the model's tokens and back: which characters get tokens, pinyin for Chinese, and one
span per character, in order, with the unaligned ones sharing their gap."""

from __future__ import annotations

import numpy as np

from app.align.checkpoint import MMS_LABELS
from app.align.result import AlignResult, CharSpan
from app.align.text import Transcript, Vocabulary, char_spans, transcribe

MMS = Vocabulary({label: i for i, label in enumerate(MMS_LABELS)}, blank=0)


def spelled(transcript: Transcript, vocab: Vocabulary = MMS) -> list[tuple[str, str]]:
    """(the character, the letters its tokens spell) per character that has tokens."""
    names = {i: t for t, i in vocab.ids.items()}
    out: dict[int, str] = {}
    for tid, ci in zip(transcript.tokens.tolist(), transcript.chars.tolist(), strict=True):
        out[ci] = out.get(ci, "") + names[tid]
    return [(transcript.text[ci], letters) for ci, letters in sorted(out.items())]


def test_latin_letters_map_to_the_model_letters_and_punctuation_to_nothing() -> None:
    t = transcribe("Saya 'ok', Café ÑOÑO!", MMS)
    letters = "".join(letters for _, letters in spelled(t))
    assert letters == "saya'ok'cafenono"
    assert [t.text[i] for i in t.chars] == list("Saya'ok'CaféÑOÑO")
    assert np.all(np.diff(t.chars) > 0)


def test_digits_and_unknown_symbols_get_no_token() -> None:
    t = transcribe("a1 - b2 %", MMS)
    assert spelled(t) == [("a", "a"), ("b", "b")]


def test_chinese_characters_are_read_as_pinyin_with_phrase_readings() -> None:
    t = transcribe("银行行长 ok 绿", MMS)
    assert spelled(t) == [("银", "yin"), ("行", "hang"), ("行", "hang"), ("长", "zhang"), ("o", "o"), ("k", "k"),
                          ("绿", "lu")]


def test_a_word_delimiter_goes_between_words_only() -> None:
    ids = {"<pad>": 0, "|": 1, "A": 2, "B": 3, "'": 4}  # an upper-case English model with a delimiter
    vocab = Vocabulary(ids, blank=0, word_delimiter=1)
    t = transcribe("  a,  b'a  ", vocab)
    assert t.tokens.tolist() == [2, 1, 3, 4, 2]
    assert t.text[t.chars[1]] == " "


def test_every_character_gets_a_span_in_order() -> None:
    t = transcribe("hi, yo", MMS)  # tokens: h i y o
    token_spans = np.array([[100, 200], [200, 300], [500, 600], [650, 700]])
    spans = char_spans(t, token_spans, 1000)
    assert spans.tolist() == [[100, 200], [200, 300], [300, 400], [400, 500], [500, 600], [650, 700]]
    assert np.all(spans[:, 1] >= spans[:, 0]) and np.all(spans[1:, 0] >= spans[:-1, 1])


def test_edges_and_a_text_with_nothing_to_align() -> None:
    t = transcribe('"a"', MMS)
    assert char_spans(t, np.array([[40, 60]]), 100).tolist() == [[0, 40], [40, 60], [60, 100]]
    nothing = transcribe("12 %", MMS)
    assert len(nothing.tokens) == 0
    assert char_spans(nothing, np.zeros((0, 2), np.int64), 400).tolist() == [[0, 100], [100, 200], [200, 300],
                                                                              [300, 400]]


def test_a_result_reads_as_characters_and_words() -> None:
    t = transcribe("hi, yo", MMS)
    spans = char_spans(t, np.array([[100, 200], [200, 300], [500, 600], [650, 700]]), 1000)
    result = AlignResult("hi, yo", 24_000, spans)
    assert result.source == "aligned"
    assert result.chars()[2] == CharSpan(",", 300, 400)
    assert result.words() == [CharSpan("hi,", 100, 400), CharSpan("yo", 500, 700)]
