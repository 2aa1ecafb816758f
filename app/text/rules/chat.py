"""Malaysian chat spelling: elongation, the "x" (tak) prefix, and shortforms.

- Elongation: a letter written three or more times is one letter ("takkkkk" -> "tak", "bestttt" ->
  "best"), or two where that makes a word and one does not ("sooo" -> "so", "gooood" -> "good").
- "x" before a Malay word is "tak": "xtahu" -> "tak tahu", "x boleh" -> "tak boleh".
- Shortforms: malaya's rules dictionary, only its vowel-less keys (which cannot be read as written),
  plus `app/data/shortforms.tsv`, which adds the ones malaya lacks and corrects readings nobody says
  ("ckp" is "cakap", not "cukup"). Manglish forms ("tmr", "pls") apply in any sentence, Malay ones
  only in Malay sentences. Colloquial words that can be read as written ("tak", "je") are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from app.text.offsets import sub
from app.text.readers import Reader

_ELONGATED = re.compile(r"(?<![\w@./-])[A-Za-z]*([a-z])\1\1[A-Za-z]*(?![\w@/-]|\.\w)")
_RUN = re.compile(r"([a-z])\1{2,}")
_X_PREFIX = re.compile(r"(?<![\w'’@./-])x([a-z]{2,})(?![\w'’@/-])")
_X_WORD = re.compile(r"(?<=[A-Za-z] )x(?= [a-z])")
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
        self._words = self._malay_words | {w.lower() for w in english_words}
        extra = _load(bundled_path())
        malay = {
            key: value
            for key, value in dictionary.items()
            if re.fullmatch(r"[b-df-hj-np-tv-z]{2,6}", key) and key not in _EXCLUDE
        }
        malay.update({k: spoken for k, (spoken, lang) in extra.items() if lang == "ms"})
        self._malay = malay
        self._common = {k: spoken for k, (spoken, lang) in extra.items() if lang == "*"}
        self._malay_pattern = _compile(malay)
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

    def common(self, text: str) -> str:
        """Elongation, the "x" prefix and Manglish shortforms: before language detection."""
        if _RUN.search(text):
            text = sub(_ELONGATED, self._collapse, text)
        if "x" in text:
            text = sub(_X_PREFIX, self._x_prefix, text)
            text = sub(_X_WORD, "tak", text)
        if self._common_pattern is not None:
            text = sub(self._common_pattern, lambda m: _cased(self._common[m.group().lower()], m.group()), text)
        return text

    def __call__(self, text: str, r: Reader) -> str:
        """Malay shortforms, in Malay sentences."""
        if r.lang != "ms" or self._malay_pattern is None:
            return text
        return sub(self._malay_pattern, lambda m: _cased(self._malay[m.group().lower()], m.group()), text)


def _cased(spoken: str, written: str) -> str:
    if written.isupper() and (len(written) > 1 or written != "I"):
        return written  # an acronym, not chat
    return spoken[:1].upper() + spoken[1:] if written[:1].isupper() else spoken


def _compile(table: Mapping[str, str]) -> re.Pattern[str] | None:
    if not table:
        return None
    keys = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w'’@./-])(?:{keys})(?![\w'’@/-])", re.IGNORECASE)
