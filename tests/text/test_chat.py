"""Chat spellings (`app/text/rules/chat.py`, `app/data/shortforms.tsv`) as a class: every entry of the table is read
in the sentences it is meant for (issue 33, item 4)."""

from __future__ import annotations

import pytest

from app.text.normalizer import Normalizer
from app.text.rules.chat import _load, bundled_path

TABLE = _load(bundled_path())


@pytest.mark.parametrize("written", sorted(TABLE))
def test_every_shortform_is_read_in_a_malay_sentence(normalizer: Normalizer, written: str) -> None:
    spoken, _ = TABLE[written]
    assert normalizer.normalize(f"Dia kata {written} tadi") == f"Dia kata {spoken} tadi"


@pytest.mark.parametrize("written", sorted(w for w, (_, lang) in TABLE.items() if lang == "*"))
def test_every_any_language_shortform_is_read_in_an_english_sentence(normalizer: Normalizer, written: str) -> None:
    spoken, _ = TABLE[written]
    assert normalizer.normalize(f"I told them {written} yesterday") == f"I told them {spoken} yesterday"


@pytest.mark.parametrize("written", sorted(w for w, (_, lang) in TABLE.items() if lang == "ms"))
def test_malay_shortforms_are_left_in_english_sentences(normalizer: Normalizer, written: str) -> None:
    assert normalizer.normalize(f"The code is {written} and more") == f"The code is {written} and more"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Boleh x?", "Boleh tak?"),  # a question tag after a Malay word
        ("Dia x datang", "Dia tak datang"),
        ("x boleh la", "tak boleh la"),
        ("Saya x sure", "Saya tak sure"),  # a Malay word before it is enough
        ("Plan x is better", "Plan x is better"),  # English on both sides: a letter
        ("Use x as the unknown.", "Use x as the unknown."),
        ("Saya suka model x tu.", "Saya suka model x tu."),  # a name of a model, before a particle
        ("Press x to close the window.", "Press x to close the window."),
        ("3 x 4 = 12", "tiga darab empat sama dengan dua belas"),  # between numbers: times
        ("bdk2 tu", "budak-budak tu"),  # a doubled shortform reads doubled
    ],
)
def test_x_alone_is_tak_only_next_to_a_malay_word(normalizer: Normalizer, text: str, spoken: str) -> None:
    assert normalizer.normalize(text) == spoken
