"""Sentence splitting for per-sentence language choice; abbreviations ("Dr.", "No.") do not end a sentence."""

from __future__ import annotations

import re
from collections.abc import Iterable

ABBREVIATIONS = frozenset(
    (  # noqa: SIM905
        "mr mrs ms dr prof st no vs e.g i.e etc jln tmn sdn bhd en pn tn hj hjh kg lot bil approx dept ave "
        "tel fax jan feb mar apr jun jul aug sep sept oct nov dec dis okt ogo mac"
    ).split()
)

# A stop, optional closing quotes/brackets, then whitespace.
_BOUNDARY = re.compile(r"[.!?。！？]+[\"')\]”’]*\s+")
_LAST_WORD = re.compile(r"(\S+?)[.!?。！？]+[\"')\]”’]*\s+$")


class SentenceSplitter:
    """Splits cleaned text into sentences; pieces joined with a single space give the text back."""

    def __init__(self, abbreviations: Iterable[str] = ()) -> None:
        self._abbreviations = ABBREVIATIONS | {a.lower().rstrip(".") for a in abbreviations}

    def split(self, text: str) -> list[str]:
        sentences: list[str] = []
        start = 0
        for match in _BOUNDARY.finditer(text):
            end = match.end()
            nxt = text[end : end + 1]
            if nxt.islower() or nxt.isdigit():
                continue
            word = _LAST_WORD.search(text, start, end)
            if word and "." in match.group() and word.group(1).lower().lstrip("(\"'") in self._abbreviations:
                continue
            sentences.append(text[start:end].strip())
            start = end
        tail = text[start:].strip()
        if tail:
            sentences.append(tail)
        return sentences
