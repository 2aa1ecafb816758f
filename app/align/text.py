"""A segment's normalized text -> the aligner model's tokens, each remembering the character it stands for; and
the tokens' spans back to one span per character.

- Latin letters (accents dropped: NFKD, then Unidecode for what is left) map to the model's letters, in its
  case; an apostrophe to its apostrophe; whitespace to its word delimiter when it has one (MMS has none: its
  words are told apart by blanks). Digits, punctuation and letters outside the vocabulary get no token.
- Chinese characters are read as toneless pinyin (pypinyin, with its phrase readings for polyphones: 银行 yin
  hang), one syllable per character, its letters spelled like Latin ones (ü as u).
- A character without a token (space, punctuation) is placed in the gap between its aligned neighbours; a run
  of them shares that gap evenly, in order. So every character of the text has a span, in order, not
  overlapping.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
APOSTROPHES = "'\u2019\u02bc`"


@dataclass(frozen=True)
class Vocabulary:
    """The model's token ids: letters, apostrophe, the blank and the optional word delimiter."""

    ids: Mapping[str, int]
    blank: int
    word_delimiter: int | None = None

    def __post_init__(self) -> None:
        if self.blank not in self.ids.values():
            raise ValueError(f"blank id {self.blank} is not in the vocabulary")

    @property
    def upper(self) -> bool:
        """Whether the model spells letters in upper case (some English wav2vec2 models do)."""
        return "a" not in self.ids and "A" in self.ids


@dataclass(frozen=True)
class Transcript:
    """`text` as `tokens` (vocabulary ids); `chars[k]` is the index in `text` of the character token k spells."""

    text: str
    tokens: np.ndarray  # (L,) int64
    chars: np.ndarray  # (L,) int64, ascending


def transcribe(text: str, vocab: Vocabulary) -> Transcript:
    tokens: list[int] = []
    chars: list[int] = []
    apostrophe = next((vocab.ids[a] for a in APOSTROPHES if a in vocab.ids), None)

    def spell(letters: str, index: int) -> None:
        for c in letters.upper() if vocab.upper else letters.lower():
            tid = apostrophe if c in APOSTROPHES else vocab.ids.get(c)
            if tid is not None and tid != vocab.blank and (c.isalpha() or tid == apostrophe):
                tokens.append(tid)
                chars.append(index)

    i = 0
    while i < len(text):
        han = HAN.match(text, i)
        if han:
            from pypinyin import Style, lazy_pinyin

            run = han.group()
            readings = lazy_pinyin(run, style=Style.NORMAL, v_to_u=True)
            if len(readings) != len(run):  # not one reading per character: read them one by one
                readings = [lazy_pinyin(c, style=Style.NORMAL, v_to_u=True)[0] for c in run]
            for k, reading in enumerate(readings):
                spell(_latin(reading), i + k)
            i = han.end()
            continue
        c = text[i]
        if c.isspace():
            if vocab.word_delimiter is not None and tokens and tokens[-1] != vocab.word_delimiter:
                tokens.append(vocab.word_delimiter)
                chars.append(i)
        else:
            spell(c if c.isascii() or c in APOSTROPHES else _latin(c), i)
        i += 1
    if tokens and tokens[-1] == vocab.word_delimiter:
        tokens.pop()
        chars.pop()
    return Transcript(text, np.asarray(tokens, dtype=np.int64), np.asarray(chars, dtype=np.int64))


def _latin(text: str) -> str:
    """Letters with their accents dropped (é -> e, ü -> u), other scripts transliterated (ø -> o)."""
    from unidecode import unidecode

    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return stripped if stripped.isascii() else unidecode(stripped)


def char_spans(transcript: Transcript, token_spans: np.ndarray, n_samples: int) -> np.ndarray:
    """`(L, 2)` token spans `[start, end)` -> `(len(text), 2)` character spans, in the same units.

    A character spelled by several tokens spans from its first token's start to its last token's end; the
    characters without a token share the gap between their neighbours (the audio's start and end at the edges).
    """
    n_chars = len(transcript.text)
    spans = np.zeros((n_chars, 2), dtype=np.int64)
    placed = np.zeros(n_chars, dtype=bool)
    if len(transcript.tokens):
        starts = np.full(n_chars, np.iinfo(np.int64).max)
        ends = np.full(n_chars, -1)
        np.minimum.at(starts, transcript.chars, token_spans[:, 0])
        np.maximum.at(ends, transcript.chars, token_spans[:, 1])
        placed[transcript.chars] = True
        spans[placed, 0] = starts[placed]
        spans[placed, 1] = ends[placed]
    i = 0
    while i < n_chars:
        if placed[i]:
            i += 1
            continue
        j = i
        while j < n_chars and not placed[j]:
            j += 1
        left = spans[i - 1, 1] if i > 0 else 0
        right = spans[j, 0] if j < n_chars else max(n_samples, left)
        edges = np.round(np.linspace(left, max(left, right), j - i + 1)).astype(np.int64)
        spans[i:j, 0] = edges[:-1]
        spans[i:j, 1] = edges[1:]
        i = j
    return spans
