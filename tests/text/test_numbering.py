"""Number signs with their labels (`app/text/rules/numbering.py`, `app/data/number_labels.tsv`): "no. IC", "No. KP",
"IC no.", "no tel", read "nombor"/"number" with the label as it is said (issue 33, item 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.text.normalizer import Normalizer
from app.text.rules.numbering import _LABELS, _load, without_signs


@pytest.mark.parametrize("label", sorted(_LABELS))
def test_every_label_reads_with_its_number_in_malay_and_english(normalizer: Normalizer, label: str) -> None:
    """The class, over the whole table: Malay says "nombor <label>", English "<label> number", whichever order it was
    written in; the number after a label is a code, read digit by digit."""
    ms, en = _LABELS[label]
    assert normalizer.normalize(f"Encik Ahmad, no. {label} 12345.") == (
        f"Encik Ahmad, nombor {ms or label} satu dua tiga empat lima."
    )
    assert normalizer.normalize(f"Encik Ahmad, {label} no. 12345.") == (
        f"Encik Ahmad, nombor {ms or label} satu dua tiga empat lima."
    )
    assert normalizer.normalize(f"Please check your {label} no. 12345 today.") == (
        f"Please check your {en or label} number one two three four five today."
    )


@pytest.mark.parametrize(
    "text",
    ["Encik Ahmad bin Ali, no. IC 850312-10-5521.", "Kak Ros, no hp 013-2223344", "Mr. Tan, IC no. 850312-10-5521."],
)
def test_the_detector_reads_no_sign_and_no_abbreviated_label(text: str) -> None:
    blank = without_signs(text)
    assert len(blank) == len(text)
    assert not re.search(r"\b(?:no|IC|hp)\b", blank, re.IGNORECASE), blank
    assert re.findall(r"[0-9-]{6,}", blank) == re.findall(r"[0-9-]{6,}", text)  # the numbers are the detector's concern


def test_words_that_are_labels_still_vote() -> None:
    assert "akaun" in without_signs("no. akaun 1234") and "account" in without_signs("account no. 1234")


def test_a_bad_line_in_the_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text("# comment\nic\tI C\nkp\tK P\tK P\textra\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"labels.tsv:3"):
        _load(path)
