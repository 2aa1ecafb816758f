"""Malaysian names in running text: titles ("Encik", "Datuk Seri", "Mr.") and patronymics ("bin", "a/l").

A short sentence made mostly of a title, a name and a number ("Encik Ahmad bin Ali, no. IC 850312-10-5521.")
has few words that tell its language, and its names vote at random ("Lee" and "Wei" are English words;
fastText takes "Ahmad Ali" for anything). `NameFinder.find` marks the titles and the names next to them: the
names do not vote, a Malay form of address or patronymic ("Encik", "Puan", "bin") votes Malay, an English one
("Mr.", "Mrs.") English, and a title used in both languages ("Datuk", "Haji", "Dr.") neither.
`NameFinder.patronymics` reads a patronymic written short between two names: "a/l" -> "anak lelaki",
"bt" -> "binti", "s/o" -> "son of" ("A/L results" is not between names, and stays).

The titles and patronymics are in `app/data/names.tsv`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from app.text.offsets import sub

_VOTE = 1.5  # as much as an English marker word: "Encik Ahmad, no. IC ..." is Malay, "Mr. Tan, IC no. ..." English
_NAME = r"[A-Z][A-Za-z'’-]*"  # a capitalised (or all-capital) word
_NAMES_AFTER_TITLE = 3
_NAMES_AFTER_LINK = re.compile(rf"\s+{_NAME}(?:\s+{_NAME}){{0,2}}")
_WORDS = re.compile(r"[A-Za-z]+(?:['’/][A-Za-z]*)?")  # "Dato'", "a/l": as the table writes its first words


def bundled_path() -> Path:
    return Path(str(resources.files("app").joinpath("data/names.tsv")))


@dataclass(frozen=True)
class _Entry:
    lang: str  # "ms", "en" or "*"
    kind: str  # "title" or "patronymic"
    spoken: str  # "" = read as written


@dataclass(frozen=True)
class Names:
    """What the names in a text say about its language."""

    rest: str  # the text with its titles, patronymics and names blanked out (same length)
    vote: float  # their Malay votes minus their English votes


def _load(path: Path) -> dict[str, _Entry]:
    entries = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = [c.strip() for c in line.split("\t")]
        if len(cols) not in (3, 4) or cols[1] not in ("ms", "en", "*") or cols[2] not in ("title", "patronymic"):
            raise ValueError(f"{path}:{number}: expected 'written<TAB>ms|en|*<TAB>title|patronymic[<TAB>spoken]'")
        entries[_key(cols[0])] = _Entry(cols[1], cols[2], cols[3] if len(cols) == 4 else "")
    return entries


def _key(written: str) -> str:
    return " ".join(written.lower().rstrip(".").split())


def _alternatives(keys: list[str]) -> str:
    """Longest first; a dotted form also matches without its dot, any spacing between words."""
    return "|".join(re.escape(k).replace(r"\ ", r"\s+") + r"\.?" for k in sorted(keys, key=len, reverse=True))


class NameFinder:
    """Loads the titles and patronymics once; `find` and `patronymics` are pure functions of the text."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._entries = _load(Path(path) if path else bundled_path())
        # The first word of every title and patronymic: a sentence without one has no name to find (most have none).
        self._first_words = frozenset(k.split()[0] for k in self._entries)
        titles = _alternatives([k for k, e in self._entries.items() if e.kind == "title"])
        links = _alternatives([k for k, e in self._entries.items() if e.kind == "patronymic"])
        edge, end = r"(?<![\w'’/])", r"(?![\w'’/])"
        names = rf"{_NAME}(?:\s+{_NAME}){{0,3}}"
        # "Datuk Seri Haji Razak": a title, then up to three names (further titles are capitalised too).
        self._title = re.compile(
            rf"{edge}(?i:(?P<title>{titles})){end}(?P<names>(?:\s+{_NAME}){{1,{_NAMES_AFTER_TITLE}}})"
        )
        # "Ahmad bin Ali", "Muthu a/l Samy", "SITI BINTI HASSAN": a patronymic between two names.
        self._link = re.compile(rf"(?P<left>{edge}{names})\s+(?i:(?P<link>{links})){end}(?=\s+{_NAME})")

    def _entry(self, written: str) -> _Entry:
        return self._entries[_key(written)]

    def _may_have_names(self, text: str) -> bool:
        return any(w.lower() in self._first_words for w in _WORDS.findall(text))

    def find(self, text: str) -> Names:
        """The text with its names blanked, and the vote of its titles and patronymics."""
        if not self._may_have_names(text):
            return Names(text, 0.0)
        blank = list(text)
        vote = 0.0

        def mark(start: int, end: int, lang: str) -> None:
            nonlocal vote
            blank[start:end] = " " * (end - start)
            vote += {"ms": _VOTE, "en": -_VOTE}.get(lang, 0.0)

        for m in self._title.finditer(text):
            mark(m.start(), m.end(), self._entry(m.group("title")).lang)
        for m in self._link.finditer(text):
            mark(m.start(), m.end("link"), self._entry(m.group("link")).lang)
            after = _NAMES_AFTER_LINK.match(text, m.end())
            if after:
                blank[m.end() : after.end()] = " " * (after.end() - m.end())
        return Names("".join(blank), vote)

    def patronymics(self, text: str) -> str:
        """A patronymic written short, between two names, as it is read: "Muthu a/l Samy" -> "Muthu anak lelaki Samy"."""
        if not self._may_have_names(text) or not self._link.search(text):
            return text

        def spoken(m: re.Match[str]) -> str:
            said = self._entry(m.group("link")).spoken
            return m.group() if not said else m.group()[: m.start("link") - m.start()] + said

        return sub(self._link, spoken, text)
