"""SSML that arrives in pieces (a WebSocket's text messages, an LLM's tokens): what can be spoken now, and what must
wait for the rest of its element (pure: no I/O).

How it is buffered: text outside any element goes on at once (to the sentence segmenter, as plain text does). A tag
starts a buffer: `<speak>`, `</speak>`, `<p>` and `<s>` (and their ends) are taken alone (the `speak` tags dropped,
the others a segment boundary); an empty element (`<break time="1s"/>`) is complete at its `/>`; any other element
(`<say-as>`, `<sub>`, `<lang>`, `<prosody>`...) waits for its end tag, at most `max_chars` characters (over that:
`SsmlError`), and is then parsed (app.text.ssml) as one fragment. Input that ends inside a tag or an element is an
error; a `<` that starts no tag ("a < b") is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.text.document import TextDocument
from app.text.ssml import SsmlError, SsmlLimits, parse_ssml

_TAG = re.compile(r"""<(/?)([A-Za-z_][\w:.-]*)(?:[^<>"']|"[^"]*"|'[^']*')*?(/?)>""")
_OPENING = re.compile(r"</?[A-Za-z_]|<!|<\?|</$")  # what may become a tag: anything else after `<` is text
_DROPPED = re.compile(r"<!--.*?-->|<\?.*?\?>", re.DOTALL)
_BOUNDARIES = ("p", "s")


@dataclass(frozen=True)
class StreamPiece:
    """`text`: plain text to segment; `skip`: characters that say nothing (`<speak>`, a comment); `boundary`: a
    tag where a segment ends; `element`: a complete element, parsed (`document` over `size` characters)."""

    kind: Literal["text", "skip", "boundary", "element"]
    size: int
    text: str = ""
    document: TextDocument | None = None
    ignored: tuple[str, ...] = ()


class SsmlStream:
    """Feed it the text as it comes (`push`), then `end()`; each returns the pieces now complete, in order, which
    cover every character pushed exactly once."""

    def __init__(self, max_chars: int = 4096, limits: SsmlLimits | None = None) -> None:
        self.max_chars = max_chars
        self.limits = limits or SsmlLimits(max_chars=max_chars)
        self._buf = ""  # from the start of an unfinished tag or element
        self._depth = 0  # elements open in the buffer
        self._scanned = 0  # the buffer before this has been looked at

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def push(self, text: str) -> list[StreamPiece]:
        self._buf += text
        out: list[StreamPiece] = []
        while self._buf and (piece := self._next()) is not None:
            out.append(piece)
            self._buf = self._buf[piece.size :]
            self._scanned = 0
        if len(self._buf) > self.max_chars:
            raise SsmlError(f"an SSML element is still open after {self.max_chars} characters")
        return out

    def end(self) -> list[StreamPiece]:
        out = self.push("")
        if self._buf:
            raise SsmlError(f"the input ends inside an SSML element or tag: {self._buf[:40]!r}")
        return out

    def drain(self) -> str:
        """What is buffered, taken out (an unfinished element at the end, read as plain text instead)."""
        rest, self._buf, self._depth, self._scanned = self._buf, "", 0, 0
        return rest

    def _next(self) -> StreamPiece | None:
        buf = self._buf
        if self._depth == 0:
            lt = buf.find("<")
            if lt != 0:
                return StreamPiece("text", len(buf) if lt < 0 else lt, buf if lt < 0 else buf[:lt])
            if len(buf) >= 2 and not _OPENING.match(buf):
                return StreamPiece("text", 1, "<")  # "a < b": text
            if buf.startswith(("<!--", "<?")):
                m = _DROPPED.match(buf)
                return StreamPiece("skip", m.end()) if m else None
        return self._element()

    def _element(self) -> StreamPiece | None:
        """The first tag (at depth 0), or the element the buffer holds once it is complete."""
        pos = self._scanned
        while (m := _TAG.search(self._buf, pos)) is not None:
            closing, name, empty = m.group(1) == "/", m.group(2), m.group(3) == "/"
            pos = m.end()
            if self._depth == 0 and m.start() == 0:
                if name == "speak":
                    return StreamPiece("skip", m.end())
                if name in _BOUNDARIES:
                    return StreamPiece("boundary", m.end())
                if closing:
                    raise SsmlError(f"</{name[:40]}> closes no element")
            if not empty:
                self._depth += -1 if closing else 1
            if self._depth == 0:
                return self._parsed(self._buf[: m.end()])
        lt = self._buf.find("<", pos)  # a tag not yet complete: looked at again with the next text
        self._scanned = lt if lt >= 0 else len(self._buf)
        return None

    def _parsed(self, fragment: str) -> StreamPiece:
        doc = parse_ssml(fragment, self.limits)
        return StreamPiece("element", len(fragment), document=doc.document, ignored=doc.ignored)
