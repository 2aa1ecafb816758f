"""A request's text as SSML or as plain text: the one place every path (our speech and vc endpoints, our WebSocket,
ElevenLabs' HTTP and WebSocket) turns its input into what the segment stream speaks, and SSML's errors into 400s.
A whole text is parsed at once (`speech_text`); a WebSocket's, as it comes (`SsmlFeed`, buffered as
app.text.ssml_stream says).

`input_format`: "ssml" parses the input as SSML (a `<speak>` document, or a `<speak>` document's content), "text"
never does, None (auto) parses it when it starts with `<speak>`: plain text that merely holds a `<` stays text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from app.errors import InvalidRequestError
from app.service.segment_policy import StreamUsage
from app.settings import StreamingSettings
from app.text.document import Segment, Span, TextDocument
from app.text.segmenter import TextSegmenter, iter_document_segments
from app.text.ssml import SsmlError, SsmlLimits, looks_like_ssml, parse_ssml
from app.text.ssml_stream import SsmlStream, StreamPiece

IGNORED_HEADER = "X-SSML-Ignored"
"""The response header that lists what an SSML input held that was spoken as plain text, not applied."""


@dataclass(frozen=True)
class SpeechText:
    """What a stream speaks: the plain text, or the SSML's document, and what of the SSML was not applied."""

    text: str | TextDocument
    ignored: tuple[str, ...] = ()

    @property
    def is_ssml(self) -> bool:
        return isinstance(self.text, TextDocument)


def is_ssml(text: str, input_format: str | None) -> bool:
    return input_format == "ssml" or (input_format is None and looks_like_ssml(text))


def speech_text(text: str, input_format: str | None, param: str, limits: SsmlLimits | None = None) -> SpeechText:
    """`text` as the stream speaks it; malformed, refused or over-limit SSML: a 400 `invalid_ssml` naming `param`
    and where in it the fault is."""
    if not is_ssml(text, input_format):
        return SpeechText(text)
    try:
        doc = parse_ssml(text, limits)
    except SsmlError as exc:
        raise InvalidRequestError(f"{param} is not valid SSML: {exc}", param=param, code="invalid_ssml") from None
    return SpeechText(doc.document, doc.ignored)


def ignored_headers(ignored: tuple[str, ...]) -> dict[str, str]:
    """`X-SSML-Ignored` when an SSML input held elements or attributes that were not applied (never silently)."""
    return {IGNORED_HEADER: ",".join(ignored)} if ignored else {}


MAX_OPEN_ELEMENT_CHARS = 4096
"""A streamed SSML element (a `<say-as>`, a `<lang>`...) waits for its end tag at most this many characters."""


class Feed(Protocol):
    """What `SsmlFeed` feeds (app.service.segments.TextFeed)."""

    segmenter: TextSegmenter
    streaming: StreamingSettings
    usage: StreamUsage

    def push_plain(self, text: str) -> None: ...

    def push_segments(self, segments: Iterable[str]) -> None: ...


class SsmlFeed:
    """A text feed's streamed SSML: its plain text to the feed's segmenter as it comes, each complete element's
    segments queued in order after it (a `<break/>`: a pause), tags counted in the offsets. Bad SSML is a 400
    `invalid_ssml` naming `text`; an element still open at the end is read as plain text (and named in
    `usage.ssml_ignored`)."""

    def __init__(self, feed: Feed, max_chars: int = MAX_OPEN_ELEMENT_CHARS) -> None:
        self.feed = feed
        self.stream = SsmlStream(max_chars=max_chars)
        self.carry: Segment | None = None  # an inline element's segment, joined to the text cut after it
        self._space_before = False  # the text before the next element ended with white space
        self._space_after: bool | None = None  # the text after the carried element begins with white space

    def joined(self, segments: Sequence[str]) -> list[str]:
        """`segments` about to be queued, the carried element's segment first: joined to the first of them (one
        sentence), or alone before a pause."""
        if self.carry is None:
            return list(segments)
        carry, self.carry = self.carry, None
        first = segments[0]
        if isinstance(first, Segment) and any(s.type.breaks for s in first.spans):
            return [carry, *segments]
        return [carry.joined(" " if self._space_after else "", _as_text(first)), *segments[1:]]

    def take_carry(self) -> list[Segment]:
        """The carried segment, to be queued now (a flush, the end)."""
        carry, self.carry = self.carry, None
        return [carry] if carry is not None else []

    @property
    def buffered(self) -> int:
        return self.stream.buffered

    def push(self, text: str) -> None:
        try:
            pieces = self.stream.push(text)
        except SsmlError as exc:
            self.stream.drain()
            raise InvalidRequestError(f"text is not valid SSML: {exc}", param="text", code="invalid_ssml") from None
        self._take(pieces)

    def end(self) -> None:
        try:
            pieces = self.stream.end()
        except SsmlError:
            pieces = [StreamPiece("text", 0, self.stream.drain())]
            self.feed.usage.ssml_ignored.append("unfinished-element")
        self._take(pieces)

    def _take(self, pieces: list[StreamPiece]) -> None:
        segmenter = self.feed.segmenter
        for p in pieces:
            if p.kind == "text":
                if p.text and self.carry is not None and self._space_after is None:
                    self._space_after = p.text[0].isspace()
                self._space_before = p.text[-1:].isspace() if p.text else self._space_before
                self.feed.push_plain(p.text)
                continue
            if p.kind == "skip":
                segmenter.skip(p.size)
                continue
            segments = _shifted(self._segments(p.document), segmenter.fed) if p.document is not None else []
            before = segmenter.flush()  # what is buffered ends here, or goes on into an inline element
            if segments and p.kind == "element" and not any(s.type.breaks for s in segments[0].spans):
                self._inline(before, segments)
            else:
                self.feed.push_segments([*before, *segments])
                self.feed.push_segments(self.take_carry())  # a boundary with nothing before it
            segmenter.skip(p.size)
            self.feed.usage.ssml_ignored += p.ignored

    def _inline(self, before: list[Segment], segments: list[Segment]) -> None:
        """An inline element (a `<sub>`, a `<say-as>`): joined to the text before it, and its last segment held for
        the text after it (the rest of its sentence)."""
        first, sep = segments[0], " " if self._space_before else ""  # XML: "x<sub>y</sub>" is one word
        if before:
            first = _as_text(before[-1]).joined(sep, first)
            sep = " " if self._space_after else ""
        if self.carry is not None:
            first = _as_text(self.carry).joined(sep, first)
        self.carry = None
        segments[0] = first
        self.feed.push_segments(segments[:-1])
        self.carry, self._space_before, self._space_after = segments[-1], False, None

    def _segments(self, doc: TextDocument) -> Iterator[Segment]:
        size = self.feed.streaming.segment_max_chars
        return iter_document_segments(doc, max_chars=size, first_max_chars=size)


def _as_text(segment: Segment) -> Segment:
    """A plain segment with its text span (to be joined to one with spans of other kinds)."""
    return Segment(str(segment), segment.offsets, segment.spans or [Span("text", segment.start, segment.end)])


def _shifted(segments: Iterable[Segment], base: int) -> list[Segment]:
    """An element's segments with their offsets and spans in the whole stream's text (the element began at `base`)."""
    return [
        Segment(
            str(s), [o + base for o in s.offsets],
            [Span(p.kind, p.start + base, p.end + base, p.language, p.attrs) for p in s.spans],
        )  # fmt: skip
        for s in segments
    ]
