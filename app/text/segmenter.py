"""Cutting text into the segments that are synthesized one after another (pure: no I/O, the caller passes the clock).

`TextSegmenter` cuts streamed text deltas (a WebSocket's, an LLM's) by sentence, length and time; `iter_whole_text_segments`
cuts a whole text (an HTTP request's), Chinese included, and packs the pieces again up to the segment sizes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from app.text.sentences import SentenceSplitter

_CLAUSE_END = re.compile(r"[,;:\u2014\u2013]\s+|\s+[\u2014\u2013-]\s+")
_SPACES = re.compile(r"\s+")


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
        self._pos = 0
        self._scanned = 0  # the splitter found no sentence in `_text[_pos:_scanned]`
        self._since: float | None = None  # when the oldest buffered non-space character arrived
        self.segments_out = 0

    @property
    def buffered(self) -> str:
        return self._text[self._pos :]

    def push(self, text: str, now: float) -> list[str]:
        """Add a text delta; returns the segments it completes."""
        if not text:
            return []
        if self._since is None and not text.isspace():
            self._since = now
        text = _SPACES.sub(" ", text)
        if text.startswith(" ") and self._pos < len(self._text) and self._text.endswith(" "):
            text = text[1:]
        self._text += text
        out: list[str] = []
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

    def tick(self, now: float) -> list[str]:
        """Apply the time rule: the complete words of text that waited `max_wait` seconds."""
        due = self.due_in(now)
        if due is None or due > 0:
            return []
        end = self._last_word_end()
        return self._emitted([self._take(self._pos + end)], now)

    def flush(self) -> list[str]:
        """Everything buffered, as one segment (none if only spaces)."""
        piece = self._take(len(self._text))
        return self._emitted([piece], None)

    # -- rules ------------------------------------------------------------------------------------
    def _next_sentence(self, limit: int) -> str | None:
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

    def _cut_long(self, limit: int) -> str | None:
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

    def _take(self, end: int) -> str:
        piece = self._text[self._pos : end]
        self._pos = end
        return " ".join(piece.split())

    def _emitted(self, pieces: list[str], now: float | None) -> list[str]:
        pieces = [p for p in pieces if p]
        self.segments_out += len(pieces)
        if self._pos:  # what was cut off is dropped, so the text kept is never longer than the buffer
            self._text = self._text[self._pos :]
            self._scanned = max(0, self._scanned - self._pos)
            self._pos = 0
        if pieces:
            self._since = now if (now is not None and self._text.strip()) else None
        return pieces



# Chinese stops and commas are not followed by a space; the segmenter's rules need one (as Latin text has)
_CJK_BREAK = re.compile(r"([。！？；，：、]+[”’」』）》]*)(?=\S)")
_CJK_SPACE = re.compile(r"([。！？；，：、]+[”’」』）》]*) (?=[\u3400-\u9fff\uf900-\ufaff“‘「『（《])")


def whole_text_segments(text: str, *, max_chars: int, first_max_chars: int) -> list[str]:
    """A whole text (an HTTP request's) as segments: one when it fits in `max_chars`; else cut by `TextSegmenter`
    at its sentences and clauses, as if it were streamed word by word, and the pieces packed again up to
    `first_max_chars` (the first segment: the first audio sooner) and `max_chars` (the others). Chinese text is
    cut after its 。！？ (sentences) and ，；：、 (clauses): a space is put after them for the segmenter, and taken
    out of its segments again."""
    return list(iter_whole_text_segments(text, max_chars=max_chars, first_max_chars=first_max_chars))


def iter_whole_text_segments(text: str, *, max_chars: int, first_max_chars: int) -> Iterator[str]:
    """`whole_text_segments`, one at a time: the first is cut from the text's first words only (a long text's
    first audio waits for no cutting of the rest: 2.5 ms for 4,000 characters here)."""
    joined = " ".join(text.split())
    if len(joined) <= max_chars:
        if joined:
            yield joined
        return
    cjk = _CJK_BREAK.search(text) is not None
    if cjk:
        text = _CJK_BREAK.sub(r"\1 ", text)
    segmenter = TextSegmenter(max_chars=max_chars, first_max_chars=first_max_chars, max_wait=None)

    def pieces() -> Iterator[str]:
        for word in re.finditer(r"\S+\s*", text):  # word by word, so a long sentence is cut at its clauses
            yield from segmenter.push(word.group(), 0.0)
        yield from segmenter.flush()

    current: str | None = None
    first = True
    for piece in pieces():
        if cjk:
            piece = _CJK_SPACE.sub(r"\1", piece)
        if current is None:
            current = piece
            continue
        limit = first_max_chars if first else max_chars
        sep = "" if cjk and _CJK_SPACE.match(current[-1:] + " " + piece[:1]) else " "
        if len(current) + len(sep) + len(piece) <= limit:
            current += sep + piece
        else:
            yield current
            current, first = piece, False
    if current is not None:
        yield current
