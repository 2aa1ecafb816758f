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
from app.text.rules import CODE_WORDS, code_named_before

# after a number, or a number's unit or part of day: "9am-6pm", "9 pagi - 6 petang", "10%-20%"
_AFTER = ("", "%", "K", "k", "M", "m", "B", "b", *(f"{space}{period}" for space in ("", " ") for period in (
    "am", "pm", "AM", "PM", "a.m.", "p.m.", "pagi", "petang", "malam", "tengah hari")))  # fmt: skip
_NUMERIC_RANGE = re.compile(
    "(?:" + "|".join(f"(?<=[0-9]{re.escape(a)})" for a in _AFTER) + r")\s*[-–—~]\s*(?=(?:RM|rm|\$|USD\s?|€|£)?[0-9])"
)
# "0900-1700": four-digit times, one with a leading zero (a plain "1000-1200" stays a range of numbers)
_MILITARY_RANGE = re.compile(
    r"(?<![\w.,:])(?=0|[0-9]{4}\s*[-–—]\s*0)([01][0-9]|2[0-3])([0-5][0-9])\s*[-–—]\s*([01][0-9]|2[0-3])([0-5][0-9])"
    r"(?![\w.,:-]|[.,][0-9])"
)
# A code in groups after a word that names one ("Kod pengesahan anda ialah 123-456", "ref 2024-00451"): digit by
# digit, a pause between the groups; and a code of letters and groups ("TX-2026-00451"): no "to" between them.
_CODE_CHAIN = re.compile(r"(?<![\w.,-])[0-9]{2,}(?:-[0-9]{2,})+(?![\w-]|[.,][0-9])")
# not verbs ("order 100-200", "call 2-3 agents") nor an address's number sign ("No. 12-34")
_CHAIN_WORDS = CODE_WORDS - {"order", "no", "number", "nombor", "call", "dial", "hubungi", "telefon", "tel", "phone",
                             "hotline", "talian"}  # fmt: skip
_LETTERED = re.compile(r"(?<![\w-])[A-Za-z]{1,4}-[0-9]+$")  # "TX-2026", not "RM100"
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


def _code(m: re.Match[str], text: str, r: Reader) -> str:
    if not code_named_before(text, m.start(), _CHAIN_WORDS):
        return m.group()
    return ", ".join(r.digits(group) for group in m.group().split("-"))


def ranges(text: str, r: Reader) -> str:
    to = r.word("to")
    if "-" in text or "–" in text or "—" in text or "~" in text:
        text = sub(_EVEN, r"\1 \1", text)
        text = sub(_YEAR_RANGE, lambda m: _year_range(m, r), text)
        text = sub(_CODE_CHAIN, lambda m: _code(m, text, r), text)
        text = sub(_MILITARY_RANGE, r"\1:\2-\3:\4", text)

        def dash(m: re.Match[str]) -> str:
            if _SCORE.search(text, 0, m.start()):
                return " "  # a score: "menang 2-1" is "dua satu"
            if _ADDRESS.search(text, 0, m.start()):
                return f" {r.word('dash')} "
            if _LETTERED.search(text, max(0, m.start() - 30), m.start()):
                return ", "  # a code: "TX-2026-00451"
            return f" {to} "

        text = sub(_NUMERIC_RANGE, dash, text)
        text = sub(_DAY_RANGE, lambda m: f"{_DAY_LOOKUP[m.group(1)]} {to} {_DAY_LOOKUP[m.group(2)]}", text)
    return text
