"""Money: a currency sign or code with an amount, K/M/B or word scales, and ranges.

Malay: "RM5.50" -> "lima ringgit lima puluh sen"; "RM2.5 bilion" -> "dua perpuluhan lima bilion ringgit";
"RM5k" -> "lima ribu ringgit" (K is expanded); "RM100 hingga 200" -> "seratus hingga dua ratus ringgit".
English: "$5.99" -> "five dollars ninety nine cents"; "USD 1.2M" -> "one point two million US dollars".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from app.text.offsets import sub
from app.text.readers import Reader
from app.text.rules import has_digit


@dataclass(frozen=True)
class Currency:
    ms: str
    en_one: str
    en_many: str
    minor_ms: str = ""  # "" = no minor unit: decimals are read as decimals
    minor_en_one: str = ""
    minor_en_many: str = ""

    def name(self, r: Reader, one: bool) -> str:
        if r.lang == "ms":
            return self.ms
        return self.en_one if one else self.en_many

    def minor(self, r: Reader, one: bool) -> str:
        if r.lang == "ms":
            return self.minor_ms
        return self.minor_en_one if one else self.minor_en_many


_RINGGIT = Currency("ringgit", "ringgit", "ringgit", "sen", "sen", "sen")
_DOLLAR = Currency("dolar", "dollar", "dollars", "sen", "cent", "cents")
_USD = Currency("dolar Amerika", "U S dollar", "U S dollars", "sen", "cent", "cents")
_SGD = Currency("dolar Singapura", "Singapore dollar", "Singapore dollars", "sen", "cent", "cents")
_AUD = Currency("dolar Australia", "Australian dollar", "Australian dollars", "sen", "cent", "cents")
_EUR = Currency("euro", "euro", "euros", "sen", "cent", "cents")
_GBP = Currency("paun", "pound", "pounds", "peni", "penny", "pence")
_JPY = Currency("yen", "yen", "yen")
_IDR = Currency("rupiah", "rupiah", "rupiah")
_INR = Currency("rupee", "rupee", "rupees")
_CNY = Currency("yuan", "yuan", "yuan")
_THB = Currency("baht", "baht", "baht")

_PREFIXES = {
    "RM": _RINGGIT, "MYR": _RINGGIT, "US$": _USD, "USD": _USD, "S$": _SGD, "SGD": _SGD, "A$": _AUD,
    "AUD": _AUD, "$": _DOLLAR, "€": _EUR, "EUR": _EUR, "£": _GBP, "GBP": _GBP, "¥": _JPY, "JPY": _JPY,
    "RP": _IDR, "IDR": _IDR, "₹": _INR, "INR": _INR, "RMB": _CNY, "CNY": _CNY, "THB": _THB, "฿": _THB,
}  # fmt: skip
_SUFFIXES = ("MYR", "USD", "SGD", "AUD", "EUR", "GBP", "JPY", "IDR", "INR", "CNY", "THB")

_AMOUNT = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_SCALE = (
    r"(?:\s?(?:juta|million|bilion|billion|trilion|trillion|ribu|thousand|mil|bil)|(?:k|K|m|M|mn|b|B|bn))(?![A-Za-z])"
)
_THOUSAND = {"k", "ribu", "thousand"}
_SCALE_WORDS = {
    "m": 1, "mn": 1, "mil": 1, "juta": 1, "million": 1,
    "b": 2, "bn": 2, "bil": 2, "bilion": 2, "billion": 2,
    "trilion": 3, "trillion": 3,
}  # fmt: skip
_SCALE_MS = ("", "juta", "bilion", "trilion")
_SCALE_EN = ("", "million", "billion", "trillion")

_PREFIX = "|".join(re.escape(p) for p in sorted(_PREFIXES, key=len, reverse=True) if p != "RP") + "|Rp"
_MONEY = re.compile(
    rf"(?:(?<![\w-])(?P<neg>[-−]))?(?<![\w$€£¥₹฿])(?P<cur>{_PREFIX})\s?(?P<amount>{_AMOUNT})(?P<scale>{_SCALE})?"
    rf"(?:\s+(?P<to>hingga|sampai|to)\s+(?P<amount2>{_AMOUNT})(?P<scale2>{_SCALE})?(?![\w.,]?[0-9]))?"
    r"(?![\w])",
    re.IGNORECASE,
)
_MONEY_SUFFIX = re.compile(rf"(?<![\w.,])(?P<amount>{_AMOUNT})(?P<scale>{_SCALE})?\s?(?P<cur>{'|'.join(_SUFFIXES)})\b")


_AT_PRICE = re.compile(r"(?<=\s)@\s?(?=(?:RM|rm|US\$|USD|S\$|\$|€|£)?\s?[0-9])")


def _scale_index(scale: str | None) -> tuple[bool, int]:
    """(is thousand, power of a million) for a written scale."""
    if not scale:
        return False, 0
    word = scale.strip().lower()
    if word in _THOUSAND:
        return True, 0
    return False, _SCALE_WORDS[word]


def speak_amount(amount: str, scale: str | None, cur: Currency, r: Reader, with_name: bool = True) -> str:
    amount = amount.replace(",", "")
    if not cur.minor_ms and re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{3})+", amount):
        amount = amount.replace(".", "")  # "Rp50.000": dots group thousands
    thousand, power = _scale_index(scale)
    if thousand:
        value = Decimal(amount) * 1000
        if value == value.to_integral_value():
            amount = str(int(value))
        else:
            spoken = f"{r.number(amount)} {'ribu' if r.lang == 'ms' else 'thousand'}"
            return f"{spoken} {cur.name(r, False)}" if with_name else spoken
    if power:
        spoken = f"{r.number(amount)} {(_SCALE_MS if r.lang == 'ms' else _SCALE_EN)[power]}"
        return f"{spoken} {cur.name(r, False)}" if with_name else spoken
    whole, _, frac = amount.partition(".")
    if frac and (len(frac) > 2 or not cur.minor_ms):
        spoken = r.number(amount)
        return f"{spoken} {cur.name(r, False)}" if with_name else spoken
    units = int(whole or "0")
    cents = int(frac.ljust(2, "0")) if frac else 0
    if not with_name:
        return r.cardinal(units) if not cents else f"{r.cardinal(units)} {r.word('point')} {r.digits(frac)}"
    parts = []
    if units or not cents:
        parts.append(f"{r.cardinal(units)} {cur.name(r, units == 1)}")
    if cents:
        parts.append(f"{r.cardinal(cents)} {cur.minor(r, cents == 1)}")
    return " ".join(parts)


def money(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text

    def prefixed(m: re.Match[str]) -> str:
        cur = _PREFIXES[m.group("cur").upper()]
        sign = f"{r.word('minus')} " if m.group("neg") else ""  # "-RM12.30": a balance owed
        if not m.group("amount2"):
            return sign + speak_amount(m.group("amount"), m.group("scale"), cur, r)
        low = speak_amount(m.group("amount"), m.group("scale"), cur, r, with_name=False)
        high = speak_amount(m.group("amount2"), m.group("scale2"), cur, r)
        return f"{sign}{low} {m.group('to')} {high}"

    def suffixed(m: re.Match[str]) -> str:
        return speak_amount(m.group("amount"), m.group("scale"), _PREFIXES[m.group("cur")], r)

    if "@" in text:
        text = sub(_AT_PRICE, "pada " if r.lang == "ms" else "at ", text)  # "3 baju @ RM20": each at
    text = sub(_MONEY, prefixed, text)
    return sub(_MONEY_SUFFIX, suffixed, text)
