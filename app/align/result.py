"""What the aligner takes (a segment's audio and text) and gives back (a sample span per character). No torch."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class AlignRequest:
    """One segment: its audio (float32 mono at `sample_rate`) and its normalized text."""

    audio: np.ndarray
    sample_rate: int
    text: str


@dataclass(frozen=True, slots=True)
class CharSpan:
    """One character of the normalized text and where it is heard: samples `[start_sample, end_sample)`."""

    char: str
    start_sample: int
    end_sample: int


@dataclass(frozen=True)
class AlignResult:
    """`spans[i]` is `[start, end)` of `text[i]` in samples at `sample_rate`, in order and not overlapping."""

    text: str
    sample_rate: int
    spans: np.ndarray  # (len(text), 2) int64
    source: Literal["aligned"] = "aligned"

    def chars(self) -> list[CharSpan]:
        return [CharSpan(c, int(s), int(e)) for c, (s, e) in zip(self.text, self.spans, strict=True)]

    def words(self) -> list[CharSpan]:
        """The whitespace-separated words of `text`, each from its first character's start to its last's end (a
        trailing comma has its share of the pause after the word)."""
        return [
            CharSpan(m.group(), int(self.spans[m.start(), 0]), int(self.spans[m.end() - 1, 1]))
            for m in re.finditer(r"\S+", self.text)
        ]
