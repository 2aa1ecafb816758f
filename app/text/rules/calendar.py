"""Hijri years: "1446H", "1446 H", "1446 AH", "1446 Hijrah" and the paired "1446H/2024M".

Malay: "1446H" -> "seribu empat ratus empat puluh enam Hijrah"; "2024M" after a Hijri year -> "... Masihi".
English: "1446 AH" -> "fourteen forty six A H"; "1446H" -> "fourteen forty six Hijrah".
Runs before the clock rules: "1446H" is a year, not the time 14:46 ("pukul 1430H" stays a time).
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader
from app.text.rules import has_digit

_HIJRI = re.compile(
    r"(?<![\w.,:])(1[2-5][0-9]{2})\s?(H|AH|Hijrah|Hijriah|Hijri|SH)\b"
    r"(?:\s?(/|-|bersamaan|or|atau)\s?([12][0-9]{3})\s?(M|Masihi|CE|AD)?\b)?"
)
_CLOCK_BEFORE = re.compile(r"\b(?:pukul|jam|pkl|at)\s+$", re.IGNORECASE)


def hijri_years(text: str, r: Reader) -> str:
    if not has_digit(text) or "H" not in text:
        return text

    def speak(m: re.Match[str]) -> str:
        if _CLOCK_BEFORE.search(text, 0, m.start()):
            return m.group()
        era = m.group(2)
        if era == "AH" and r.lang == "en":
            name = "A H"
        elif era == "SH":
            name = "Sebelum Hijrah" if r.lang == "ms" else "B H"
        else:
            name = "Hijrah"
        spoken = f"{r.year(int(m.group(1)))} {name}"
        if m.group(4):
            joiner = {"/": "bersamaan" if r.lang == "ms" else "or", "-": "bersamaan" if r.lang == "ms" else "or"}
            western = {"M": "Masihi", "Masihi": "Masihi", "CE": "C E", "AD": "A D", None: ""}[m.group(5)]
            if r.lang == "en" and m.group(5) == "M":
                western = ""
            spoken += f" {joiner.get(m.group(3), m.group(3))} {r.year(int(m.group(4)))}"
            spoken += f" {western}" if western else ""
        return spoken

    return sub(_HIJRI, speak, text)
