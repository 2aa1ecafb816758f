"""Emails, URLs, phone numbers and IC numbers: read piece by piece, digits one at a time.

- Email: "husein.zol05@gmail.com" -> "husein dot zol kosong lima at gmail dot com".
- URL: scheme, query and fragment dropped: "https://www.jpj.gov.my/a-b" -> "w w w dot jpj dot gov dot my slash a dash b".
- Phone: digit groups separated by commas (pauses): "012-3456789" -> "kosong satu dua, tiga empat lima, ...".
- IC (MyKad): "901231-14-5678" -> three digit groups.
"""

from __future__ import annotations

import re

from app.text.offsets import sub
from app.text.readers import Reader

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_URL = re.compile(r"(?<![\w@])(?:https?://|www\.)[^\s<>\"'`]+", re.IGNORECASE)
_TLDS = "com|net|org|edu|gov|mil|my|io|ai|co|sg|id|app|dev|info|biz|asia|uk|us|au|tv|me|ly|gg|xyz|store|online|tech"
_DOMAIN = re.compile(
    rf"(?<![\w@/.:-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+(?:{_TLDS})(?:/[^\s<>\"'`]*)?(?![\w-])",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?)]}'\""
_PIECE = re.compile(r"[A-Za-z]+|[0-9]+|[^A-Za-z0-9]")
_SYMBOLS = {".": "dot", "_": "underscore", "-": "dash", "+": "plus", "~": "tilde", "%": "percent", "=": "equals"}

# Phones: a Malaysian mobile/landline (leading 0 or +60), a toll-free 1-300/1-800, or another +country number.
_PHONE = re.compile(
    r"(?<![\w+.,/-])(?:"
    r"\+[0-9]{1,3}(?:[ -]?\(?[0-9]{1,4}\)?){2,4}"
    r"|0[0-9]{1,2}[ -]?[0-9]{3,4}[ -]?[0-9]{3,4}"
    r"|1[ -]?[38]00[ -]?[0-9]{2}[ -]?[0-9]{4}"
    r")(?![\w-]|[.,/][0-9])"
)
_IC = re.compile(r"(?<![\w-])[0-9]{6}-[0-9]{2}-[0-9]{4}(?![\w-])")


def _speak_piece(piece: str, r: Reader) -> str:
    if piece.isdigit():
        return r.digits(piece)
    if piece.isalpha():
        return piece
    return _SYMBOLS.get(piece, "")


def _speak_chunk(chunk: str, r: Reader) -> str:
    """One label or path segment: "zol05" -> "zol kosong lima", "about-us" -> "about dash us"."""
    return " ".join(w for w in (_speak_piece(p, r) for p in _PIECE.findall(chunk)) if w)


def _speak_host(host: str, r: Reader) -> str:
    labels = [label for label in host.split(".") if label]
    spoken = []
    for label in labels:
        spoken.append("w w w" if label.lower() == "www" else _speak_chunk(label, r))
    return f" {r.word('dot')} ".join(spoken)


def _split_trailing(text: str) -> tuple[str, str]:
    stripped = text.rstrip(_TRAILING)
    # Keep a closing bracket that has its opening one inside the URL.
    while text[len(stripped) : len(stripped) + 1] == ")" and stripped.count("(") > stripped.count(")"):
        stripped += ")"
    return stripped, text[len(stripped) :]


def _speak_url(url: str, r: Reader) -> str:
    url = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    url = re.split(r"[?#]", url, maxsplit=1)[0]
    host, _, path = url.partition("/")
    host = host.split("@")[-1].split(":")[0]
    spoken = _speak_host(host, r)
    for segment in path.split("/"):
        if segment:
            spoken += f" {r.word('slash')} {_speak_chunk(segment, r)}"
    return spoken


def emails(text: str, r: Reader) -> str:
    if "@" not in text:
        return text

    def speak(m: re.Match[str]) -> str:
        local, _, domain = m.group().partition("@")
        return f"{_speak_chunk(local, r)} {r.word('at')} {_speak_host(domain, r)}"

    return sub(_EMAIL, speak, text)


def urls(text: str, r: Reader) -> str:
    if "." not in text:
        return text

    def speak(m: re.Match[str]) -> str:
        url, tail = _split_trailing(m.group())
        return _speak_url(url, r) + tail

    text = sub(_URL, speak, text)
    return sub(_DOMAIN, speak, text)


def _group_digits(digits: str) -> list[str]:
    """Unseparated local numbers: prefix (01X / 0X / 0XX), then blocks of 3-4 digits."""
    if digits.startswith("01"):
        head, rest = digits[:3], digits[3:]
    elif digits.startswith("0"):
        head, rest = (digits[:2], digits[2:]) if digits[1] in "3" else (digits[:3], digits[3:])
    else:
        head, rest = "", digits
    groups = [head] if head else []
    while len(rest) > 4:
        cut = 3 if len(rest) in (6, 7) or len(rest) > 8 else 4
        groups.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        groups.append(rest)
    return groups


def phones(text: str, r: Reader) -> str:
    def speak(m: re.Match[str]) -> str:
        written = m.group()
        plus = written.startswith("+")
        groups = [g for g in re.split(r"[ ()-]+", written.lstrip("+")) if g]
        if plus and groups[0].startswith("60") and len(groups[0]) > 2:
            groups[:1] = ["60", groups[0][2:]]
        if len(groups) == 1:
            groups = _group_digits(groups[0])
        else:
            # A long written group ("012-3456789") is split as a listener would hear it.
            groups = [part for g in groups for part in (_group_digits(g) if len(g) > 4 else [g])]
        spoken = ", ".join(r.digits(g) for g in groups)
        return f"{r.word('plus')} {spoken}" if plus else spoken

    return sub(_PHONE, speak, text)


def ic_numbers(text: str, r: Reader) -> str:
    return sub(_IC, lambda m: ", ".join(r.digits(g) for g in m.group().split("-")), text)
