"""Numbers inside Chinese text, read in Mandarin as Malaysian Chinese speakers say them. Pure rules.

    ChineseRules()("价格是RM5.50")        # "价格是五令吉五十仙"
    ChineseRules()("2024年3月5日下午3点半")  # "二零二四年三月五日下午三点半"

Conventions (the case table follows them):
- Cardinals in 万/亿 groups: 12 -> 十二, 105 -> 一百零五, 15000 -> 一万五千, 110 -> 一百一十.
- 两 for a leading 2 before 百/千/万/亿 (200 -> 两百, 2500 -> 两千五百) and for the count 2 before a
  measure word or 点 (2个 -> 两个, 2点 -> 两点); elsewhere 二 (22 -> 二十二, 第2 -> 第二).
- Years (four digits before 年, or in a written date) are read digit by digit: 2024年 -> 二零二四年.
- Decimals 点 + digits (3.5 -> 三点五); percent 百分之 (25% -> 百分之二十五); negatives 负.
- Money: ringgit 令吉 and sen 仙 (RM5.50 -> 五令吉五十仙); US$ 美元, S$ 新元, RMB/¥ 人民币, € 欧元, £ 英镑.
- Clock times 点/分 (15:30 -> 十五点三十分, 9:05 -> 九点零五分); dd/mm/yyyy dates as 年月日.
- Codes, phone numbers and numbers with a leading zero digit by digit with 零 and 一.
- Latin words inside Chinese text are left as written (the caller reads multi-word Latin runs).
"""

from __future__ import annotations

import re

from app.text.readers import Reader

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")
_MEASURE = (
    "个|只|件|本|位|条|张|次|天|岁|杯|碗|瓶|块|部|台|辆|间|家|名|种|点|小时|分钟|周|星期|年|倍|颗|粒|支|片|份|双|"
    "套|箱|包|包|斤|公斤|公里|层|样|句|首|场|期|趟|下|口|人"
)


def zh_digits(text: str) -> str:
    return "".join(_DIGITS[ord(c) - 48] for c in text if "0" <= c <= "9")


def _below_10000(n: int, leading: bool) -> str:
    """0 < n < 10000; `leading`: first group of the number (10-19 read 十X, not 一十X)."""
    out = []
    digits = f"{n:04d}"
    zero = False
    started = False
    for i, c in enumerate(digits):
        d = int(c)
        unit = _SMALL_UNITS[3 - i]
        if d == 0:
            if started:
                zero = True
            continue
        if zero or (not started and not leading and i > 0):
            out.append("零")
        zero = False
        if d == 1 and unit == "十" and not started and leading:
            out.append("十")
        else:
            out.append(_DIGITS[d] + unit)
        started = True
    return "".join(out)


def zh_cardinal(n: int) -> str:
    """1234 -> 一千二百三十四; 200 -> 两百; 100010 -> 十万零一十."""
    if n < 0:
        return "负" + zh_cardinal(-n)
    if n == 0:
        return "零"
    if n >= 10**16:
        return zh_digits(str(n))
    groups = []
    while n:
        n, g = divmod(n, 10000)
        groups.append(g)
    out = []
    top = len(groups) - 1
    for i in range(top, -1, -1):
        g = groups[i]
        if not g:
            continue
        part = _below_10000(g, leading=i == top)
        if i != top and g < 1000 and not out[-1].endswith("零"):
            part = part if part.startswith("零") else "零" + part
        out.append(part + _BIG_UNITS[i])
    spoken = "".join(out)
    # A leading 2 before 百/千/万/亿 is 两.
    if len(spoken) > 1 and spoken[0] == "二" and spoken[1] in "百千万亿":
        spoken = "两" + spoken[1:]
    return spoken


def zh_number(text: str) -> str:
    """A written number: "1,234.5" -> 一千二百三十四点五; "007" -> 零零七; "-3" -> 负三."""
    text = text.replace(",", "")
    sign = ""
    if text[:1] in "-−":
        sign, text = "负", text[1:]
    whole, _, frac = text.partition(".")
    whole = whole or "0"
    code = (len(whole) > 1 and whole[0] == "0") or len(whole) > 12
    spoken = zh_digits(whole) if code else zh_cardinal(int(whole))
    if frac:
        spoken += "点" + zh_digits(frac)
    return sign + spoken


