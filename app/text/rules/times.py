"""Clock times: "3pm", "10:30am", "14:30", "pukul 8.30".

24-hour times (hour 13-23, 0, or a leading zero like "07:15") are spoken on the 12-hour clock with the
part of day, as Malaysians say them. Malay: "pukul 8.30 pagi" -> "pukul lapan tiga puluh minit pagi",
"14:30" -> "dua tiga puluh minit petang". English: "3:05 pm" -> "three oh five P M", "8:00" -> "eight o'clock".
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader
from app.text.rules import has_digit

_PERIOD_WORDS_MS = r"(?:pagi|petang|malam|tengah\s+hari|tengah\s+malam|subuh|senja)"
_AMPM = re.compile(r"(?<![\w:.])([0-9]{1,2})(?:[:.]([0-9]{2}))?\s*([AaPp])\.?\s?[Mm](\.?)(?![A-Za-z])")
_CLOCK = re.compile(
    r"(?<![\w:.])([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?![\w:]|\.[0-9])" + rf"(\s+{_PERIOD_WORDS_MS}\b)?"
)
# A dotted time is only a time after "pukul/jam" or before a Malay part of day ("8.30 pagi").
_DOTTED = re.compile(
    rf"(?:\b(pukul|jam|pkl|Pukul|Jam)\s+)([0-9]{{1,2}})\.([0-9]{{2}})(?![\w]|\.[0-9])(\s+{_PERIOD_WORDS_MS}\b)?"
    rf"|(?<![\w.])([0-9]{{1,2}})\.([0-9]{{2}})(\s+{_PERIOD_WORDS_MS}\b)"
)


# "pukul 0800", "0800hrs": military time.
_MILITARY = re.compile(
    r"(?:\b(pukul|jam|Pukul|Jam)\s+)([01][0-9]|2[0-3])([0-5][0-9])(?:\s?(?:hrs|HRS|H|jam)\b)?(?![\w])"
    r"|(?<![\w.,])([01][0-9]|2[0-3])([0-5][0-9])\s?(?:hrs|HRS|H)\b"
)


def _period_ms(hour24: int) -> str:
    if hour24 == 0:
        return "tengah malam"
    if hour24 < 12:
        return "pagi"
    if hour24 < 14:
        return "tengah hari"
    if hour24 < 19:
        return "petang"
    return "malam"


def speak_time(hour: int, minute: int, second: int, r: Reader, period: str | None, written_period: str = "") -> str:
    """`period` is "am"/"pm" (written), "24h" (read the part of day from the hour) or None (unknown)."""
    if period == "am":
        hour24 = 0 if hour == 12 else hour
    elif period == "pm":
        hour24 = hour if hour == 12 else hour + 12
    else:
        hour24 = hour
    hour12 = (hour24 % 12 or 12) if period else hour
    if r.lang == "ms":
        parts = [r.cardinal(hour12)]
        if minute:
            parts.append(f"{r.cardinal(minute)} minit")
        if second:
            parts.append(f"{r.cardinal(second)} saat")
        if written_period:
            parts.append(written_period)
        elif period:
            parts.append(_period_ms(hour24))
        return " ".join(parts)
    parts = [r.cardinal(hour12)]
    if minute:
        parts.append(("oh " if minute < 10 else "") + r.cardinal(minute))
    elif not period and not written_period:
        parts.append("o'clock")
    if second:
        parts.append(f"and {r.cardinal(second)} seconds")
    if written_period:
        parts.append(written_period)
    elif period:
        parts.append("A M" if hour24 < 12 else "P M")
    return " ".join(parts)


_PARTS = {"pg": "pagi", "ptg": "petang", "mlm": "malam"}
_PART_AFTER_HOUR = re.compile(r"(?<![\w.])([0-9]{1,2}(?:[.:][0-5][0-9])?)\s?(pg|ptg|mlm)\b")


def parts_of_day(text: str, r: Reader) -> str:
    """Malay "pg", "ptg", "mlm" after an hour, with or without a space: "9 pg", "5.30ptg" -> "9 pagi", "5.30 petang"
    ("pg" alone is also "page"). Before the ranges: "9 pg - 6 ptg" is a range of times."""
    if r.lang != "ms" or not ("pg" in text or "ptg" in text or "mlm" in text):
        return text
    return sub(_PART_AFTER_HOUR, lambda m: f"{m.group(1)} {_PARTS[m.group(2)]}", text)


def _is_24h(hour_text: str) -> bool:
    hour = int(hour_text)
    return hour >= 13 or hour == 0 or (len(hour_text) == 2 and hour_text[0] == "0")


def times(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text

    def ampm(m: re.Match[str]) -> str:
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return m.group()
        spoken = speak_time(hour, minute, 0, r, "am" if m.group(3) in "Aa" else "pm")
        # "at 3 p.m." at the very end: the final dot also ends the sentence.
        return spoken + "." if m.group(4) and m.end() == len(text) else spoken

    def clock(m: re.Match[str]) -> str:
        hour, minute, second = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
        if hour > 24 or minute > 59 or second > 59:
            return m.group()
        written = " ".join(m.group(4).split()) if m.group(4) else ""
        period = "24h" if _is_24h(m.group(1)) and not written else None
        if period and hour == 24:
            hour = 0
        return speak_time(hour, minute, second, r, period, written)

    def dotted(m: re.Match[str]) -> str:
        if m.group(2):
            prefix, hour_text, minute, written = m.group(1) + " ", m.group(2), int(m.group(3)), m.group(4)
        else:
            prefix, hour_text, minute, written = "", m.group(5), int(m.group(6)), m.group(7)
        hour = int(hour_text)
        if hour > 24 or minute > 59:
            return m.group()
        written = " ".join(written.split()) if written else ""
        period = "24h" if _is_24h(hour_text) and not written else None
        return prefix + speak_time(hour, minute, 0, r, period, written)

    def military(m: re.Match[str]) -> str:
        prefix = m.group(1) + " " if m.group(1) else ""
        hour_text, minute = (m.group(2), m.group(3)) if m.group(2) else (m.group(4), m.group(5))
        return prefix + speak_time(int(hour_text), int(minute), 0, r, "24h")

    text = sub(_AMPM, ampm, text)
    text = sub(_MILITARY, military, text)
    text = sub(_DOTTED, dotted, text)
    return sub(_CLOCK, clock, text)
