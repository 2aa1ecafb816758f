"""Numbers left after the specific rules: ordinals, years and decades, fractions, versions,
letter-digit tokens ("A380", "MH370", "4G") and plain numbers.

English reads a 4-digit number from 1100 to 2099 as a year after year words ("in 1987") or where it
is not counting something ("Budget 2024", "2024 was"); "He scored 1999 points" stays a cardinal.
Malay always reads the cardinal ("tahun 1987" -> "tahun seribu sembilan ratus lapan puluh tujuh").
In letter-digit tokens, up to two digits are a number ("PS5" -> "P S five"), more are read one by one
("MH370" -> "M H three seven zero").
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader, en_ordinal, pluralize_last
from app.text.rules import code_named_before, has_digit
from app.text.rules.dates import month_name, speak_date

_ORDINAL_MS = re.compile(r"\b([Kk])e-([0-9]+)\b")
_ORDINAL_EN = re.compile(r"(?<![\w.,])([0-9]+)(st|nd|rd|th)\b")
_DECADE_EN = re.compile(r"(?<![\w.,'’])(['’]?)((?:1[0-9]|20)?[0-9])0['’]?s\b")
_DECADE_MS = re.compile(r"(?<![\w.,])([0-9]{1,3}0)-an\b")
_YEAR_CONTEXT = frozenset(
    (  # noqa: SIM905
        "in since year years by until till from before after of circa during the early late mid around "
        "between and to class batch"
    ).split()
)
_YEAR = re.compile(r"(?<![\w.,$-])(1[1-9][0-9]{2}|20[0-9]{2})(?![\w%]|[.,][0-9])")
_PREV_WORD = re.compile(r"(\S+)\s+$")
_EXPIRY = re.compile(r"\b(?:expiry|expires?|exp|valid\s+(?:thru|through|until)|luput|tamat)\b", re.IGNORECASE)
_NEXT_WORD = re.compile(r"\s+([a-z]\S*)")
_FRACTION = re.compile(r"(?<![\w/.,])([0-9]{1,3}(?:\.[0-9])?)/([0-9]{1,3})(?![\w/]|[.,][0-9])")
# "d/m" is a date after these words (or a weekday), a fraction after the quantity words below; with
# neither, a date when the first number is at least the second ("12/12", "25/12"), else a fraction ("3/4").
_DATE_CONTEXT = frozenset(
    (  # noqa: SIM905
        "pada sebelum selepas hingga sehingga sejak mulai tarikh bermula on by before after until till from "
        "since dated date due tiba sampai dihantar diterima dijangka berakhir tamat luput sah cuti ini esok "
        "arrive arrives arriving delivered deliver delivery expires expiry valid ends starts start end "
        "isnin selasa rabu khamis jumaat sabtu ahad monday tuesday wednesday thursday friday saturday sunday "
        "mon tue wed thu fri sat sun"
    ).split()
)
_QUANTITY_CONTEXT = frozenset(
    (  # noqa: SIM905
        "harga price nisbah ratio markah mark marks skor score kadar rate bahagian part portion daripada "
        "kira calculate jawapan answer nilai value purata average pecahan fraction"
    ).split()
)
_RATIO = re.compile(r"(?<![\w.,:])([0-9]+):([0-9]+)(?![\w:]|[.,][0-9])")
_VERSION = re.compile(r"(?<![\w.,])[0-9]+(?:\.[0-9]+){2,}(?![\w]|\.[0-9])")
_ALNUM = re.compile(
    r"(?<![\w/-])(?=[A-Za-z0-9/-]*[0-9])(?=[A-Za-z0-9/-]*[A-Za-z])[A-Za-z0-9]+(?:[-/][A-Za-z0-9]+)*(?![\w/-])"
)
_ALNUM_PIECE = re.compile(r"[A-Za-z]+|[0-9]+|/")
_POSTCODE = re.compile(r"(?<![\w.,])[0-9]{5}(?=\s+[A-Z][a-z])|(?<=, )[0-9]{5}(?=\s+[A-Z](?:[A-Z]|\b))")  # "50400 KL"
_PLAIN = re.compile(r"(?<![\w.,])(?:(?<=\s)-|^-)?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?![\w]|[.,][0-9])")
_VOWELS = set("AEIOUaeiou")

_FRACTIONS_MS = {(1, 2): "setengah", (1, 4): "suku", (3, 4): "tiga suku"}


def _en_fraction(num: int, den: int, r: Reader) -> str:
    if den == 2:
        name = "half" if num == 1 else "halves"
    elif den == 4:
        name = "quarter" if num == 1 else "quarters"
    else:
        name = r.ordinal(den) + ("" if num == 1 else "s")
    return f"{r.cardinal(num)} {name}"


_HARIBULAN = re.compile(r"(?<![\w.,])([0-9]{1,2})\s?hb\b")


def ordinals(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text
    if "hb" in text:  # "25hb": the 25th day of the month
        text = sub(_HARIBULAN, lambda m: f"{r.cardinal(int(m.group(1)))} haribulan", text)

    def malay(m: re.Match[str]) -> str:
        n = int(m.group(2))
        word = r.ordinal(n)
        return word.capitalize() if m.group(1) == "K" else word

    text = sub(_ORDINAL_MS, malay, text)
    # Written with an English suffix ("3rd"), the ordinal is spoken in English in both languages.
    return sub(_ORDINAL_EN, lambda m: en_ordinal(int(m.group(1))), text)


def years(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text
    if r.lang == "ms":
        return sub(_DECADE_MS, lambda m: pluralize_last(r.cardinal(int(m.group(1))), "ms"), text)

    def decade(m: re.Match[str]) -> str:
        digits = m.group(2) + "0"
        if m.group(1) or len(digits) == 2:
            return pluralize_last(r.cardinal(int(digits)), "en")
        return pluralize_last(r.year(int(digits)), "en")

    text = sub(_DECADE_EN, decade, text)

    def year(m: re.Match[str]) -> str:
        before = _PREV_WORD.search(text, 0, m.start())
        prev = before.group(1).lower() if before else ""
        after = _NEXT_WORD.match(text, m.end())
        if prev in _YEAR_CONTEXT or not after:
            return r.year(int(m.group(1)))
        # Followed by a lowercase word: a count ("1999 points") unless a name precedes ("Budget 2024 was").
        if before and before.group(1)[:1].isupper():
            return r.year(int(m.group(1)))
        return m.group()

    return sub(_YEAR, year, text)


def fractions(text: str, r: Reader) -> str:
    """Fractions ("2/3" -> "dua per tiga" / "two thirds"), day/month dates ("31/12", "pada 10/4"), ratios ("16:9")."""
    if ":" in text:
        text = sub(_RATIO,
            lambda m: f"{r.cardinal(int(m.group(1)))} {r.word('ratio')} {r.cardinal(int(m.group(2)))}", text
        )
    if "/" not in text:
        return text

    def speak(m: re.Match[str]) -> str:
        num_text, den = m.group(1), int(m.group(2))
        num = float(num_text)
        if (num, den) == (24, 7):
            return f"{r.cardinal(24)} {r.cardinal(7)}"
        if den == 0:
            return m.group()
        spoken_num = r.number(num_text)
        before = _PREV_WORD.search(text, 0, m.start())
        prev = before.group(1).lower().strip("(,:") if before else ""
        if prev in _DATE_CONTEXT and "." not in num_text and 1 <= num <= 31 and 1 <= den <= 12:
            return speak_date(int(num), den, None, r)
        expiry = _EXPIRY.search(text, max(0, m.start() - 40), m.start())
        if expiry and num_text.isdigit() and len(m.group(2)) == 2 and 1 <= num <= 12:
            return f"{month_name(int(num), r)} {r.year(2000 + den)}"  # a card's "08/27": August 2027
        if num <= den and den in (5, 10, 100):
            # A rating or score: "8/10", "4.5/5", "85/100".
            return f"{spoken_num} {'daripada' if r.lang == 'ms' else 'out of'} {r.cardinal(den)}"
        if num == den > 12 and num_text.isdigit():
            return f"{spoken_num} {spoken_num}"  # "50/50": an even split ("11/11" is a date)
        if "." in num_text:
            return f"{spoken_num} {'per' if r.lang == 'ms' else 'over'} {r.cardinal(den)}"
        num = int(num)
        is_date = prev in _DATE_CONTEXT or (prev not in _QUANTITY_CONTEXT and num >= den)
        if 1 <= num <= 31 and 1 <= den <= 12 and is_date:
            return speak_date(num, den, None, r)
        if r.lang == "ms":
            return _FRACTIONS_MS.get((num, den), f"{spoken_num} per {r.cardinal(den)}")
        if num < den and den in (2, 3, 4, 8):
            return _en_fraction(num, den, r)
        return f"{spoken_num} over {r.cardinal(den)}"

    return sub(_FRACTION, speak, text)


def _speak_alnum_piece(piece: str, r: Reader) -> str:
    if piece == "/":
        return r.word("slash")
    if piece.isdigit():
        return (
            r.cardinal(int(piece)) if len(piece) <= 2 and not (len(piece) == 2 and piece[0] == "0") else r.digits(piece)
        )
    if piece.isupper() and (len(piece) <= 4 or not _VOWELS & set(piece)):
        return " ".join(piece)  # "MH" -> "M H"
    return piece


def alphanumerics(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text

    def speak(m: re.Match[str]) -> str:
        return " ".join(_speak_alnum_piece(p, r) for p in _ALNUM_PIECE.findall(m.group()))

    return sub(_ALNUM, speak, text)


def plain_numbers(text: str, r: Reader) -> str:
    if not has_digit(text):
        return text
    point, to = r.word("version_point"), f" {r.word('to')} "
    text = sub(_POSTCODE, lambda m: r.digits(m.group()), text)
    text = sub(_VERSION, lambda m: f" {point} ".join(r.number(p) for p in m.group().split(".")), text)

    def speak(m: re.Match[str]) -> str:
        written = m.group()
        code = len(written) >= 3 and written.isdigit() and not text.startswith(to, m.end())  # "order 100-200": a range
        if code and code_named_before(text, m.start()):
            return r.digits(written)
        return r.number(written)

    return sub(_PLAIN, speak, text)
