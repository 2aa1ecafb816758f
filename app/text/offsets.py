"""Where each character of a rewritten text came from: an offset map like a fast tokenizer's `offset_mapping`.

`Mapped(text, spans)`: `spans[i]` is the `(start, end)` range of the source text that `text[i]` came from ("lima
ringgit" from "RM5": every character of it names the three characters of "RM5"; a character put in from nothing,
such as a space between two pieces, names the empty range where it went in).

Rewrites report what they replaced: the normalizer's rules call `sub` (a drop-in for `pattern.sub`) and, while a
`Tracker` is active (`tracking`), each match and its replacement are recorded as one edit, and the offset maps
composed. A rewrite made some other way is followed afterwards by `Tracker.follow`: a word-level diff of the text
before and after (`carry`), exact for the words it kept and naming the whole replaced run for the others.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from difflib import SequenceMatcher

Span = tuple[int, int]

# a word for the diff: one CJK character, a run of word characters, or one other non-space character
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
# a word (as the timings count them): one CJK character with the punctuation after it, or a run of non-spaces
_WORD = re.compile(rf"[{_CJK}][^\s{_CJK}\w]*|[^\s{_CJK}]+")
_TOKEN = re.compile(rf"[{_CJK}]|[^\W_{_CJK}]+|[^\s]")


@dataclass(frozen=True)
class Mapped:
    """A text and, for each of its characters, the source range it came from."""

    text: str
    spans: tuple[Span, ...]

    def __post_init__(self) -> None:
        if len(self.spans) != len(self.text):
            raise ValueError(f"{len(self.spans)} spans for {len(self.text)} characters")

    @classmethod
    def join(cls, parts: Sequence[Mapped], sep: str = " ") -> Mapped:
        """The parts joined by `sep`, whose characters come from nothing (the empty range after the part before)."""
        text, spans = [], []
        for i, p in enumerate(parts):
            if i and sep:
                at = spans[-1][1] if spans else 0
                text.append(sep)
                spans += [(at, at)] * len(sep)
            text.append(p.text)
            spans += p.spans
        return cls("".join(text), tuple(spans))

    def source_of(self, start: int, end: int) -> Span | None:
        """The source range that `text[start:end]` came from (None: from nothing)."""
        return covering(self.spans[start:end])

    def words(self) -> list[tuple[str, int, int, Span | None]]:
        """Each word (a CJK character, or a run of other non-space characters): its text, where it lies in `text`,
        and the source range it came from."""
        return [(m.group(), m.start(), m.end(), self.source_of(m.start(), m.end())) for m in _WORD.finditer(self.text)]


def covering(spans: Sequence[Span]) -> Span | None:
    """The smallest range holding every non-empty one of `spans` (None when all are empty)."""
    lo = hi = -1
    for s, e in spans:
        if e > s:
            if lo < 0 or s < lo:
                lo = s
            if e > hi:
                hi = e
    return None if lo < 0 else (lo, hi)


def _union(spans: Sequence[Span], at: Span) -> Span:
    return covering(spans) or at


def carry(before: str, spans: Sequence[Span], after: str, *, inserted: Span | None = None) -> list[Span]:
    """`after`'s map, given `before` and its map: a diff of their words. A word kept keeps its characters' ranges;
    a run of words replaced names the whole run it replaced; words put in from nothing name `inserted`, or the
    empty range where they went in. Spaces name the empty range after the character before them."""
    if after == before:
        return list(spans)
    a = list(_TOKEN.finditer(before))
    b = list(_TOKEN.finditer(after))
    out: list[Span | None] = [None] * len(after)
    words_a, words_b = [m.group() for m in a], [m.group() for m in b]
    if words_a == words_b:  # only white space changed
        opcodes = [("equal", 0, len(a), 0, len(b))]
    else:
        opcodes = SequenceMatcher(None, words_a, words_b, autojunk=False).get_opcodes()
    for op, i1, i2, j1, j2 in opcodes:
        if op == "equal":
            for ma, mb in zip(a[i1:i2], b[j1:j2], strict=True):
                out[mb.start() : mb.end()] = spans[ma.start() : ma.end()]
        elif op in ("replace", "insert"):
            if op == "replace":
                src = _union(spans[a[i1].start() : a[i2 - 1].end()], (0, 0))
            else:
                at = spans[a[i1 - 1].end() - 1][1] if i1 else (spans[0][0] if spans else 0)
                src = inserted or (at, at)
            for mb in b[j1:j2]:
                out[mb.start() : mb.end()] = [src] * (mb.end() - mb.start())
    last = inserted[0] if inserted else (spans[0][0] if spans else 0)
    done: list[Span] = []
    for span in out:  # spaces and anything no word holds: the empty range after the character before
        if span is None:
            span = (last, last)
        else:
            last = span[1]
        done.append(span)
    return done


class Tracker:
    """The text being rewritten and its map; `sub` records into the active one."""

    def __init__(self, text: str, spans: Sequence[Span] | None = None) -> None:
        self.text = text
        self.spans = list(spans) if spans is not None else [(i, i + 1) for i in range(len(text))]

    def follow(self, text: str) -> str:
        """`text`, a rewrite of the tracked text made without `sub`: the map carried over by a diff."""
        if text != self.text:
            self.spans = carry(self.text, self.spans, text)
            self.text = text
        return text

    def mapped(self) -> Mapped:
        return Mapped(self.text, tuple(self.spans))


_ACTIVE: ContextVar[Tracker | None] = ContextVar("text_tracker", default=None)


@contextmanager
def tracking(tracker: Tracker | None) -> Iterator[Tracker | None]:
    """`tracker` records the rewrites made with `sub` (None: none is recorded) until the block ends."""
    token = _ACTIVE.set(tracker)
    try:
        yield tracker
    finally:
        _ACTIVE.reset(token)


@contextmanager
def untracked() -> Iterator[None]:
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def follow(text: str) -> str:
    """`text`, a rewrite of the active tracker's text (if any) made without `sub`: the tracker follows it."""
    tracker = _ACTIVE.get()
    if tracker is not None:
        tracker.follow(text)
    return text


