"""Word-level rules: symbols, Malay chat shortforms and reduplication, acronyms and all-capital words.

- Symbols: "&" -> "dan"/"and", "his/her" -> "his or her", "=" -> "sama dengan"/"equals", "~" -> "lebih kurang"/"about".
- Malay reduplication: "anak2" -> "anak-anak" (chat shortforms are in `chat.py`).
- Acronyms: an all-capital word of 2-4 letters, or a longer one with no vowel or 4+ consonants in a
  row, is spelled ("KWSP" -> "K W S P"); a longer pronounceable one is read as a word ("PETRONAS" ->
  "Petronas"). A sentence written mostly in capitals is shouting, not acronyms: it is lowercased.
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader

_AMPERSAND = re.compile(r"\s*&\s*")
_PLUS = re.compile(r"(?<=\s)\+(?=\s)")
_EQUALS = re.compile(r"\s*=\s*")
_TILDE = re.compile(r"~\s*(?=\w)")
_SLASH = re.compile(r"(?<=[A-Za-z])/(?=[A-Za-z])")
_CODES_SLASH = re.compile(r"\b([A-Z]{2,})/([A-Z]{2,})\b")  # "USD/MYR"
_TRAILING_PLUS = re.compile(r"(?<=\w)\+(?=\s|$|[.,!?;:)])")  # "1,000+ customers"
_AT = re.compile(r"(?<![\w])@(?=\w)")
_ALIAS = re.compile(r"(?<=\w)\s+@\s+(?=\w)")
_PERCENT = re.compile(r"(?<=\w)\s?%")
_LIST_SEP = re.compile(r"\s*(?:\||→|->|=>|•)\s*")
_DEGREE = re.compile(r"°")
_PLUS_MINUS = re.compile(r"±\s*")
_MULTIPLY = re.compile(r"\s*×\s*")
_DASH = re.compile(r"\s*(?:—|--)\s*|\s+[-–]\s+")

_REDUPLICATION = re.compile(r"\b([A-Za-z]?[a-z]*[aeiou][a-z]*)2\b")
_CAPS = re.compile(r"(?<![\w'’-])(?:[A-Z]\.){2,}(?![\w])|(?<![\w'’-])[A-Z]{2,}(?:s\b|(?![\w'’-]))")
_WORD = re.compile(r"[A-Za-z]+")
_CAPS_RUN = re.compile(r"(?<![\w'’-])[A-Z]{2,}(?:[ ][A-Z]{2,})+(?![\w'’-])")
_UPPER_PAIR = re.compile(r"[A-Z][A-Z.]")
_CONSONANT_RUN = re.compile(r"[^AEIOUY]{4,}")


def symbols(text: str, r: Reader) -> str:
    text = sub(_LIST_SEP, ", ", text)
    if "&" in text:
        text = sub(_AMPERSAND, f" {r.word('and')} ", text)
    if "/" in text:
        text = sub(r"\b(dan|and)/(atau|or)\b", r"\1 \2", text)
        text = sub(_CODES_SLASH, r"\1 \2", text)
        text = sub(_SLASH, f" {r.word('or')} ", text)
    if "+" in text:
        text = sub(_TRAILING_PLUS, " lebih" if r.lang == "ms" else " plus", text)
        text = sub(_PLUS, r.word("plus"), text)
    if "=" in text:
        text = sub(_EQUALS, f" {r.word('equals')} ", text)
    if "~" in text:
        text = sub(_TILDE, f"{r.word('about')} ", text)
    if "@" in text:
        # "Siti binti Ahmad @ Hassan": in Malay names "@" means alias.
        text = sub(_ALIAS, " alias " if r.lang == "ms" else " at ", text)
        text = sub(_AT, f"{r.word('at')} ", text)
    if "%" in text:
        text = sub(_PERCENT, f" {r.word('percent')}", text)
    if "×" in text:
        text = sub(_MULTIPLY, " darab " if r.lang == "ms" else " by ", text)
    if "±" in text:
        text = sub(_PLUS_MINUS, "lebih kurang " if r.lang == "ms" else "plus or minus ", text)
    if "°" in text:
        text = sub(_DEGREE, f" {r.word('degree')} ", text)
    if "-" in text or "—" in text or "–" in text:
        text = sub(_DASH, ", ", text)
    return text


def reduplication(text: str, r: Reader) -> str:
    """Malay "anak2" -> "anak-anak"; runs before letter-digit tokens are split."""
    if r.lang != "ms" or "2" not in text:
        return text
    return sub(_REDUPLICATION, lambda m: f"{m.group(1)}-{m.group(1).lower()}", text)


def _pronounceable(word: str) -> bool:
    return len(word) >= 5 and any(c in "AEIOU" for c in word) and not _CONSONANT_RUN.search(word)


def _shouting(text: str) -> bool:
    words = [w for w in _WORD.findall(text) if len(w) > 1]
    if len(words) < 3:
        return False
    return sum(w.isupper() for w in words) / len(words) >= 0.6


def _name(m: re.Match[str]) -> str:
    """"AHMAD BIN ALI" (a name in capitals, as bank messages write it) -> "Ahmad Bin Ali"; "FBM KLCI" stays."""
    parts = m.group().split()
    if all(any(c in "AEIOUY" for c in p) and not _CONSONANT_RUN.search(p) for p in parts) and any(
        len(p) >= 4 for p in parts
    ):
        return " ".join(p.capitalize() for p in parts)
    return m.group()


def acronyms(text: str, r: Reader) -> str:
    if not _UPPER_PAIR.search(text):
        return text
    if not _shouting(text):
        text = sub(_CAPS_RUN, _name, text)
    shouting: list[bool] = []  # computed on the first capital word only

    def speak(m: re.Match[str]) -> str:
        token = m.group()
        if "." in token:
            spelled = " ".join(token.replace(".", ""))
            return spelled + "." if m.end() == len(text) else spelled  # "in the U.S." ends the sentence
        plural = token.endswith("s")
        letters = token[:-1] if plural else token
        if not shouting:
            shouting.append(_shouting(text))
        if shouting[0] and any(c in "AEIOUY" for c in letters) and not _CONSONANT_RUN.search(letters):
            return token.lower()
        if _pronounceable(letters):
            return letters.capitalize() + ("s" if plural else "")
        return " ".join(letters) + ("s" if plural else "")

    return sub(_CAPS, speak, text)
