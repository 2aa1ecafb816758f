from __future__ import annotations

from pathlib import Path

import pytest

from app.text.overrides import Overrides, bundled_path
from app.text.sentences import SentenceSplitter


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "overrides.tsv"
    path.write_text(body, encoding="utf-8")
    return path


def test_bundled_file_loads() -> None:
    assert bundled_path().is_file()
    overrides = Overrides.load(None)
    assert overrides.apply("Dr Ahmad di KL", "ms") == "doktor Ahmad di K L"
    assert overrides.apply("Dr. Lim in KL", "en") == "doctor Lim in K L"
    assert Overrides.load("").apply("KL", "ms") == "K L"


def test_language_columns_and_precedence(tmp_path: Path) -> None:
    path = _write(tmp_path, "# comment\n\nJB\tJ B\nJB\tJohor Bahru\tms\n")
    overrides = Overrides.load(path)
    assert overrides.apply("Ke JB esok", "ms") == "Ke Johor Bahru esok"
    assert overrides.apply("Going to JB", "en") == "Going to J B"


def test_case_rules(tmp_path: Path) -> None:
    overrides = Overrides.load(_write(tmp_path, "KL\tK L\nok\tokay\n"))
    assert overrides.apply("kl KL", "en") == "kl K L"  # a cased entry matches exactly
    assert overrides.apply("OK ok Ok", "en") == "okay okay okay"  # a lowercase entry matches any case


def test_whole_words_only(tmp_path: Path) -> None:
    overrides = Overrides.load(_write(tmp_path, "KL\tK L\n"))
    assert overrides.apply("KLCC KL-based x@KL.com KL.", "ms") == "KLCC KL-based x@KL.com K L."


def test_abbreviation_with_optional_dot(tmp_path: Path) -> None:
    overrides = Overrides.load(_write(tmp_path, "Prof.\tprofesor\n"))
    assert overrides.apply("Prof. Ali dan Prof Abu", "ms") == "profesor Ali dan profesor Abu"
    assert "prof." in {a.lower() for a in overrides.abbreviations}
    assert SentenceSplitter(overrides.abbreviations).split("Jumpa Prof. Ali esok.") == ["Jumpa Prof. Ali esok."]


def test_multi_word_entry(tmp_path: Path) -> None:
    overrides = Overrides.load(_write(tmp_path, "Sdn Bhd\tSendirian Berhad\n"))
    assert overrides.apply("ABC Sdn Bhd", "ms") == "ABC Sendirian Berhad"


@pytest.mark.parametrize("line", ["only-one-column", "a\tb\tfr", "\tempty written"])
def test_bad_lines_name_the_line(tmp_path: Path, line: str) -> None:
    with pytest.raises(ValueError, match=r"overrides\.tsv:2"):
        Overrides.load(_write(tmp_path, f"ok\tokay\n{line}\n"))


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Overrides.load(tmp_path / "nope.tsv")


def test_normalizer_uses_configured_path(tmp_path: Path, normalizer) -> None:
    from app.text.normalizer import Normalizer

    custom = Normalizer(str(_write(tmp_path, "Shopee\tsho pee\n")))
    assert custom.normalize("Beli di Shopee.") == "Beli di sho pee."
    assert custom.normalize("Saya tinggal di KL.") == "Saya tinggal di K L."  # acronym rule, not the bundled file
