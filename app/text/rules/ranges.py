"""Ranges: a dash between two numbers, times, amounts or weekdays becomes "hingga" / "to".

Runs after phones, IC numbers and dates (which also contain dashes) and before the rules that read the
two ends: "100-200 ringgit" -> "100 hingga 200 ringgit" -> "seratus hingga dua ratus ringgit".
Two years ("2015 - 2021", "1990-95") are read as years in one style: "dua ribu lima belas hingga dua
ribu dua puluh satu", "twenty fifteen to twenty twenty one".
Not ranges: an address number ("No. 12-3" -> "12 dash 3") and an even split ("50-50" -> "50 50").
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader

_NUMERIC_RANGE = re.compile(
    r"(?:(?<=[0-9])|(?<=[0-9][AaPp][Mm])|(?<=[0-9]%)|(?<=[0-9][KkMmBb]))\s*[-–—~]\s*(?=(?:RM|rm|\$|USD\s?|€|£)?[0-9])"
)
_ADDRESS = re.compile(
    r"(?:\b(?:No|Lot|Unit|Blok|Block|Jalan|Jln|Lorong|Lrg|Tingkat|Aras|Level|Suite|Bilik|Room|Plot)\.?|#)\s*[A-Za-z]?[0-9]+$"
)
_SCORE = re.compile(
    r"\b(?:menang|kalah|tewas|seri|skor|keputusan|won|lost|beat|draw|drew|score|scored|defeated|win|lose)\s+[0-9]+\s*$",
    re.IGNORECASE,
)
_EVEN = re.compile(r"(?<![\w.,])([0-9]+)-\1(?![\w]|[.,][0-9])")
_YEAR_RANGE = re.compile(
    r"(?<![\w.,/-])(1[1-9][0-9]{2}|20[0-9]{2})\s*[-–—]\s*(1[1-9][0-9]{2}|20[0-9]{2}|[0-9]{2})(?![\w%]|[.,/-][0-9])"
)
_DAYS_MS = ("Isnin", "Selasa", "Rabu", "Khamis", "Jumaat", "Sabtu", "Ahad")
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DAY_LOOKUP = (
    {d: d for d in (*_DAYS_MS, *_DAYS_EN)} | {d[:3]: d for d in _DAYS_EN} | {"Thurs": "Thursday", "Tues": "Tuesday"}
)
_DAY = "|".join(sorted(_DAY_LOOKUP, key=len, reverse=True))
_DAY_RANGE = re.compile(rf"\b({_DAY})\.?\s*[-–—]\s*({_DAY})\b")


def _year_range(m: re.Match[str], r: Reader) -> str:
    start, end = int(m.group(1)), m.group(2)
    stop = int(end) if len(end) == 4 else start // 100 * 100 + int(end)
    if stop <= start:
        return m.group()  # "2024-2024" or "2021-05": not a range of years
    return f"{r.year(start)} {r.word('to')} {r.year(stop)}"


def ranges(text: str, r: Reader) -> str:
    to = r.word("to")
    if "-" in text or "–" in text or "—" in text or "~" in text:
        text = sub(_EVEN, r"\1 \1", text)
        text = sub(_YEAR_RANGE, lambda m: _year_range(m, r), text)

        def dash(m: re.Match[str]) -> str:
            if _SCORE.search(text, 0, m.start()):
                return " "  # a score: "menang 2-1" is "dua satu"
            if _ADDRESS.search(text, 0, m.start()):
                return f" {r.word('dash')} "
            return f" {to} "

        text = sub(_NUMERIC_RANGE, dash, text)
        text = sub(_DAY_RANGE, lambda m: f"{_DAY_LOOKUP[m.group(1)]} {to} {_DAY_LOOKUP[m.group(2)]}", text)
    return text
