"""Dates: numeric (day first, as written in Malaysia), ISO, and with month names.

Malay: "12/03/2024" -> "dua belas Mac dua ribu dua puluh empat" (day and year as cardinals).
English: "12/03/2024" -> "the twelfth of March twenty twenty four"; "March 5, 2024" -> "March fifth, twenty twenty four".
The month is spoken in the sentence's language whatever language it was written in.
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader
from app.text.rules import has_digit

MONTHS_MS = ("", "Januari", "Februari", "Mac", "April", "Mei", "Jun", "Julai", "Ogos", "September", "Oktober",
             "November", "Disember")  # fmt: skip
MONTHS_EN = ("", "January", "February", "March", "April", "May", "June", "July", "August", "September",
             "October", "November", "December")  # fmt: skip
_MONTH_NUMBER: dict[str, int] = {}
for _number in range(1, 13):
    for _name in (MONTHS_MS[_number], MONTHS_EN[_number]):
        _MONTH_NUMBER[_name.lower()] = _number
        _MONTH_NUMBER[_name[:3].lower()] = _number
_MONTH_NUMBER.update({"sept": 9, "ogo": 8, "okt": 10, "dis": 12})
# Capitalised names only: "may" and "mac" are also ordinary words.
_MONTH = (
    "(?:"
    + "|".join(sorted((m.capitalize() for m in _MONTH_NUMBER), key=len, reverse=True))
    + r")(?![a-z])(?:\.(?=\s+[0-9]))?"
)

_NUMERIC = re.compile(r"(?<![\w/.:-])([0-9]{1,2})([/.-])([0-9]{1,2})\2([0-9]{4}|[0-9]{2})(?![\w/-]|\.[0-9])")
_ISO = re.compile(r"(?<![\w/.:-])([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})(?![\w/-]|\.[0-9])")
_DAY_MONTH = re.compile(
    rf"(?:\b(the|The)\s+)?(?<![\w.,])([0-9]{{1,2}})(?:st|nd|rd|th|hb)?(?:\s+of)?\s+({_MONTH})(?:,?\s+([0-9]{{4}})(?![\w]))?"
)
_MONTH_DAY = re.compile(
    rf"\b({_MONTH})\s+([0-9]{{1,2}})(?:st|nd|rd|th)?(?![\w:.][0-9]|\w)(?:(,?)\s+([0-9]{{4}})(?!\w))?"
)
_MONTH_YEAR = re.compile(rf"\b({_MONTH})\s+([0-9]{{4}})(?!\w)")
# A month written short with no date: after "bulan" or an English word of time ("bulan Nov", "until Dec").
_MONTH_ALONE = re.compile(
    r"\b(bulan|Bulan|in|In|since|Since|until|Until|till|early|mid|late|end of|next|last|this)\s+"
    r"(Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Okt|Nov|Dec|Dis)(?:\.(?=\s+[a-z]))?(?![\w'’-])"  # its dot kept at a stop
)
# A weekday written short before a date ("Mon, 12 Jan", "Fri 3/5"): said in full, in the sentence's language.
_WEEKDAYS = {"Mon": ("Isnin", "Monday"), "Tue": ("Selasa", "Tuesday"), "Tues": ("Selasa", "Tuesday"),
             "Wed": ("Rabu", "Wednesday"), "Thu": ("Khamis", "Thursday"), "Thur": ("Khamis", "Thursday"),
             "Thurs": ("Khamis", "Thursday"), "Fri": ("Jumaat", "Friday"), "Sat": ("Sabtu", "Saturday"),
             "Sun": ("Ahad", "Sunday")}  # fmt: skip
_WEEKDAY = re.compile(rf"\b({'|'.join(_WEEKDAYS)})\.?(?=,?\s+[0-9]{{1,2}}(?:\s+(?:{_MONTH})\b|[/.-][0-9]))")


def month_number(name: str) -> int:
    return _MONTH_NUMBER[name.rstrip(".").lower()]


def month_name(month: int, r: Reader) -> str:
    return (MONTHS_MS if r.lang == "ms" else MONTHS_EN)[month]


def _full_year(year: str) -> int:
    value = int(year)
    if len(year) == 2:
        value += 2000 if value < 70 else 1900
    return value


def speak_date(day: int, month: int, year: int | None, r: Reader, month_first: bool = False) -> str:
    name = month_name(month, r)
    if r.lang == "ms":
        spoken = f"{r.cardinal(day)} {name}"
        return f"{spoken} {r.year(year)}" if year is not None else spoken
    if month_first:
        spoken = f"{name} {r.ordinal(day)}"
        return f"{spoken}, {r.year(year)}" if year is not None else spoken
    spoken = f"the {r.ordinal(day)} of {name}"
    return f"{spoken} {r.year(year)}" if year is not None else spoken


def _valid(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


# Shopping days written "11.11", "12.12", "9.9" after a sale word: said "sebelas sebelas", "twelve twelve".
_SALE_DAY = re.compile(
    r"\b(sale|jualan|promosi|promo|kempen|campaign|flash|mega|shopee|lazada|shopping)(\s+(?:[A-Za-z]+\s+)?)"
    r"([1-9]|1[0-2])\.\3(?![\w.%]|\.[0-9])",
    re.IGNORECASE,
)


def dates(text: str, r: Reader) -> str:
    text = sub(_MONTH_ALONE, lambda m: f"{m.group(1)} {month_name(month_number(m.group(2)), r)}", text)
    if not has_digit(text):
        return text
    if "." in text:
        text = sub(_SALE_DAY, lambda m: f"{m.group(1)}{m.group(2)}{r.cardinal(int(m.group(3)))} {r.cardinal(int(m.group(3)))}", text)

    def numeric(m: re.Match[str]) -> str:
        first, sep, second, year = int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)
        if sep == "." and len(year) == 2:
            return m.group()  # "1.2.24" is more likely a version than a date
        day, month = first, second
        if not _valid(day, month) and _valid(second, first):
            day, month = second, first  # month-first (US) order
        if not _valid(day, month):
            return m.group()
        return speak_date(day, month, _full_year(year), r)

    def iso(m: re.Match[str]) -> str:
        year, month, day = int(m.group(1)), int(m.group(3)), int(m.group(4))
        return speak_date(day, month, year, r) if _valid(day, month) else m.group()

    def day_month(m: re.Match[str]) -> str:
        day = int(m.group(2))
        if not 1 <= day <= 31:
            return m.group()
        year = int(m.group(4)) if m.group(4) else None
        spoken = speak_date(day, month_number(m.group(3)), year, r)
        if m.group(1) and r.lang == "ms":
            spoken = f"{m.group(1)} {spoken}"
        return spoken

    def month_day(m: re.Match[str]) -> str:
        day = int(m.group(2))
        if not 1 <= day <= 31:
            return m.group()
        year = int(m.group(4)) if m.group(4) else None
        if r.lang == "ms":
            # Malay puts the day first whatever the written order.
            return speak_date(day, month_number(m.group(1)), year, r)
        return speak_date(day, month_number(m.group(1)), year, r, month_first=True)

    def month_year(m: re.Match[str]) -> str:
        return f"{month_name(month_number(m.group(1)), r)} {r.year(int(m.group(2)))}"

    text = sub(_WEEKDAY, lambda m: _WEEKDAYS[m.group(1)][r.lang != "ms"], text)
    text = sub(_NUMERIC, numeric, text)
    text = sub(_ISO, iso, text)
    text = sub(_DAY_MONTH, day_month, text)
    text = sub(_MONTH_DAY, month_day, text)
    return sub(_MONTH_YEAR, month_year, text)