class ChineseReader(Reader):
    """A `Reader` for the shared contact rules (phones, emails, IC numbers) inside Chinese text."""

    lang = "zh"
    digit_words = tuple(_DIGITS)
    words = {
        "point": "点", "minus": "负", "to": "到", "percent": "百分之", "and": "和", "at": "at", "dot": "dot",
        "slash": "slash", "dash": "dash", "underscore": "underscore", "plus": "加", "times": "倍",
        "number": "号", "equals": "等于", "about": "大约", "or": "或", "version_point": "点", "degree": "度",
        "ratio": "比", "star": "星号", "hash": "井号",
    }  # fmt: skip

    def digits(self, text: str) -> str:
        return zh_digits(text)

    def cardinal(self, n: int) -> str:
        return zh_cardinal(n)

    def ordinal(self, n: int) -> str:
        return "第" + zh_cardinal(n).replace("两", "二", 1)

    def year(self, n: int) -> str:
        return zh_digits(str(n))

    def number(self, text: str) -> str:
        return zh_number(text)


_NUM = r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?|[0-9]+(?:\.[0-9]+)?"
_CURRENCY_PREFIX = {
    "RM": ("令吉", "仙"), "MYR": ("令吉", "仙"), "US$": ("美元", "分"), "USD": ("美元", "分"),
    "S$": ("新元", "分"), "SGD": ("新元", "分"), "RMB": ("人民币", ""), "CNY": ("人民币", ""), "¥": ("人民币", ""),
    "€": ("欧元", ""), "EUR": ("欧元", ""), "£": ("英镑", ""), "GBP": ("英镑", ""), "$": ("元", "分"),
}  # fmt: skip
_PREFIX = "|".join(re.escape(p) for p in sorted(_CURRENCY_PREFIX, key=len, reverse=True))
_MONEY = re.compile(rf"(?<![A-Za-z])({_PREFIX})\s?({_NUM})(\s?[kK千万]|\s?(?:mil|juta|million|[mM])(?![A-Za-z]))?", re.I)
_SCALES = {"k": "千", "千": "千", "万": "万", "m": "百万", "mil": "百万", "juta": "百万", "million": "百万"}
_UNITS = {
    "kg": "公斤", "g": "克", "mg": "毫克", "km": "公里", "m": "米", "cm": "厘米", "mm": "毫米", "ml": "毫升",
    "l": "升", "°c": "度", "℃": "度", "°": "度", "km/h": "公里每小时", "km/j": "公里每小时",
    "gb": "GB", "mb": "MB", "tb": "TB",
}  # fmt: skip
_UNIT = re.compile(
    rf"(?<![A-Za-z0-9_.-])(-?(?:{_NUM}))\s?(" + "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
    + r")(?![A-Za-z])",
    re.I,
)
_PERCENT = re.compile(rf"(?<![A-Za-z0-9_.])(-?(?:{_NUM}))\s?[%％]")
_DATE_NUMERIC = re.compile(r"(?<![A-Za-z0-9_/.])([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})(?![A-Za-z0-9_/])")
_DATE_ISO = re.compile(r"(?<![A-Za-z0-9_-])([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?![A-Za-z0-9_-])")
_YEAR = re.compile(r"(?<![A-Za-z0-9_.])([0-9]{4}|[0-9]{2}(?=年代))(?=\s?(?:年|到|至|-|–))")
_CLOCK = re.compile(r"(?<![A-Za-z0-9_:.])([0-9]{1,2}):([0-9]{2})(?![A-Za-z0-9_:])")
_RANGE = re.compile(r"(?<=[0-9])\s*[-–~～至]\s*(?=[0-9])")
_SCORE_WORDS = re.compile("比分|比赛|赢|输|打败|战胜")
_FRACTION = re.compile(r"(?<![A-Za-z0-9_/.])([0-9]+)/([0-9]+)(?![A-Za-z0-9_/])")
_ORDINAL = re.compile(r"第\s?([0-9]+)")
_TWO = re.compile(rf"(?<![A-Za-z0-9_.,])2(?=\s?(?:{_MEASURE}))")
_CODE = re.compile(r"(?<![A-Za-z0-9_.])(?<![0-9],)(?:0[0-9]{2,}|[0-9]{9,})(?![A-Za-z0-9_.])")  # not a group of "2,024"
_PLAIN = re.compile(rf"(?<![A-Za-z0-9_.])-?(?:{_NUM})(?![A-Za-z0-9_])")
# A number after a word that names a code ("订单号是12345", "验证码：482913"), and the digits of a lettered code
# ("A12345", "MH370"): digit by digit.
_NAMED_CODE = re.compile(r"((?:号码|号|码|编号)(?:是|为)?\s?[：:]?\s?)([0-9]{3,})(?![0-9A-Za-z_.])")
_LETTERED_CODE = re.compile(r"(?<![A-Za-z0-9_])([A-Za-z]{1,3})([0-9]+)(?![A-Za-z0-9_]|[.,][0-9])")


