"""Word and character timings of spoken segments, in samples of the audio as delivered.

What is exact: where a segment lies in its context's delivered audio (the caller passes its `start` and `end`,
taken from the writer that delivered it). Within a segment, characters are placed either by an estimate
(`estimated`: a duration weight per character class, scaled to the segment's exact length) or by a forced
aligner's per-character spans (`aligned`). Every result says which (`source`). Pure: no I/O, no clocks.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from app.text.offsets import covering

Source = Literal["estimated", "aligned"]

# CJK ideographs, kana and hangul: one syllable each
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_CJK_CHAR = re.compile(f"[{_CJK}]")
# a word: one CJK character (with the punctuation after it), or a run of anything else but spaces
_WORD = re.compile(rf"[{_CJK}][^\s{_CJK}\w]*|[^\s{_CJK}]+")

LETTER = 1.0  # a letter or digit: the unit of the estimate
SYLLABLE = 3.0  # a CJK character, about one syllable
SPACE = 0.5
CLAUSE_PAUSE = 2.5  # , ; : and their CJK forms
SENTENCE_PAUSE = 5.0  # . ! ? and their CJK forms
SYMBOL = 0.3  # any other punctuation or symbol
_CLAUSE = set(",;:\u2013\u2014\uff0c\u3001\uff1b\uff1a")
_SENTENCE = set(".!?\u2026\u3002\uff01\uff1f")


def char_weight(ch: str) -> float:
    """A character's share of speaking time, relative to one letter."""
    if ch.isspace():
        return SPACE
    if _CJK_CHAR.match(ch):
        return SYLLABLE
    if ch in _SENTENCE:
        return SENTENCE_PAUSE
    if ch in _CLAUSE:
        return CLAUSE_PAUSE
    if unicodedata.category(ch)[0] in "LN":
        return LETTER
    return SYMBOL


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # samples from the start of the context's audio
    end: int
    source: tuple[int, int] | None = None  # the characters of the text as sent that it came from (None: unknown)


@dataclass(frozen=True)
class SegmentTimings:
    """One segment's characters in its context's delivered audio: `starts[i]`, `ends[i]` are the samples (at
    `rate`, from the start of the context's audio) where `text[i]` begins and ends; they tile [start, end]."""

    text: str
    start: int
    end: int
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    rate: int
    source: Source
    sources: tuple[tuple[int, int], ...] | None = None  # per character of `text`: the range of the text as sent

    def named(self, sources: Sequence[tuple[int, int]] | None) -> SegmentTimings:
        """These timings with each character's range of the text as sent (`Mapped.spans` of `text`)."""
        if sources is None or len(sources) != len(self.text):
            return self
        return replace(self, sources=tuple(sources))

    def words(self) -> list[Word]:
        """Every word of `text` once, in order: runs of non-space characters, each CJK character alone. A word
        ends where its last letter does: the pause of its trailing punctuation is not part of it."""
        out = []
        for m in _WORD.finditer(self.text):
            last = m.end() - 1
            while last > m.start() and unicodedata.category(self.text[last])[0] in "PS":
                last -= 1
            src = covering(self.sources[m.start() : m.end()]) if self.sources is not None else None
            out.append(Word(m.group(), self.starts[m.start()], self.ends[last], src))
        return out

    def seconds(self, sample: int) -> float:
        return round(sample / self.rate, 3)

    @classmethod
    def join(cls, parts: Sequence[SegmentTimings], rate: int) -> SegmentTimings:
        """Consecutive segments as one: their texts joined by a space that takes no time (at the seam), from the
        first's start to the last's end. `source` "aligned" only when every part is."""
        if not parts:
            return cls("", 0, 0, (), (), rate, "estimated")
        first, last = parts[0], parts[-1]
        parts = [p for p in parts if p.text] or [first]  # a pause's silence is a gap between its neighbours
        text, starts, ends = parts[0].text, list(parts[0].starts), list(parts[0].ends)
        for p in parts[1:]:
            text += " " + p.text
            starts += [p.start, *p.starts]
            ends += [p.start, *p.ends]
        source: Source = "aligned" if all(p.source == "aligned" for p in parts) else "estimated"
        named = None
        if all(p.sources is not None for p in parts):  # the seam's space names the empty range after the one before
            named = list(parts[0].sources or ())
            for p in parts[1:]:
                at = named[-1][1] if named else 0
                named += [(at, at), *(p.sources or ())]
        joined = cls(text, first.start, last.end, tuple(starts), tuple(ends), rate, source)
        return joined.named(named)

    def word_dicts(self) -> list[dict]:
        """Each spoken word's time and, where known, `source`: the [start, end) characters of the text as sent that
        it came from (an SSML alias' words name the element's text, a number's words the digits, a dictionary
        alias's words the string it replaced: "Kuala" and "Lumpur" both name "KL")."""
        return [
            {"word": w.text, "start": self.seconds(w.start), "end": self.seconds(w.end)}
            | ({"source": list(w.source)} if w.source is not None else {})
            for w in self.words()
        ]

    def char_dicts(self) -> list[dict]:
        return [
            {"char": c, "start": self.seconds(s), "end": self.seconds(e)}
            for c, s, e in zip(self.text, self.starts, self.ends, strict=True)
        ]


