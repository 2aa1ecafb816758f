"""A request's text as a parsed document: `Span`s over the text the client sent, each with its source offsets,
its kind and its attributes, before anything cuts or rewrites it.

A span's kind is a `SpanType`, registered by name (`span_type`): what the segmenter may do with it (`atomic`: never
cut inside; `breaks`: a segment ends before and after it), what the normalizer reads for it (`reads`: its text,
or something said instead, each character naming the source it stands for; `normalized`: whether the rules read
it), and through that what the timings name. A new kind (SSML's pause, say-as, alias, a dictionary's entry) is one
subclass in one place; every path takes it from here.

`Segment`: a piece cut from a document, to be synthesized: its text (a `str`, so whatever took a segment's text
keeps working), `offsets[i]` the source index of `text[i]`, and the spans it holds, clipped to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import ClassVar

from app.text.offsets import Mapped


@dataclass(frozen=True)
class Span:
    """`source[start:end]` of a document, of kind `kind` (a registered `SpanType`'s name). `language`: a reading
    language hint for it alone (None: the request's). `attrs`: what its kind needs (an alias, a pause's length,
    a read-as class)."""

    kind: str
    start: int
    end: int
    language: str | None = None
    attrs: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end:
            raise ValueError(f"a span from {self.start} to {self.end}")
        if self.kind not in SPAN_TYPES:
            raise ValueError(f"unknown span kind {self.kind!r}")

    @property
    def type(self) -> SpanType:
        return SPAN_TYPES[self.kind]

    def clipped(self, start: int, end: int) -> Span:
        return Span(self.kind, max(self.start, start), min(self.end, end), self.language, self.attrs)


@dataclass(frozen=True)
class Reading:
    """What the normalizer reads for a run of a segment: the text (each character naming its source range), its
    language hint and whether the rules apply."""

    text: Mapped
    language: str | None = None
    normalized: bool = True


class SpanType:
    """A kind of span. Subclass it with a `name` and register it with `span_type`."""

    name: ClassVar[str]
    atomic: ClassVar[bool] = False  # the segmenter never cuts inside it
    breaks: ClassVar[bool] = False  # a segment ends before it and after it
    normalized: ClassVar[bool] = True  # the normalizer's rules read what it `reads`

    def reads(self, span: Span, text: Mapped) -> Mapped:
        """The text the normalizer reads for `span`, given its text in the segment (`text`, over the source)."""
        return text


SPAN_TYPES: dict[str, SpanType] = {}


def span_type(cls: type[SpanType]) -> type[SpanType]:
    """Registers a span kind (a class decorator)."""
    SPAN_TYPES[cls.name] = cls()
    return cls


@span_type
class TextSpan(SpanType):
    """Plain text: cut at its sentences and clauses, read by the rules in the request's language."""

    name = "text"


@dataclass(frozen=True)
class TextDocument:
    """The text the client sent (`source`) and its spans, in order, not overlapping."""

    source: str
    spans: tuple[Span, ...]

    def __post_init__(self) -> None:
        end = 0
        for s in self.spans:
            if s.start < end or s.end > len(self.source):
                raise ValueError("spans must be in order, apart, and inside the source")
            end = s.end

    @classmethod
    def plain(cls, text: str) -> TextDocument:
        """A text with no markup: one text span over all of it."""
        return cls(text, (Span("text", 0, len(text)),))

    @property
    def is_plain(self) -> bool:
        return all(s.kind == "text" and s.language is None for s in self.spans)


class Segment(str):
    """A segment's text, with `offsets` (the source index of each character) and the spans it holds."""

    offsets: tuple[int, ...]
    spans: tuple[Span, ...]

    def __new__(cls, text: str, offsets: Sequence[int], spans: Iterable[Span] = ()) -> Segment:
        if len(offsets) != len(text):
            raise ValueError(f"{len(offsets)} offsets for {len(text)} characters")
        self = super().__new__(cls, text)
        self.offsets = tuple(offsets)
        self.spans = tuple(spans)
        return self

    def __reduce__(self) -> tuple:
        return (Segment, (str(self), self.offsets, self.spans))

    @property
    def start(self) -> int:
        return self.offsets[0] if self.offsets else 0

    @property
    def end(self) -> int:
        return self.offsets[-1] + 1 if self.offsets else 0

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The source ranges the segment came from (runs of consecutive offsets; a space joined in bridges)."""
        out: list[tuple[int, int]] = []
        for o in self.offsets:
            if out and out[-1][0] <= o <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], o + 1))
            else:
                out.append((o, o + 1))
        return out

    def mapped(self) -> Mapped:
        return Mapped(str(self), tuple((o, o + 1) for o in self.offsets))

    def joined(self, sep: str, other: Segment) -> Segment:
        """This segment, `sep`, then `other` (the separator names the source index after this one's end)."""
        at = self.end
        return Segment(str(self) + sep + str(other), (*self.offsets, *[at] * len(sep), *other.offsets), (*self.spans, *other.spans))


def segment_of(text: str, base: int = 0) -> Segment:
    """`text` as a segment of its own: a plain text from source index `base`."""
    if isinstance(text, Segment):
        return text
    return Segment(text, range(base, base + len(text)), (Span("text", base, base + len(text)),))


def readings(segment: Segment) -> list[Reading]:
    """What the normalizer reads for a segment: each run of its characters that one span holds, as that span's
    kind reads it (a character no span holds, such as a space joined in, goes with the run before it)."""
    spans = segment.spans or (Span("text", segment.start, segment.end),)
    text = segment.mapped()
    out: list[Reading] = []
    k = j = run_start = 0
    for i, o in enumerate(segment.offsets):
        while j + 1 < len(spans) and o >= spans[j].end:
            j += 1
        if j != k and spans[j].start <= o < spans[j].end:  # a new span begins here
            if i > run_start:
                out.append(_reading(spans[k], text, run_start, i))
            k, run_start = j, i
    if len(segment) > run_start:
        out.append(_reading(spans[k], text, run_start, len(segment)))
    return out


def _reading(span: Span, text: Mapped, start: int, end: int) -> Reading:
    kind = span.type
    part = Mapped(text.text[start:end], text.spans[start:end])
    return Reading(kind.reads(span, part), span.language, kind.normalized)