def _unit(m: re.Match[str]) -> str:
    if m.group(1).startswith("-") and _UNITS[m.group(2).lower()] == "度":
        return "零下" + zh_number(m.group(1)[1:]) + "度"  # a temperature below zero
    if m.group(2) in ("G", "M"):  # "5G" is a network, "200M" a speed (as in the Latin rules: no gram, no metre)
        return zh_number(m.group(1)) + m.group(2)
    return zh_number(m.group(1)) + _UNITS[m.group(2).lower()]


def _money(m: re.Match[str]) -> str:
    name, minor = _CURRENCY_PREFIX[m.group(1).upper() if m.group(1).isalpha() else m.group(1)]
    amount, scale = m.group(2).replace(",", ""), (m.group(3) or "").strip().lower()
    if scale:
        return zh_number(amount) + _SCALES[scale] + name
    whole, _, frac = amount.partition(".")
    if frac and minor and len(frac) <= 2:
        cents = int(frac.ljust(2, "0"))
        spoken = (zh_cardinal(int(whole)) + name) if int(whole) or not cents else ""
        return spoken + (zh_cardinal(cents) + minor if cents else "")
    return zh_number(amount) + name


def _clock(m: re.Match[str]) -> str:
    hour, minute = int(m.group(1)), int(m.group(2))
    if hour > 24 or minute > 59:
        return m.group()
    spoken = ("两" if hour == 2 else zh_cardinal(hour)) + "点"
    if minute:
        spoken += ("零" if minute < 10 else "") + zh_cardinal(minute) + "分"
    return spoken


def _date(year: str, month: str, day: str) -> str | None:
    if not (1 <= int(month) <= 12 and 1 <= int(day) <= 31):
        return None
    return f"{zh_digits(year)}年{zh_cardinal(int(month))}月{zh_cardinal(int(day))}日"


def _fraction(m: re.Match[str]) -> str:
    num, den = int(m.group(1)), int(m.group(2))
    if den == 0:
        return m.group()
    return f"{zh_cardinal(den)}分之{zh_cardinal(num)}"


def _percent(m: re.Match[str]) -> str:
    number = m.group(1)
    sign = "负" if number.startswith("-") else ""
    return f"{sign}百分之{zh_number(number.lstrip('-'))}"


def chinese_numbers(text: str) -> str:
    """Every number in `text` read in Mandarin; words in other scripts untouched."""
    if not re.search(r"[0-9]", text):
        return text
    text = _DATE_NUMERIC.sub(lambda m: _date(m.group(3), m.group(2), m.group(1)) or m.group(), text)
    text = _DATE_ISO.sub(lambda m: _date(m.group(1), m.group(2), m.group(3)) or m.group(), text)
    text = _RANGE.sub("比" if _SCORE_WORDS.search(text) else "到", text)
    text = _YEAR.sub(lambda m: zh_digits(m.group(1)), text)
    text = _CLOCK.sub(_clock, text)
    text = _MONEY.sub(_money, text)
    text = _PERCENT.sub(_percent, text)
    text = _UNIT.sub(_unit, text)
    text = _FRACTION.sub(_fraction, text)
    text = _ORDINAL.sub(lambda m: "第" + zh_cardinal(int(m.group(1))).replace("两", "二", 1), text)
    text = _TWO.sub("两", text)
    text = _NAMED_CODE.sub(lambda m: m.group(1) + zh_digits(m.group(2)), text)
    text = _LETTERED_CODE.sub(lambda m: m.group(1) + zh_digits(m.group(2)), text)
    text = _CODE.sub(lambda m: zh_digits(m.group()), text)
    return _PLAIN.sub(lambda m: zh_number(m.group()), text)
