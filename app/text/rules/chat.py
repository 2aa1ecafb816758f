"""Malaysian chat spelling: elongation, the "x" (tak) prefix, and shortforms.

- Elongation: a letter written three or more times is one letter ("takkkkk" -> "tak", "bestttt" ->
  "best"), or two where that makes a word and one does not ("sooo" -> "so", "gooood" -> "good").
- "x" before a Malay word is "tak": "xtahu" -> "tak tahu", "x boleh" -> "tak boleh"; so is "x" as a word next to
  a Malay word ("Saya x sure", the question tag "Boleh x?"), but not among English words or numbers ("Plan x
  is better", "3 x 4").
- Shortforms: malaya's rules dictionary, only its vowel-less keys (which cannot be read as written),
  plus `app/data/shortforms.tsv`, which adds the ones malaya lacks and corrects readings nobody says
  ("ckp" is "cakap", not "cukup"). Manglish forms ("tmr", "pls") apply in any sentence, Malay ones
  only in Malay sentences. Colloquial words that can be read as written ("tak", "je") are kept. A Malay
  shortform doubled with "2" is read doubled: "bdk2" -> "budak-budak".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from app.text.langdetect import ENGLISH_MARKERS, MALAY_MARKERS
from app.text.offsets import sub
from app.text.readers import Reader

_ELONGATED = re.compile(r"(?<![\w@./-])[A-Za-z]*([a-z])\1\1[A-Za-z]*(?![\w@/-]|\.\w)")
_RUN = re.compile(r"([a-z])\1{2,}")
_X_PREFIX = re.compile(r"(?<![\w'’@./-])x([a-z]{2,})(?![\w'’@/-])")
_X_WORD = re.compile(r"(?<![\w'’@./-])x(?![\w'’@/-]|\.\w)")
_WORD_BEFORE = re.compile(r"([A-Za-z]+)\s+$")
_WORD_AFTER = re.compile(r"\s+([A-Za-z]+)")
# Words that follow a noun as readily as "tak": "model x tu" is a model, "boleh x la" a question.
_AFTER_A_NOUN = frozenset("tu ni itu ini la lah je jer pun kan ke kah ya ye dan atau yang".split())  # noqa: SIM905
# Keys malaya maps to something that is not how the word is read ("by" -> "dengan"), or that clash with units.
_EXCLUDE = frozenset(
    (  # noqa: SIM905
        "by bf bff btw gf bn ph cctv fb hr hrs cm grm kg kl rm mr ty ts yb dsnr jnt jkt dlt hg gw kk dnk mmz "
        "smrg smvk nmbk tth ngmg ngmng pcrn prwtn mntn kyy trsrh bkln gmpg jlbb brhjb ntmy tmbm ysh bhw blng "
        "jdwl hrsny pk pg kt lh flm mg mn cr pls bgt bgtt bgttt bgtttt bngt bngtt bngttt bngtzt bngy gk gkk "
        "ngg ngggk nggk ngk gtw wt tw dwh dy bg spy st sms mms dj vs xx xxx"
    ).split()
)


def bundled_path() -> Path:
    return Path(str(resources.files("app").joinpath("data/shortforms.tsv")))


def _load(path: Path) -> dict[str, tuple[str, str]]:
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        written, spoken, lang = (c.strip() for c in line.split("\t"))
        table[written.lower()] = (spoken, lang)
    return table


class ChatSpelling:
    """Loads the shortform tables once; `common` runs before language detection, `malay` after it."""

    def __init__(self, dictionary: Mapping[str, str], malay_words: Iterable[str], english_words: Iterable[str]) -> None:
        self._malay_words = frozenset(w.lower() for w in malay_words)
        english = {w.lower() for w in english_words}
        self._words = self._malay_words | english
        self._malay_only = (self._malay_words - english - ENGLISH_MARKERS) | MALAY_MARKERS
        extra = _load(bundled_path())
        malay = {
            key: value
            for key, value in dictionary.items()
            if re.fullmatch(r"[b-df-hj-np-tv-z]{2,6}", key) and key not in _EXCLUDE
        }
        malay.update({k: spoken for k, (spoken, lang) in extra.items() if lang == "ms"})
        self._malay = malay
        self._common = {k: spoken for k, (spoken, lang) in extra.items() if lang == "*"}
        self._malay_pattern = _compile(malay, doubled=True)
        self._common_pattern = _compile(self._common)

    @property
    def malay_keys(self) -> frozenset[str]:
        """Shortforms that mark a sentence as Malay (for the language detector)."""
        return frozenset(self._malay)

    def _collapse(self, m: re.Match[str]) -> str:
        word = m.group()
        single = _RUN.sub(r"\1", word)
        double = _RUN.sub(r"\1\1", word)
        if double.lower() in self._words and single.lower() not in self._words:
            return double
        if single.lower() in self._words or single.lower() in self._malay:
            return single
        return double if double.lower() in self._words else single

    def _x_prefix(self, m: re.Match[str]) -> str:
        rest = m.group(1)
        if "x" + rest in self._malay or "x" + rest in self._words:
            return m.group()  # a shortform of its own ("xde" -> "takde"), or a word ("xenon")
        if rest in self._malay:
            return f"tak {self._malay[rest]}"
        return f"tak {rest}" if rest in self._malay_words else m.group()

    def _is_malay(self, word: re.Match[str] | None) -> bool:
        return word is not None and (word.group(1).lower() in self._malay_only or word.group(1).lower() in self._malay)

    def _x_word(self, m: re.Match[str]) -> str:
        """ "x" alone is "tak" after a Malay word ("Dia x datang", "Boleh x?") or before one that is no particle
        ("x boleh"); not in "Plan x is", "model x tu" or "3 x 4"."""
        before = _WORD_BEFORE.search(m.string, max(0, m.start() - 40), m.start())
        after = _WORD_AFTER.match(m.string, m.end())
        if self._is_malay(before) or (self._is_malay(after) and after.group(1).lower() not in _AFTER_A_NOUN):
            return "tak"
        return m.group()

    def common(self, text: str) -> str:
        """Elongation, the "x" prefix and Manglish shortforms: before language detection."""
        if _RUN.search(text):
            text = sub(_ELONGATED, self._collapse, text)
        if "x" in text:
            text = sub(_X_PREFIX, self._x_prefix, text)
            text = sub(_X_WORD, self._x_word, text)
        if self._common_pattern is not None:
            text = sub(self._common_pattern, lambda m: _cased(self._common[m.group().lower()], m.group()), text)
        return text

    def __call__(self, text: str, r: Reader) -> str:
        """Malay shortforms, in Malay sentences."""
        if r.lang != "ms" or self._malay_pattern is None:
            return text
        return sub(self._malay_pattern, self._shortform, text)

    def _shortform(self, m: re.Match[str]) -> str:
        written, doubled = m.group(1), m.group(2)
        spoken = _cased(self._malay[written.lower()], written)
        if doubled:  # "bdk2" -> "budak-budak"; "lpstu2" stays, a phrase is not doubled
            return m.group() if " " in spoken else f"{spoken}-{spoken.lower()}"
        return spoken


# Chat written in capitals as often as not: "TQ" is "thank you", not an acronym.
_CHAT_IN_CAPITALS = frozenset({"tq", "tqvm", "tqsm", "tysm"})


def _cased(spoken: str, written: str) -> str:
    if written.isupper() and (len(written) > 1 or written != "I") and written.lower() not in _CHAT_IN_CAPITALS:
        return written  # an acronym, not chat
    return spoken[:1].upper() + spoken[1:] if written[:1].isupper() else spoken


def _compile(table: Mapping[str, str], doubled: bool = False) -> re.Pattern[str] | None:
    """Whole words; with `doubled`, the word's group 1 and a "2" after it in group 2 ("bdk2")."""
    if not table:
        return None
    keys = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    if doubled:
        return re.compile(rf"(?<![\w'’@./-])({keys})(2?)(?![\w'’@/-])", re.IGNORECASE)
    return re.compile(rf"(?<![\w'’@./-])(?:{keys})(?![\w'’@/-])", re.IGNORECASE)
