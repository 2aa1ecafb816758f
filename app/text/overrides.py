"""Pronunciation overrides: a TSV of written form -> spoken form, optionally per language.

File format (UTF-8), one entry a line, `#` starts a comment line:

    written<TAB>spoken[<TAB>lang]

- `lang` is `ms`, `en`, or empty/`*` for both. A language-specific entry wins over a both-languages one.
- A written form with an uppercase letter matches exactly ("KL" does not match "kl"); an all-lowercase
  written form matches any case ("ok" matches "OK" and "Ok").
- A written form ending in "." is an abbreviation: it matches with or without the dot ("Dr." matches
  "Dr" and "Dr."), and the sentence splitter does not end a sentence there. In another casing ("dr",
  "DR.", "PROF") it matches when written with its dot or before a capitalised word (a name: "dr
  Zainal"), and never after a number ("72 KG" is a weight): "dr rumah" is chat for "dari rumah".
- Whole words only: "KL" does not match inside "KLCC", "KL-based" or "x@KL.com".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from app.text.offsets import sub

LANGS = ("ms", "en")
_AFTER_NUMBER = re.compile(r"[0-9]\s*$")
_NAME_NEXT = re.compile(r"\s+[A-Z]")


def bundled_path() -> Path:
    return Path(str(resources.files("app").joinpath("data/pronunciations.tsv")))


@dataclass
class _Table:
    exact: dict[str, str] = field(default_factory=dict)
    folded: dict[str, str] = field(default_factory=dict)  # lowercase key -> spoken
    loose: dict[str, str] = field(default_factory=dict)  # lowercased cased abbreviation ("dr.") -> spoken
    pattern: re.Pattern[str] | None = None

    def lookup(self, written: str, before: str = "", after: str = "") -> str | None:
        key = written.rstrip(".")
        for candidate in (written, key, key + "."):
            if candidate in self.exact:
                return self.exact[candidate]
        for candidate in (written.lower(), key.lower(), key.lower() + "."):
            if candidate in self.folded:
                return self.folded[candidate]
        spoken = self.loose.get(key.lower() + ".")
        if spoken is None or _AFTER_NUMBER.search(before):
            return None
        if written.endswith(".") or _NAME_NEXT.match(after):
            return spoken
        return None


class Overrides:
    """Parsed overrides; `apply(text, lang)` replaces whole written forms by their spoken forms."""

    def __init__(self, entries: list[tuple[str, str, str]]) -> None:
        self._tables = {lang: _Table() for lang in LANGS}
        for lang in LANGS:
            table = self._tables[lang]
            # Both-languages entries first, so a language-specific entry overwrites them.
            for written, spoken, entry_lang in sorted(entries, key=lambda e: e[2] != "*"):
                if entry_lang not in ("*", lang):
                    continue
                if written.lower() == written:
                    table.folded[written] = spoken
                else:
                    table.exact[written] = spoken
                    if written.endswith("."):
                        table.loose[written.lower()] = spoken
            table.pattern = _compile([*table.exact, *table.folded])
        self.abbreviations = frozenset(w for w, _, _ in entries if w.endswith("."))

    @classmethod
    def load(cls, path: str | Path | None = None) -> Overrides:
        """Read the file at `path` (None or "" = the bundled file). Raises ValueError naming a bad line."""
        path = Path(path) if path else bundled_path()
        entries: list[tuple[str, str, str]] = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = [c.strip() for c in line.split("\t")]
            if len(cols) < 2 or len(cols) > 3 or not cols[0] or not cols[1]:
                raise ValueError(f"{path}:{number}: expected 'written<TAB>spoken[<TAB>lang]', got {line!r}")
            lang = cols[2] if len(cols) == 3 and cols[2] else "*"
            if lang not in ("*", *LANGS):
                raise ValueError(f"{path}:{number}: language must be one of ms, en or *, got {lang!r}")
            entries.append((cols[0], cols[1], lang))
        return cls(entries)

    def apply(self, text: str, lang: str) -> str:
        table = self._tables[lang]
        if table.pattern is None:
            return text

        def spoken(match: re.Match[str]) -> str:
            found = table.lookup(match.group(), text[max(0, match.start() - 12) : match.start()], text[match.end() :])
            if found is None:
                return match.group()
            # "... Sdn. Bhd." at the end: the abbreviation's dot also ends the sentence.
            return found + "." if match.group().endswith(".") and match.end() == len(text) else found

        return sub(table.pattern, spoken, text)


def _compile(keys: list[str]) -> re.Pattern[str] | None:
    if not keys:
        return None
    alternatives = []
    for key in sorted(set(keys), key=len, reverse=True):
        body = re.escape(key.rstrip(".")) + (r"\.?" if key.endswith(".") else "")
        alternatives.append(body)
    # Case-insensitive as a whole; `lookup` re-checks case for the exact (cased) entries.
    return re.compile(r"(?<![\w@./:'-])(?:" + "|".join(alternatives) + r")(?![\w@/'-])(?!\.\w)", re.IGNORECASE)
