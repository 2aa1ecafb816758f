from __future__ import annotations

import pytest

from app.text.readers import EnglishReader, en_cardinal, en_ordinal, en_year, pluralize_last


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety nine"),
        (100, "one hundred"),
        (101, "one hundred and one"),
        (1000, "one thousand"),
        (1005, "one thousand and five"),
        (1200, "one thousand two hundred"),
        (87411, "eighty seven thousand four hundred and eleven"),
        (1_000_001, "one million and one"),
        (2_500_000_000, "two billion five hundred million"),
        (-7, "minus seven"),
    ],
)
def test_en_cardinal(n: int, words: str) -> None:
    assert en_cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (5, "fifth"), (8, "eighth"), (9, "ninth"), (12, "twelfth"),
     (20, "twentieth"), (21, "twenty first"), (100, "one hundredth"), (1000, "one thousandth")],
)  # fmt: skip
def test_en_ordinal(n: int, words: str) -> None:
    assert en_ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1066, "ten sixty six"), (1900, "nineteen hundred"), (1905, "nineteen oh five"), (1987, "nineteen eighty seven"),
     (2000, "two thousand"), (2005, "two thousand and five"), (2010, "twenty ten"), (2024, "twenty twenty four"),
     (999, "nine hundred and ninety nine")],
)  # fmt: skip
def test_en_year(n: int, words: str) -> None:
    assert en_year(n) == words


def test_decades() -> None:
    assert pluralize_last("nineteen eighty", "en") == "nineteen eighties"
    assert pluralize_last("twenty ten", "en") == "twenty tens"
    assert pluralize_last("lapan puluh", "ms") == "lapan puluhan"


def test_number_forms() -> None:
    r = EnglishReader()
    assert r.number("1,234.50") == "one thousand two hundred and thirty four point five zero"
    assert r.number("-0.5") == "minus zero point five"
    assert r.number("007") == "zero zero seven"
    assert r.number("12345678901") == "one two three four five six seven eight nine zero one"


def test_malay_reader(normalizer) -> None:
    r = normalizer._readers["ms"]
    assert r.cardinal(1_001_000) == "satu juta seribu"
    assert r.cardinal(21) == "dua puluh satu"
    assert r.ordinal(1) == "pertama"
    assert r.ordinal(3) == "ketiga"
    assert r.number("3.14") == "tiga perpuluhan satu empat"
    assert r.number("-5") == "negatif lima"
