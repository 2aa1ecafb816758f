"""Percentages, units, K/M/B suffixes and multipliers after a number.

"25%" -> "dua puluh lima peratus" / "twenty five percent"; "61.2 kg" -> "enam puluh satu perpuluhan dua
kilogram" / "sixty one point two kilograms"; "35°C" -> "tiga puluh lima darjah Celsius"; "10K" -> "sepuluh
ribu"; "3x" -> "tiga kali" / "three times". English unit names use British spelling (Malaysian English).
"""

from __future__ import annotations

import re
from decimal import Decimal

from app.text.offsets import sub
from app.text.readers import Reader
from app.text.rules import has_digit

# written unit -> (Malay, English singular, English plural); Malay None: left as written in Malay ("ms" after a number
# is "muka surat", pages, as often as milliseconds)
_UNITS: dict[str, tuple[str | None, str, str]] = {
    "km/h": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
    "km/j": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
    "kmj": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
    "kmh": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
    "kph": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
    "mph": ("batu sejam", "mile per hour", "miles per hour"),
    "sq ft": ("kaki persegi", "square foot", "square feet"),
    "sqft": ("kaki persegi", "square foot", "square feet"),
    "kaki persegi": ("kaki persegi", "square foot", "square feet"),
    "m²": ("meter persegi", "square metre", "square metres"),
    "km²": ("kilometer persegi", "square kilometre", "square kilometres"),
    "°C": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "ºC": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "℃": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "° C": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "celsius": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "Celsius": ("darjah Celsius", "degree Celsius", "degrees Celsius"),
    "°F": ("darjah Fahrenheit", "degree Fahrenheit", "degrees Fahrenheit"),
    "℉": ("darjah Fahrenheit", "degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("darjah", "degree", "degrees"),
    "kg": ("kilogram", "kilogram", "kilograms"),
    "KG": ("kilogram", "kilogram", "kilograms"),
    "Kg": ("kilogram", "kilogram", "kilograms"),
    "mg": ("miligram", "milligram", "milligrams"),
    "g": ("gram", "gram", "grams"),
    "km": ("kilometer", "kilometre", "kilometres"),
    "KM": ("kilometer", "kilometre", "kilometres"),
    "Km": ("kilometer", "kilometre", "kilometres"),
    "cm": ("sentimeter", "centimetre", "centimetres"),
    "mm": ("milimeter", "millimetre", "millimetres"),
    "m": ("meter", "metre", "metres"),
    "ml": ("mililiter", "millilitre", "millilitres"),
    "mL": ("mililiter", "millilitre", "millilitres"),
    "ML": ("mililiter", "millilitre", "millilitres"),
    "l": ("liter", "litre", "litres"),
    "L": ("liter", "litre", "litres"),
    "TB": ("terabait", "terabyte", "terabytes"),
    "GB": ("gigabait", "gigabyte", "gigabytes"),
    "MB": ("megabait", "megabyte", "megabytes"),
    "KB": ("kilobait", "kilobyte", "kilobytes"),
    "kB": ("kilobait", "kilobyte", "kilobytes"),
    "GHz": ("gigahertz", "gigahertz", "gigahertz"),
    "MHz": ("megahertz", "megahertz", "megahertz"),
    "kHz": ("kilohertz", "kilohertz", "kilohertz"),
    "Hz": ("hertz", "hertz", "hertz"),
    "kWh": ("kilowatt jam", "kilowatt hour", "kilowatt hours"),
    "kW": ("kilowatt", "kilowatt", "kilowatts"),
    "W": ("watt", "watt", "watts"),
    "V": ("volt", "volt", "volts"),
    "mAh": ("miliampere jam", "milliamp hour", "milliamp hours"),
    "min": ("minit", "minute", "minutes"),
    "mins": ("minit", "minute", "minutes"),
    "sec": ("saat", "second", "seconds"),
    "secs": ("saat", "second", "seconds"),
    "ms": (None, "millisecond", "milliseconds"),
    "s": ("saat", "second", "seconds"),  # not after a multiple of ten: "30s", "1990s" are decades
    "hr": ("jam", "hour", "hours"),
    "hrs": ("jam", "hour", "hours"),
    "sen": ("sen", "sen", "sen"),
    "ft": ("kaki", "foot", "feet"),
    "lb": ("paun", "pound", "pounds"),
    "lbs": ("paun", "pound", "pounds"),
    "Mbps": ("megabit sesaat", "megabit per second", "megabits per second"),
    "Gbps": ("gigabit sesaat", "gigabit per second", "gigabits per second"),
    "km/jam": ("kilometer sejam", "kilometre per hour", "kilometres per hour"),
}
# The same units in the other casings people type ("3.5gb", "750Mb", "72KG", "39.1°c"). Not "G", "M"
# or "C" alone: "4G" is a network, "2M" is two million, "3C" is a class (bare "c" is handled below).
for _written in ("TB", "GB", "MB", "KB", "GHz", "MHz", "kWh", "mAh", "Mbps", "Gbps", "km/h", "km/j", "°C", "cm", "mm",
                 "kmj", "ºC"):  # fmt: skip
    for _variant in (_written.lower(), _written.upper(), _written.capitalize()):
        _UNITS.setdefault(_variant, _UNITS[_written])

# "RM20/kg" -> "... per kilogram": the unit after a slash, Malay and English names.
_PER_UNITS = {
    "kg": ("kilogram", "kilogram"), "g": ("gram", "gram"), "km": ("kilometer", "kilometre"),
    "l": ("liter", "litre"), "L": ("liter", "litre"), "m": ("meter", "metre"), "ml": ("mililiter", "millilitre"),
    "hr": ("jam", "hour"), "h": ("jam", "hour"), "jam": ("jam", "hour"), "hour": ("jam", "hour"),
    "hari": ("hari", "day"), "day": ("hari", "day"), "bulan": ("bulan", "month"), "month": ("bulan", "month"),
    "mth": ("bulan", "month"), "tahun": ("tahun", "year"), "year": ("tahun", "year"), "yr": ("tahun", "year"),
    "malam": ("malam", "night"), "night": ("malam", "night"), "orang": ("orang", "person"),
    "person": ("orang", "person"), "pax": ("orang", "person"), "unit": ("unit", "unit"),
    "pc": ("unit", "piece"), "pcs": ("unit", "piece"), "minggu": ("minggu", "week"), "week": ("minggu", "week"),
    "s": ("saat", "second"), "sec": ("saat", "second"),
    "mo": ("bulan", "month"), "min": ("minit", "minute"),
}  # fmt: skip
_PER_ALT = "|".join(sorted(_PER_UNITS, key=len, reverse=True))
_PER = re.compile(rf"(?<=\w)\s?/\s?({_PER_ALT})(?![\w/])")
_NUMBER = r"(?<![\w.,-])(-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)"
_UNIT_ALT = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
# a unit ends its word; a slash may follow only before a unit it is per ("5 g/L", "3 m/s"; not "5 m/o")
_UNIT = re.compile(rf"{_NUMBER}\s?({_UNIT_ALT})(?![\w²])(?!/(?!\s?(?:{_PER_ALT})(?![\w/])))")
_PERCENT = re.compile(rf"{_NUMBER}\s?(?:%|per\s?cent\b)")
_SCALED = re.compile(rf"{_NUMBER}(K|k|M|B|bn)(?![\w])")
_TIMES = re.compile(rf"{_NUMBER}\s?[x×](?![\w])(?!\s*[0-9])")
_BY = re.compile(rf"{_NUMBER}\s?[x×]\s?(?=[0-9])")  # "3 x 4 meter": dimensions
# "39.1c", "suhu 38c": a bare c is Celsius after a decimal or in a sentence about temperature.
_BARE_CELSIUS = re.compile(rf"{_NUMBER}\s?([cC])(?![\w/])")
_TEMPERATURE = re.compile(
    r"\b(?:suhu|demam|panas|sejuk|cuaca|darjah|temperature|temp|fever|weather|hot|cold|degrees?)\b", re.IGNORECASE
)
_SCALE_WORDS = {"M": ("juta", "million"), "B": ("bilion", "billion"), "bn": ("bilion", "billion")}


# "s" is seconds only after a word of waiting or a range: "in 5s", "wait 10-15s" ("10 to 15s" by then)
_SECONDS_BEFORE = re.compile(
    r"\b(?:in|wait|after|every|for|within|takes?|took|about|only|just|than|to|dalam|tunggu|selepas|setiap|lagi|"
    r"hingga|sahaja)\s+$",
    re.IGNORECASE,
)


def _unit(m: re.Match[str], r: Reader) -> str:
    ms, en_one, en_many = _UNITS[m.group(2)]
    if m.group(2) == "s" and (m.group(1).endswith("0") or not _SECONDS_BEFORE.search(m.string, 0, m.start())):
        return m.group()  # "the 1990s", "in your 30s": a decade (the years rule); "iPhone 5s": a name
    if r.lang == "ms":
        return f"{r.number(m.group(1))} {ms}" if ms else m.group()
    return f"{r.number(m.group(1))} {en_one if m.group(1) == '1' else en_many}"


def _celsius(m: re.Match[str], text: str, r: Reader) -> str:
    if "." not in m.group(1) and not _TEMPERATURE.search(text):
        return m.group()
    ms, en_one, en_many = _UNITS["°C"]
    return f"{r.number(m.group(1))} {ms if r.lang == 'ms' else (en_one if m.group(1) == '1' else en_many)}"


def _scaled(m: re.Match[str], r: Reader) -> str:
    number, suffix = m.group(1), m.group(2)
    if suffix in "Kk":
        value = Decimal(number.replace(",", "")) * 1000
        if value == value.to_integral_value():
            return r.number(str(int(value)))
        return f"{r.number(number)} {'ribu' if r.lang == 'ms' else 'thousand'}"
    ms, en = _SCALE_WORDS[suffix]
    return f"{r.number(number)} {ms if r.lang == 'ms' else en}"


def _per(m: re.Match[str], r: Reader) -> str:
    """"/kg" -> " per kilogram"; not after a lone capital letter ("A/L": A-Level, "O/L"), unless a number comes
    before it ("5 L/hari")."""
    before = m.string[: m.start()]
    if before[-1].isupper() and (len(before) == 1 or not before[-2].isalnum()):
        prev = before[:-1].rstrip()
        if not (prev and prev[-1].isdigit()):
            return m.group()
    return f" per {_PER_UNITS[m.group(1)][0 if r.lang == 'ms' else 1]}"


def measures(text: str, r: Reader) -> str:
    if has_digit(text):
        text = sub(_PERCENT, lambda m: f"{r.number(m.group(1))} {r.word('percent')}", text)
        text = sub(_UNIT, lambda m: _unit(m, r), text)
        if "c" in text or "C" in text:
            text = sub(_BARE_CELSIUS, lambda m: _celsius(m, text, r), text)
        text = sub(_SCALED, lambda m: _scaled(m, r), text)
        text = sub(_TIMES, lambda m: f"{r.number(m.group(1))} {r.word('times')}", text)
        text = sub(_BY, lambda m: f"{r.number(m.group(1))} {'darab' if r.lang == 'ms' else 'by'} ", text)
    if "/" in text:
        text = sub(_PER, lambda m: _per(m, r), text)
    return text
