"""How numbers are spoken in one language: cardinals, digits, decimals, ordinals, years.

A `Reader` carries everything the rules need to speak in one language: number words and the small
connective words ("hingga"/"to", "peratus"/"percent"). `MalayReader` takes malaya's `to_cardinal`
as a constructor argument, so this module never imports malaya.

Conventions (the test table follows them):
- Malay numbers are malaya's words, space-separated: "dua puluh satu", "seratus", "seribu".
- English numbers are British, no hyphens: "one hundred and twenty one", "two thousand and five".
- Decimals read digit by digit: "tiga perpuluhan satu empat", "three point one four".
"""

from __future__ import annotations

from collections.abc import Callable

_DIGITS_MS = ("kosong", "satu", "dua", "tiga", "empat", "lima", "enam", "tujuh", "lapan", "sembilan")
_DIGITS_EN = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

_EN_ONES = (  # noqa: SIM905
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = (  # noqa: SIM905
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety"
).split()
_EN_SCALES = ("", "thousand", "million", "billion", "trillion", "quadrillion", "quintillion")
_EN_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
    "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip


def _en_below_thousand(n: int) -> str:
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f" {_EN_ONES[ones]}" if ones else "")
    hundreds, rest = divmod(n, 100)
    words = f"{_EN_ONES[hundreds]} hundred"
    return f"{words} and {_en_below_thousand(rest)}" if rest else words


def en_cardinal(n: int) -> str:
    """123 -> "one hundred and twenty three"; 1005 -> "one thousand and five" (British "and")."""
    if n < 0:
        return "minus " + en_cardinal(-n)
    if n < 1000:
        return _en_below_thousand(n)
    groups: list[int] = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    if len(groups) > len(_EN_SCALES):
        raise OverflowError("number too large to read")
    words: list[str] = []
    for scale in range(len(groups) - 1, -1, -1):
        group = groups[scale]
        if not group:
            continue
        if scale == 0 and group < 100:
            words.append("and")
        words.append(_en_below_thousand(group))
        if scale:
            words.append(_EN_SCALES[scale])
    return " ".join(words)


def en_ordinal(n: int) -> str:
    """21 -> "twenty first"; 100 -> "one hundredth"."""
    head, _, last = en_cardinal(n).rpartition(" ")
    if last in _EN_ORDINAL_WORDS:
        last = _EN_ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def en_year(n: int) -> str:
    """1987 -> "nineteen eighty seven"; 2005 -> "two thousand and five"; 2024 -> "twenty twenty four"."""
    if n < 1000 or n >= 10000 or 2000 <= n < 2010:
        return en_cardinal(n)
    century, rest = divmod(n, 100)
    if rest == 0:
        return f"{en_cardinal(century)} hundred"
    if rest < 10:
        return f"{en_cardinal(century)} oh {_EN_ONES[rest]}"
    return f"{en_cardinal(century)} {en_cardinal(rest)}"


def pluralize_last(words: str, lang: str) -> str:
    """A decade from its year: "nineteen eighty" -> "nineteen eighties"; Malay "lapan puluh" -> "lapan puluhan"."""
    if lang == "ms":
        return words + "an"
    if words.endswith("y"):
        return words[:-1] + "ies"
    return words + ("es" if words.endswith("x") else "s")


_MAX_CARDINAL = 10**15  # larger numbers (an account number without separators) are read digit by digit


class Reader:
    """Number words and connectives of one language; subclasses fill the vocabulary."""

    lang: str = ""
    digit_words: tuple[str, ...] = ()
    words: dict[str, str] = {}

    def cardinal(self, n: int) -> str:
        raise NotImplementedError

    def ordinal(self, n: int) -> str:
        raise NotImplementedError

    def year(self, n: int) -> str:
        return self.cardinal(n)

    def word(self, key: str) -> str:
        return self.words[key]

    def digits(self, text: str) -> str:
        """Read each ASCII digit: "012" -> "kosong satu dua"."""
        return " ".join(self.digit_words[ord(c) - 48] for c in text if "0" <= c <= "9")

    def number(self, text: str) -> str:
        """A written number: "1,234.5" / "-3" / "0071"; leading zeros and 10+ digits are read digit by digit."""
        text = text.replace(",", "")
        sign = ""
        if text[:1] in "-−":
            sign, text = self.word("minus") + " ", text[1:]
        whole, _, frac = text.partition(".")
        if not whole:
            whole = "0"
        if (len(whole) > 1 and whole[0] == "0") or len(whole) > 9:
            spoken = self.digits(whole)
        else:
            spoken = self.cardinal(int(whole))
        if frac:
            spoken += f" {self.word('point')} {self.digits(frac)}"
        return sign + spoken


class MalayReader(Reader):
    lang = "ms"
    digit_words = _DIGITS_MS
    words = {
        "point": "perpuluhan", "minus": "negatif", "to": "hingga", "percent": "peratus", "and": "dan",
        "at": "at", "dot": "dot", "slash": "slash", "dash": "dash", "underscore": "underscore",
        "plus": "tambah", "times": "kali", "number": "nombor", "equals": "sama dengan", "about": "lebih kurang",
        "or": "atau", "version_point": "titik", "degree": "darjah", "ratio": "nisbah", "star": "bintang",
        "hash": "pagar",
    }  # fmt: skip

    def __init__(self, to_cardinal: Callable[[int], str]) -> None:
        self._to_cardinal = to_cardinal

    def cardinal(self, n: int) -> str:
        if abs(n) >= _MAX_CARDINAL:
            return self.digits(str(n))
        words = self._to_cardinal(n)
        # malaya says "satu juta satu ribu"; Malay says "satu juta seribu".
        return words.replace("juta satu ribu", "juta seribu").replace("bilion satu ribu", "bilion seribu")

    def ordinal(self, n: int) -> str:
        return "pertama" if n == 1 else "ke" + self.cardinal(n)


class EnglishReader(Reader):
    lang = "en"
    digit_words = _DIGITS_EN
    words = {
        "point": "point", "minus": "minus", "to": "to", "percent": "percent", "and": "and", "at": "at",
        "dot": "dot", "slash": "slash", "dash": "dash", "underscore": "underscore", "plus": "plus",
        "times": "times", "number": "number", "equals": "equals", "about": "about", "or": "or",
        "version_point": "point", "degree": "degrees", "ratio": "to", "star": "star", "hash": "hash",
    }  # fmt: skip

    def cardinal(self, n: int) -> str:
        if abs(n) >= _MAX_CARDINAL:
            return self.digits(str(n))
        return en_cardinal(n)

    def ordinal(self, n: int) -> str:
        return en_ordinal(n)

    def year(self, n: int) -> str:
        return en_year(n)