def _tiling(weights: Sequence[float], start: int, end: int) -> list[int]:
    """len(weights) + 1 boundaries from `start` to `end`, each span proportional to its weight (rounded
    cumulatively, so the spans add up to the segment exactly)."""
    total = sum(weights)
    length = end - start
    bounds, acc = [start], 0.0
    for w in weights:
        acc += w
        bounds.append(start + round(length * acc / total) if total > 0 else start)
    bounds[-1] = end
    return bounds


def estimated(text: str, *, start: int, end: int, rate: int) -> SegmentTimings:
    """`text`'s characters spread over [start, end) by their weights (`char_weight`)."""
    if end < start:
        raise ValueError(f"segment ends ({end}) before it starts ({start})")
    b = _tiling([char_weight(c) for c in text], start, end)
    return SegmentTimings(text, start, end, tuple(b[:-1]), tuple(b[1:]), rate, "estimated")


def aligned(
    text: str, spans: Sequence[tuple[int, int] | None], *, source_samples: int, start: int, end: int, rate: int
) -> SegmentTimings:
    """A forced aligner's result plugged in: `spans[i]` is where `text[i]` lies in the segment's own audio as the
    aligner saw it (samples 0..`source_samples` of the codec's output, before speed and resampling), or None
    for a character it does not place (spaces, punctuation). Mapped linearly onto [start, end) of the
    delivered audio; unplaced characters fill the gap between their neighbours; the result is made monotonic."""
    if len(spans) != len(text):
        raise ValueError(f"{len(spans)} spans for {len(text)} characters")
    if source_samples <= 0:
        raise ValueError("source_samples must be positive")
    scale = (end - start) / source_samples

    def at(x: int) -> int:
        return min(end, max(start, start + round(x * scale)))

    starts: list[int | None] = [None if s is None else at(s[0]) for s in spans]
    ends: list[int | None] = [None if s is None else at(s[1]) for s in spans]
    out_s, out_e = [], []
    cursor = start
    for i in range(len(text)):
        s = starts[i] if starts[i] is not None else cursor
        s = max(s, cursor)
        if ends[i] is not None:
            e = max(ends[i], s)
        else:  # up to the next placed character's start
            nxt = next((x for x in starts[i + 1 :] if x is not None), end)
            e = max(s, nxt)
        out_s.append(s)
        out_e.append(e)
        cursor = e
    return SegmentTimings(text, start, end, tuple(out_s), tuple(out_e), rate, "aligned")


def elevenlabs_alignment(t: SegmentTimings, *, base: int) -> dict:
    """ElevenLabs' alignment object (`chars`, `charStartTimesMs`, `charDurationsMs`) for a segment, times in ms
    from sample `base` (0: the start of the context's audio; `t.start`: the segment's own start). A space is
    appended, with no duration, so that a client joining segments keeps their last and first words apart.
    Milliseconds are rounded from absolute sample positions, so consecutive segments tile without drift."""

    def ms(sample: int) -> int:
        return round(sample * 1000 / t.rate)

    b = ms(base)
    if not t.text:  # a pause (SSML's <break>): its space spans its silence, so that chunks summed keep the clock
        return {"chars": [" "], "charStartTimesMs": [ms(t.start) - b], "charDurationsMs": [ms(t.end) - ms(t.start)]}
    starts = [ms(s) - b for s in t.starts] + [ms(t.end) - b]
    durations = [ms(e) - ms(s) for s, e in zip(t.starts, t.ends, strict=True)] + [0]
    return {"chars": [*t.text, " "], "charStartTimesMs": starts, "charDurationsMs": durations}


def elevenlabs_http_alignment(t: SegmentTimings) -> dict:
    """ElevenLabs' HTTP alignment object (`characters`, `character_start_times_seconds`,
    `character_end_times_seconds`), in seconds from the start of the response's audio."""
    return {
        "characters": list(t.text),
        "character_start_times_seconds": [t.seconds(s) for s in t.starts],
        "character_end_times_seconds": [t.seconds(e) for e in t.ends],
    }
