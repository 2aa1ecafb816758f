"""Titles and patronymics (`app/text/names.py`, `app/data/names.tsv`): what names say about a sentence's language,
and how a patronymic written short is read (issue 33, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.text.names import NameFinder, _load, bundled_path
from app.text.normalizer import Normalizer

TITLES = {written: entry for written, entry in _load(bundled_path()).items() if entry.kind == "title"}


@pytest.fixture(scope="module")
def finder() -> NameFinder:
    return NameFinder()


def test_names_are_blanked_and_titles_vote_their_language(finder: NameFinder) -> None:
    malay = finder.find("Encik Ahmad bin Ali, no. IC 850312-10-5521.")
    assert malay.rest.split() == [",", "no.", "IC", "850312-10-5521."] and malay.vote > 0
    english = finder.find("Mr. John Smith, IC no. 850312-10-5521.")
    assert english.rest.split() == [",", "IC", "no.", "850312-10-5521."] and english.vote < 0
    both = finder.find("Datuk Lee Chong Wei")
    assert both.rest.strip() == "" and both.vote == 0
    assert len(malay.rest) == len("Encik Ahmad bin Ali, no. IC 850312-10-5521.")


def test_a_title_needs_a_name_after_it_and_a_patronymic_names_on_both_sides(finder: NameFinder) -> None:
    for text in ("tuan rumah saya baik", "Puan dah sampai", "Dia beli tong bin baru", "My A/L results are out"):
        found = finder.find(text)
        assert found.rest == text and found.vote == 0, text


def test_patronymics_written_short_are_read_between_names_only(finder: NameFinder) -> None:
    assert finder.patronymics("Muthu a/l Samy") == "Muthu anak lelaki Samy"
    assert finder.patronymics("Cik Lim a/p Muthu, no. akaun 1") == "Cik Lim anak perempuan Muthu, no. akaun 1"
    assert finder.patronymics("Siti bt Ahmad bt kek") == "Siti binti Ahmad bt kek"  # the second "bt" is "buat"
    assert finder.patronymics("Mr. Lim s/o Tan Ah Kow") == "Mr. Lim son of Tan Ah Kow"
    assert finder.patronymics("Ahmad bin Ali") == "Ahmad bin Ali"
    assert finder.patronymics("My A/L results are out") == "My A/L results are out"


@pytest.mark.parametrize("title", sorted(TITLES))
def test_every_title_with_a_name_and_an_ic_number_reads_in_its_language(normalizer: Normalizer, title: str) -> None:
    """The class, over the whole table: "<title> Ahmad, no. IC 850312-10-5521." is Malay unless the title is English,
    and its number is read in that language with "no." read too."""
    written = " ".join(w[:1].upper() + w[1:] for w in title.split())
    text = f"{written} Ahmad, no. IC 850312-10-5521."
    english = TITLES[title].lang == "en"
    assert normalizer._detector.detect(text).lang == ("en" if english else "ms")
    spoken = normalizer.normalize(text)
    assert ("I C number eight five zero" if english else "nombor I C lapan lima kosong") in spoken, spoken
    assert "no." not in spoken


def test_a_bad_line_in_the_table_is_named(tmp_path: Path) -> None:
    path = tmp_path / "names.tsv"
    path.write_text("# comment\nEncik\tms\ttitle\nPuan\tfr\ttitle\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"names.tsv:3"):
        NameFinder(path)
