"""The normalizer's map back to the source: every spoken word names the source words it came from (issue 30)."""

from __future__ import annotations

import re

import pytest

from app.text.document import readings, segment_of
from app.text.normalizer import Normalizer
from app.text.offsets import Tracker, sub, tracking
from app.text.options import TextOptions
from tests.text.cases import CASES as BASE_CASES
from tests.text.cases_contact_centre import CONTACT_CASES
from tests.text.cases_issue12 import ISSUE12_CASES
from tests.text.cases_issue33 import ISSUE33_CASES

CASES = BASE_CASES + ISSUE12_CASES + ISSUE33_CASES + CONTACT_CASES


def spoken_words(normalizer: Normalizer, text: str, **options: object) -> list[tuple[str, str]]:
    m = normalizer.speak(readings(segment_of(text)), TextOptions(**options))
    return [(w, text[s[0] : s[1]] if s else "") for w, _, _, s in m.words()]


def test_rewritten_numbers_and_abbreviations_name_what_they_replaced(normalizer: Normalizer) -> None:
    text = "Dr. Tan owes RM5.50 on 3/4."
    words = spoken_words(normalizer, text, language="en")
    assert words[0] == ("doctor", "Dr.") and words[1] == ("Tan", "Tan") and words[2] == ("owes", "owes")
    money = [src for w, src in words[3:] if src == "RM5.50"]
    assert len(money) >= 3  # "five ringgit fifty sen": every word names "RM5.50"
    assert ("on", "on") in words and words[-1][1] == "3/4."  # "... April." names the date as written


def test_malay_money_percent_and_units(normalizer: Normalizer) -> None:
    text = "Harga  RM500,000 naik 2.5% kepada 61.2 kg."
    words = spoken_words(normalizer, text)
    assert words[0] == ("Harga", "Harga")
    assert {src for w, src in words if w in ("ratus", "ribu", "ringgit")} == {"RM500,000"}
    assert {src for w, src in words if w == "peratus"} == {"2.5%"}
    assert ("kepada", "kepada") in words and words[-1] == ("kilogram.", "61.2 kg.")


def test_chinese_characters_name_themselves_and_numbers_their_digits(normalizer: Normalizer) -> None:
    text = "早上9点到晚上6点。"
    words = spoken_words(normalizer, text)
    assert [w for w, _ in words] == list("早上九点到晚上六") + ["点。"]
    assert words[2] == ("九", "9") and words[0] == ("早", "早")


def test_phone_keys_name_the_key_they_read(normalizer: Normalizer) -> None:
    text = "Press * then dial *100# now."
    words = spoken_words(normalizer, text, language="en")
    assert words[:3] == [("Press", "Press"), ("star", "*"), ("then", "then")]
    assert {src for w, src in words[4:-1]} == {"*100#"} and len(words[4:-1]) == 5  # star one zero zero hash


@pytest.mark.parametrize("malaysian", [True, False])
def test_the_map_never_changes_the_text_and_names_only_the_source(normalizer: Normalizer, malaysian: bool) -> None:
    """Over the whole table of cases: the spoken text is exactly `normalize`'s, every word that names something
    names a range of the source, in order of the text, and no word of letters or digits names nothing."""
    for case in CASES:
        m = normalizer.speak(readings(segment_of(case.text)), TextOptions(malaysian))
        assert m.text == normalizer.normalize(case.text, malaysian), case.text
        for w, _, _, src in m.words():
            assert src is None or 0 <= src[0] < src[1] <= len(case.text), (case.text, w, src)
        named = [src for *_, src in m.words() if src]
        assert sum(1 for *_, s in m.words() if s is None) <= max(1, len(named) // 4), case.text


def test_sub_records_each_match_as_an_edit_and_composes_them() -> None:
    text = "a RM5 b 3/4 c"
    tracker = Tracker(text)
    with tracking(tracker):
        out = sub(re.compile(r"RM(\d)"), lambda m: "lima ringgit", text)
        out = sub(r"(\d)/(\d)", r"\1 April", out)
    assert out == re.sub(r"(\d)/(\d)", r"\1 April", re.sub(r"RM(\d)", "lima ringgit", text))
    m = tracker.mapped()
    assert [(w, text[s[0] : s[1]]) for w, _, _, s in m.words()] == [
        ("a", "a"), ("lima", "RM5"), ("ringgit", "RM5"), ("b", "b"), ("3", "3"), ("April", "/4"), ("c", "c"),
    ]  # fmt: skip
