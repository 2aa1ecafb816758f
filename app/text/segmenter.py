"""Cutting text into the segments that are synthesized one after another (pure: no I/O, the caller passes the clock).

`TextSegmenter` cuts streamed text deltas (a WebSocket's, an LLM's) by sentence, length and time; `iter_whole_text_segments`
cuts a whole text (an HTTP request's), Chinese included, and packs the pieces again up to the segment sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from app.text.document import Segment, Span, TextDocument
from app.text.offsets import Tracker, sub, tracking
from app.text.sentences import SentenceSplitter

_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]\s+|\s+[\u2014\u2013-]\s+")
_RUNS = re.compile(r"\S+|\s+")
_WORDS = re.compile(r"\S+")


class TextSegmenter:
    """Cuts streamed text into segments to synthesize, in order.

    - A sentence (the normalizer's splitter) is ready once the text after it has begun: the splitter needs the
      next character to tell "Dr. Tan" from a sentence end.
    - A buffer longer than `max_chars` (`first_max_chars` for the first segment, so the first audio does not
      wait for a long sentence) is cut at its last clause break (`,;:` or a dash), else its last space; so is
      a sentence longer than that.
    - Text that waited `max_wait` seconds since its first character is cut after its last complete word
      (`due_in` says when; `tick` applies it): an LLM that pauses mid-sentence does not hold the audio back.
    - `flush()` returns everything buffered.

    Work is linear in the text: runs of white space are kept as one space, the splitter only sees a window of
    `max_chars` past the segment start (resuming where its last look ended), and cut text is not copied again.

    Each segment is a `Segment`: its text, and the index of each of its characters in the text pushed (all the
    deltas one after another: offsets grow across deltas).
    """

    def __init__(
        self,
        *,
        max_chars: int = 250,
        first_max_chars: int | None = None,
        max_wait: float | None = 0.6,
        splitter: SentenceSplitter | None = None,
    ) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be >= 1")
        self.max_chars = max_chars
        self.first_max_chars = first_max_chars or max_chars
        self.max_wait = max_wait
        self._splitter = splitter or SentenceSplitter()
        self._text = ""  # received text; what is before `_pos` has been cut off
        self._src: list[int] = []  # the pushed text's index of each character of `_text`
        self._fed = 0  # characters pushed
        self._pos = 0
        self._scanned = 0  # the splitter found no sentence in `_text[_pos:_scanned]`
        self._since: float | None = None  # when the oldest buffered non-space character arrived
        self.segments_out = 0

    @property
    def buffered(self) -> str:
        return self._text[self._pos :]

    @property
    def fed(self) -> int:
        """Characters pushed (or skipped) so far: the source index of the next one."""
        return self._fed

    def skip(self, n: int) -> None:
        """`n` characters pushed that hold no text to cut (SSML's tags, its elements spoken apart): the offsets of
        what comes after count them."""
        self._fed += n

    def push(self, text: str, now: float) -> list[Segment]:
        """Add a text delta; returns the segments it completes."""
        if not text:
            return []
        if self._since is None and not text.isspace():
            self._since = now
        base, self._fed = self._fed, self._fed + len(text)
        text, src = _collapsed(text, base)
        if text.startswith(" ") and self._pos < len(self._text) and self._text.endswith(" "):
            text, src = text[1:], src[1:]
        self._text += text
        self._src += src
        out: list[Segment] = []
        while True:
            limit = self.first_max_chars if self.segments_out + len(out) == 0 else self.max_chars
            piece = self._next_sentence(limit)
            if piece is None:
                piece = self._cut_long(limit)
            if piece is None:
                break
            if piece:
                out.append(piece)
        return self._emitted(out, now)

    def due_in(self, now: float) -> float | None:
        """Seconds until the time rule fires (0 if due), None when it cannot (nothing buffered, or no rule)."""
        if self.max_wait is None or self._since is None or not self._last_word_end():
            return None
        return max(0.0, self._since + self.max_wait - now)

    def tick(self, now: float) -> list[Segment]:
        """Apply the time rule: the complete words of text that waited `max_wait` seconds."""
        due = self.due_in(now)
        if due is None or due > 0:
            return []
        end = self._last_word_end()
        return self._emitted([self._take(self._pos + end)], now)

    def flush(self) -> list[Segment]:
        """Everything buffered, as one segment (none if only spaces)."""
        piece = self._take(len(self._text))
        return self._emitted([piece], None)

    # -- rules ------------------------------------------------------------------------------------
    def _next_sentence(self, limit: int) -> Segment | None:
        """The first sentence, when it is complete and at most `limit` characters."""
        text, pos = self._text, self._pos
        stop = min(len(text), pos + limit + 4)  # a space, the sentence, a space and the next character
        start = pos
        if self._scanned - 2 > pos:  # resume at the start of the last word looked at: only a stop there, with
            space = text.rfind(" ", pos, self._scanned - 2)  # its space and next character, may end a sentence now
            start = space + 1 if space >= 0 else pos
        size = 32
        while True:  # a window that grows, so that a short sentence costs a short split
            end = min(stop, start + size)
            window = text[start:end]
            pieces = self._splitter.split(window)
            if len(pieces) >= 2:
                break
            if end == stop:
                self._scanned = stop
                return None
            size *= 2
        end = start + window.index(pieces[0]) + len(pieces[0])
        if len(text[pos:end].strip()) > limit:
            return None  # a long sentence: the length rule cuts it
        return self._take(end)

    def _cut_long(self, limit: int) -> Segment | None:
        text = self._text
        start = self._pos + 1 if text.startswith(" ", self._pos) else self._pos  # white space is one space
        if text[start + limit : start + limit + 2].isspace() or start + limit >= len(text):
            return None  # at most `limit` characters before the trailing space
        head = text[start : start + limit + 1]
        clauses = [m.end() for m in _CLAUSE_END.finditer(head)]
        if clauses:
            return self._take(start + clauses[-1])
        space = head.rfind(" ")
        if space > 0:
            return self._take(start + space)
        return self._take(start + limit)  # one very long "word": cut it rather than buffer without end

    def _last_word_end(self) -> int:
        """Where the buffer's last complete word ends (0: none). The last word is complete when a space follows."""
        buffer = self.buffered
        stripped = buffer.rstrip()
        if not stripped:
            return 0
        if len(stripped) < len(buffer):
            return len(stripped)
        space = stripped.rfind(" ")
        return len(stripped[:space].rstrip()) if space > 0 else 0

    def _take(self, end: int) -> Segment:
        pos, self._pos = self._pos, end
        return _words(self._text, self._src, pos, end)

    def _emitted(self, pieces: list[Segment], now: float | None) -> list[Segment]:
        pieces = [p for p in pieces if p]
        self.segments_out += len(pieces)
        if self._pos:  # what was cut off is dropped, so the text kept is never longer than the buffer
            self._text = self._text[self._pos :]
            del self._src[: self._pos]
            self._scanned = max(0, self._scanned - self._pos)
            self._pos = 0
        if pieces:
            self._since = now if (now is not None and self._text.strip()) else None
        return pieces


def _collapsed(text: str, base: int) -> tuple[str, list[int]]:
    """`text` with each run of white space as one space, and the index (from `base`) each character came from."""
    parts: list[str] = []
    src: list[int] = []
    for m in _RUNS.finditer(text):
        if m.group()[0].isspace():
            parts.append(" ")
            src.append(base + m.start())
        else:
            parts.append(m.group())
            src += range(base + m.start(), base + m.end())
    return "".join(parts), src


def _words(text: str, src: Sequence[int], start: int, end: int) -> Segment:
    """`text[start:end]`'s words joined by single spaces, each character with its `src` index."""
    words: list[str] = []
    offsets: list[int] = []
    for m in _WORDS.finditer(text, start, end):
        if words:
            words.append(" ")
            offsets.append(src[m.start() - 1])
        words.append(m.group())
        offsets += src[m.start() : m.end()]
    return Segment("".join(words), offsets)

# Chinese stops and commas are not followed by a space; the segmenter's rules need one (as Latin text has)
_CJK_BREAK = re.compile(r"([。！？；，：、]+[”’」』）》]*)(?=\S)")
_CJK_SPACE = re.compile(r"([。！？；，：、]+[”’」』）》]*) (?=[\u3400-\u9fff\uf900-\ufaff“‘「『（《])")


def whole_text_segments(text: str, *, max_chars: int, first_max_chars: int) -> list[Segment]:
    """A whole text (an HTTP request's) as segments: one when it fits in `max_chars`; else cut by `TextSegmenter`
    at its sentences and clauses, as if it were streamed word by word, and the pieces packed again up to
    `first_max_chars` (the first segment: the first audio sooner) and `max_chars` (the others). Chinese text is
    cut after its 。！？ (sentences) and ，；：、 (clauses): a space is put after them for the segmenter, and taken
    out of its segments again. Each segment's `offsets` index `text`."""
    return list(iter_whole_text_segments(text, max_chars=max_chars, first_max_chars=first_max_chars))


def iter_whole_text_segments(text: str, *, max_chars: int, first_max_chars: int) -> Iterator[Segment]:
    """`whole_text_segments`, one at a time: the first is cut from the text's first words only (a long text's
    first audio waits for no cutting of the rest: 2.5 ms for 4,000 characters here)."""
    whole = _words(text, range(len(text)), 0, len(text))
    if len(whole) <= max_chars:
        if whole:
            yield whole
        return
    cjk = _CJK_BREAK.search(text) is not None
    src: Sequence[int] = range(len(text))
    if cjk:  # the spaces put in name the stop before them
        with tracking(Tracker(text)) as spaced:
            text = sub(_CJK_BREAK, r"\1 ", text)
        src = [s for s, _ in spaced.spans]
    segmenter = TextSegmenter(max_chars=max_chars, first_max_chars=first_max_chars, max_wait=None)

    def pieces() -> Iterator[Segment]:
        for word in re.finditer(r"\S+\s*", text):  # word by word, so a long sentence is cut at its clauses
            yield from segmenter.push(word.group(), 0.0)
        yield from segmenter.flush()

    current: Segment | None = None
    first = True
    lead = len(text) - len(text.lstrip())  # white space before the first word is never pushed
    for piece in pieces():
        piece = Segment(piece, [src[lead + o] for o in piece.offsets])
        if cjk:
            piece = _without_cjk_spaces(piece)
        if current is None:
            current = piece
            continue
        limit = first_max_chars if first else max_chars
        sep = "" if cjk and _CJK_SPACE.match(current[-1:] + " " + piece[:1]) else " "
        if len(current) + len(sep) + len(piece) <= limit:
            current = current.joined(sep, piece)
        else:
            yield current
            current, first = piece, False
    if current is not None:
        yield current


def _without_cjk_spaces(piece: Segment) -> Segment:
    with tracking(Tracker(piece, [(o, o + 1) for o in piece.offsets])) as t:
        text = sub(_CJK_SPACE, r"\1", str(piece))
    return Segment(text, [s for s, _ in t.spans])


def iter_document_segments(doc: TextDocument, *, max_chars: int, first_max_chars: int) -> Iterator[Segment]:
    """A document's segments: cut at its spans that break (each a segment of its own) and within the runs
    between them as a whole text (`iter_whole_text_segments`), never inside an atomic span; each segment holds
    its spans, clipped to it. A plain text is cut exactly as `iter_whole_text_segments` cuts it."""
    first = True
    for start, end, spans in _blocks(doc):
        if spans[0].type.breaks:  # one segment, whatever its length
            seg = _words(doc.source, range(len(doc.source)), start, end)
            if seg:
                first = False
                yield Segment(seg, seg.offsets, spans)
            continue
        block, src = _spanned(doc.source, spans)
        limit = first_max_chars if first else max_chars
        atomic = any(s.type.atomic for s in spans)
        for seg in iter_whole_text_segments(block, max_chars=max_chars, first_max_chars=limit):
            offsets = [src[o] for o in seg.offsets]
            text = str(seg).replace(_GLUE, " ") if atomic else str(seg)
            lo, hi = offsets[0], offsets[-1] + 1
            held = [s.clipped(lo, hi) for s in spans if s.end > lo and s.start < hi]
            first = False
            yield Segment(text, offsets, held)


_GLUE = "\ue001"  # stands for a space inside an atomic span while the text is cut


def _spanned(source: str, spans: list[Span]) -> tuple[str, Sequence[int]]:
    """The text the spans hold, one after another (what lies between them, such as SSML's tags, left out), with
    an atomic span's spaces hidden from the cutting, and the source index of each of its characters."""
    if len(spans) == 1 and not spans[0].type.atomic:  # a plain text: its block as it is
        return source[spans[0].start : spans[0].end], range(spans[0].start, spans[0].end)
    parts: list[str] = []
    src: list[int] = []
    for s in spans:
        inner = source[s.start : s.end]
        parts.append(re.sub(r"\s", _GLUE, inner) if s.type.atomic else inner)
        src += range(s.start, s.end)
    return "".join(parts), src


def _blocks(doc: TextDocument) -> Iterator[tuple[int, int, list[Span]]]:
    """The runs of spans between breaking spans, and each breaking span alone: (start, end, spans)."""
    run: list[Span] = []
    for s in doc.spans:
        if s.type.breaks:
            if run:
                yield run[0].start, run[-1].end, run
            yield s.start, s.end, [s]
            run = []
        else:
            run.append(s)
    if run:
        yield run[0].start, run[-1].end, run
