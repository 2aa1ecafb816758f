"""Timings over the text as the client sent it, from the timings of the text as spoken: pure maths.

The spoken text's timings name, for each spoken word, the characters of the sent text it came from (the
normalizer's map: "lima ringgit lima puluh sen" all name "RM5.50"). Each run of sent characters that spoken words
name takes the time of those words, from the first one's start to the last one's end, shared among its characters
by their weights; characters no spoken word names (spaces, punctuation dropped) fill the gaps between. Where the
spoken timings name nothing (no map), the sent text is estimated over the same span, as before.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from itertools import pairwise

from app.service.timing import SegmentTimings, _tiling, aligned, char_weight, estimated
from app.text.offsets import Mapped


def sent_timings(text: str, offsets: Sequence[int] | None, spoken: SegmentTimings) -> SegmentTimings:
    """Timings of `text` (the text as sent, or a segment of it: `offsets[i]` is the source index of `text[i]`;
    None: `text` is the whole source) over the same span of audio as `spoken`, exact where its words are known."""
    if offsets is None:
        offsets = range(len(text))
    if len(offsets) != len(text):
        raise ValueError(f"{len(offsets)} offsets for {len(text)} characters")
    groups = _groups(spoken)
    if not groups or spoken.end <= spoken.start or not text:
        return estimated(text, start=spoken.start, end=spoken.end, rate=spoken.rate)
    spans: list[tuple[int, int] | None] = [None] * len(text)
    ordered = sorted(range(len(text)), key=lambda i: offsets[i]) if _unsorted(offsets) else range(len(text))
    keys = [offsets[i] for i in ordered]
    for (lo, hi), (t0, t1) in groups:
        chars = [ordered[k] for k in range(bisect_left(keys, lo), bisect_left(keys, hi))]
        chars = [i for i in chars if not text[i].isspace()]
        if not chars:
            continue
        bounds = _tiling([char_weight(text[i]) for i in chars], t0 - spoken.start, t1 - spoken.start)
        for n, i in enumerate(chars):
            spans[i] = (bounds[n], bounds[n + 1])
    out = aligned(text, spans, source_samples=spoken.end - spoken.start, start=spoken.start, end=spoken.end, rate=spoken.rate)
    return SegmentTimings(text, out.start, out.end, out.starts, out.ends, out.rate, spoken.source)


def segment_as_sent(text: str, spoken: SegmentTimings) -> SegmentTimings:
    """A segment's text as sent (a `Segment`, with its source offsets) timed from its spoken timings; a text
    without offsets is estimated over the same span."""
    offsets = getattr(text, "offsets", None)
    if offsets is None:
        return estimated(text, start=spoken.start, end=spoken.end, rate=spoken.rate)
    return sent_timings(text, offsets, spoken)


def _groups(spoken: SegmentTimings) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """The spoken words grouped by the sent characters they name (overlapping ranges merged): each group's
    source range and its time, from its first word's start to its last word's end."""
    if spoken.sources is None:
        return []
    words = Mapped(spoken.text, spoken.sources).words()  # a word's time here takes its punctuation's pause too
    named = sorted((src, (spoken.starts[s], spoken.ends[e - 1])) for _, s, e, src in words if src is not None)
    groups: list[tuple[tuple[int, int], tuple[int, int]]] = []
    for (lo, hi), (t0, t1) in named:
        if groups and lo < groups[-1][0][1]:
            (glo, ghi), (g0, g1) = groups[-1]
            groups[-1] = ((glo, max(ghi, hi)), (min(g0, t0), max(g1, t1)))
        else:
            groups.append(((lo, hi), (t0, t1)))
    return groups


def _unsorted(offsets: Sequence[int]) -> bool:
    return any(b < a for a, b in pairwise(offsets))
