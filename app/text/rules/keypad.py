"""Phone keys: what an IVR prompt or a USSD code says with "*" and "#".

- A key standing alone: "Press * then #" -> "Press star then hash" ("Tekan bintang, kemudian pagar").
- A USSD code, a key sequence that starts with "*" and ends with "#": "*100*5#" -> "star one zero zero star five
  hash", every digit read alone.
- "*" between two numbers is a product: "5 * 3" -> "five times three".

A "*" attached to a word ("apply*", "*bold*") is markup or a footnote, not a key: `clean_markup` removes it, and
keeps what this module reads (it tests `KEEP`). "#12" is a number sign (`numbering.number_signs`).
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader

# A key or a code, as a whole token: a lone "*" or "#", or "*...#" of digits and keys; a Han character may touch it
# ("按*键"), a letter or digit may not ("apply*", "C#", "#12").
_WORD = r"[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]"
_CODE = r"\*[0-9*#]*#"
_KEY = r"\*(?!\s+[A-Z])|#"  # a "*" before a capitalised word is a bullet in flattened markdown: "Options: * Balance"
_PRODUCT = r"(?<=[0-9])[ ]?\*[ ]?(?=[0-9])"
_SPOKEN = re.compile(
    rf"(?P<product>{_PRODUCT})|(?<!{_WORD})(?<![*#＊＃])(?:(?P<code>{_CODE})|(?P<key>{_KEY}))(?!{_WORD})(?![*#＊＃])"
)
KEEP = _SPOKEN
"""What `clean_markup` leaves in place of a stray "*": the keys and products this module reads."""

_ZH_KEY = re.compile(rf"(?<!{_WORD})(?:(?P<code>[*＊][0-9*＊#＃]*[#＃])|(?P<key>[*＊#＃])(?!{_WORD})号?)")
_ZH_KEYS = {"*": "星号", "＊": "星号", "#": "井号", "＃": "井号"}


def keys(text: str, r: Reader) -> str:
    """A code is read first ("*100*5#": its "*" are keys), then a product ("5 * 3"), then a lone key."""
    if "*" not in text and "#" not in text:
        return text

    def spoken(m: re.Match[str]) -> str:
        if m.group("product"):
            return f" {r.word('times')} "
        return " ".join(_key(c, r) for c in m.group())

    return sub(_SPOKEN, spoken, text)


def _key(c: str, r: Reader) -> str:
    if c == "*":
        return r.word("star")
    if c == "#":
        return r.word("hash")
    return r.digits(c)


def chinese_keys(text: str, r: Reader) -> str:
    """In Chinese a key sits between Han characters, often before "号": "请按#号键", "按*键", "拨打*100#" ->
    "请按井号键", "按星号键", "拨打星号一零零井号" (`r`: the Chinese reader, for the digits)."""
    if not any(c in text for c in "*#＊＃"):
        return text

    def spoken(m: re.Match[str]) -> str:
        if m.group("code"):
            return "".join(_ZH_KEYS.get(c) or r.digits(c) for c in m.group("code"))
        return _ZH_KEYS[m.group("key")]

    return sub(_ZH_KEY, spoken, text)