def snapped(out: Mapped, given: Mapped) -> Mapped:
    """`out` (a rewrite of `given`) with each of its words naming whole words of `given`'s source: the union of
    the source words its characters touch ("3/4" read as "3 April": both words name "3/4")."""
    words = [w for w in (covering(given.spans[m.start() : m.end()]) for m in _WORD.finditer(given.text)) if w]
    if not words:
        return out
    starts = [w[0] for w in words]
    spans = list(out.spans)
    for m in _WORD.finditer(out.text):
        cov = covering(spans[m.start() : m.end()])
        if cov is None:
            continue
        lo, hi = cov
        i = max(0, bisect_right(starts, lo) - 1)
        while i < len(words) and words[i][0] < hi:
            if words[i][1] > lo:
                lo, hi = min(lo, words[i][0]), max(hi, words[i][1])
            i += 1
        spans[m.start() : m.end()] = [(lo, hi)] * (m.end() - m.start())
    return Mapped(out.text, tuple(spans))


Repl = str | Callable[[re.Match[str]], str]


def sub(pattern: re.Pattern[str] | str, repl: Repl, text: str, count: int = 0, flags: int = 0) -> str:
    """`pattern.sub(repl, text, count)`; when `text` is the active tracker's text, each match is recorded as an
    edit (the replacement names what it replaced)."""
    if isinstance(pattern, str):
        pattern = re.compile(pattern, flags)
    tracker = _ACTIVE.get()
    if tracker is None or tracker.text != text:
        return pattern.sub(repl, text, count)
    if pattern.search(text) is None:
        return text
    spans = tracker.spans  # taken now: a replacement function may track a rewrite of its own
    expand = repl if callable(repl) else (lambda m: m.expand(repl))
    out: list[str] = []
    new: list[Span] = []
    last = n = 0
    for m in pattern.finditer(text):
        s, e = m.span()
        r = expand(m)
        out.append(text[last:s])
        new += spans[last:s]
        out.append(r)
        new += _replaced(text[s:e], spans[s:e], r, spans[s - 1][1] if s else (spans[0][0] if spans else 0))
        last = e
        n += 1
        if n == count:
            break
    if not n:
        return text
    out.append(text[last:])
    new += spans[last:]
    result = "".join(out)
    tracker.text, tracker.spans = result, new
    return result


def _replaced(matched: str, spans: Sequence[Span], replacement: str, at: int) -> list[Span]:
    """The map of one match's replacement: the words it kept exactly, the rest naming the whole match."""
    if replacement == matched:
        return list(spans)
    whole = _union(spans, (at, at))
    if not matched.strip() or not replacement.strip() or not set(_TOKEN.findall(matched)) & set(_TOKEN.findall(replacement)):
        return [whole] * len(replacement)  # nothing kept: all of it names all of the match
    return carry(matched, spans, replacement, inserted=whole)


def replace_spans(text: str, edits: Sequence[tuple[int, int, str]]) -> str:
    """`text` with each `(start, end, replacement)` of `edits` (in order, apart) made; when `text` is the active
    tracker's text, each is recorded as `sub` records a match (for a matcher that is not one regex)."""
    tracker = _ACTIVE.get()
    track = tracker is not None and tracker.text == text
    out: list[str] = []
    new: list[Span] = []
    last = 0
    spans = tracker.spans if track else []  # type: ignore[union-attr]
    for s, e, r in edits:
        out += [text[last:s], r]
        if track:
            new += spans[last:s]
            new += _replaced(text[s:e], spans[s:e], r, spans[s - 1][1] if s else (spans[0][0] if spans else 0))
        last = e
    if not edits:
        return text
    out.append(text[last:])
    result = "".join(out)
    if track:
        tracker.text, tracker.spans = result, new + spans[last:]  # type: ignore[union-attr]
    return result
