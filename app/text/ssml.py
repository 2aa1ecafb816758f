"""SSML in: a request's SSML as a `TextDocument` of spans over the text as sent (pure: no I/O).

    doc = parse_ssml('<speak>Hi <break time="500ms"/> <sub alias="World Wide Web">WWW</sub></speak>')
    doc.document      # spans over the SSML as sent: text, a pause, an alias (app.text.ssml_spans)
    doc.ignored       # the elements and attributes that were spoken as plain text, not applied

The subset Polly, Google and Azure share: `<speak>`, `<break time|strength>` (silence, at most `MAX_BREAK_S` each),
`<say-as interpret-as format>` (read by our normalizer's rules), `<sub alias>`, `<lang xml:lang>` (that span's
language), `<p>`/`<s>` (segment boundaries). Any other element's text is spoken and its name listed in `ignored`.

The parser is defusedxml's hardened expat (no DTD, no entity declarations, no external references). The size and the
element count are bounded before any parsing (`SsmlLimits`), the depth while parsing (the first element too deep
stops it). Malformed SSML raises `SsmlError` naming the line and column. Text with no `<speak>` root is parsed as a
`<speak>` document's content (ElevenLabs' `enable_ssml_parsing`: a sentence with a `<break/>` in it).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from types import MappingProxyType
from xml.parsers import expat
from xml.parsers.expat import ExpatError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from app.text import ssml_spans
from app.text.document import Span, TextDocument

MAX_BREAK_S = 10.0  # one <break>'s longest silence (Polly's and Google's limit)
STRENGTHS = {"none": 0.0, "x-weak": 0.25, "weak": 0.5, "medium": 0.75, "strong": 1.0, "x-strong": 1.25}
"""`<break strength>` in seconds (Azure's figures; a `<break/>` with neither attribute is `medium`)."""
LANGUAGE_CODES = {"ms": "ms", "msa": "ms", "zsm": "ms", "en": "en", "eng": "en", "zh": "zh", "zho": "zh", "cmn": "zh"}
"""An `xml:lang` tag's primary subtag -> our reading language (others: read as the request says, and reported)."""

_SPEAK = re.compile(r"\s*(?:<\?xml[^>]*\?>\s*)?<speak[\s>/]")
_DOCUMENT = re.compile(r"<\?xml|<!DOCTYPE", re.IGNORECASE)  # a document of its own (refused if not <speak>)
_TIME = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s)\s*$")
_WRAP = "<speak>"


class SsmlError(ValueError):
    """Malformed or refused SSML: `message` and, when known, where (1-based `line` and `column` in the text)."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = f" at line {line}, column {column}" if line is not None else ""
        super().__init__(f"{message}{where}")
        self.line, self.column = line, column


@dataclass(frozen=True)
class SsmlLimits:
    """Bounds on one SSML text: characters (checked before parsing), elements (its `<` counted before parsing),
    nesting depth (checked as each element opens) and the silence of all its breaks together."""

    max_chars: int = 100_000
    max_elements: int = 1_000
    max_depth: int = 32
    max_total_break_s: float = 120.0


@dataclass(frozen=True)
class SsmlDocument:
    document: TextDocument
    ignored: tuple[str, ...] = ()  # what was spoken as plain text, not applied ("prosody", "say-as@interpret-as=x")
    language: str | None = None  # the root's xml:lang, as our reading language


def looks_like_ssml(text: str) -> bool:
    """True when `text` is an SSML document: it starts with `<speak` (after an optional XML declaration). Text
    that merely holds a `<` is plain text."""
    return _SPEAK.match(text) is not None


def parse_ssml(text: str, limits: SsmlLimits | None = None) -> SsmlDocument:
    """`text` (an SSML document, or a `<speak>` document's content) as a document over `text` itself; raises
    `SsmlError` for malformed, refused or over-limit SSML."""
    limits = limits or SsmlLimits()
    if len(text) > limits.max_chars:
        raise SsmlError(f"the SSML is {len(text)} characters; the limit is {limits.max_chars}")
    if text.count("<") > 2 * limits.max_elements + 2:
        raise SsmlError(f"the SSML has more than {limits.max_elements} elements")
    wrapped = not (looks_like_ssml(text) or _DOCUMENT.match(text))
    return _Builder(text, wrapped, limits).parse()


def break_seconds(attrs: dict[str, str]) -> float:
    """A `<break>`'s silence in seconds (`time` wins over `strength`); `ValueError` for a value it cannot read."""
    if "time" in attrs:
        m = _TIME.match(attrs["time"])
        if m is None:
            raise ValueError(f"break time {attrs['time'][:40]!r} is not a duration such as 500ms or 1.5s")
        value = float(m.group(1))
        return value / 1000 if m.group(2) == "ms" else value
    strength = attrs.get("strength", "medium")
    if strength not in STRENGTHS:
        raise ValueError(f"break strength {strength[:40]!r} is not one of {', '.join(STRENGTHS)}")
    return STRENGTHS[strength]


def language_of(tag: str) -> str | None:
    """`xml:lang` ("en-US", "ms-MY", "zh-CN", "cmn-Hans-CN") -> "en" / "ms" / "zh"; None for another language."""
    return LANGUAGE_CODES.get(tag.strip().lower().replace("_", "-").split("-")[0])


@dataclass
class _Open:
    """An element being parsed: its name, where its start tag began (an index in the text), what it does."""

    name: str
    start: int
    kind: str | None = None  # "say-as", "sub": its text is one span of that kind
    attrs: dict[str, str] = field(default_factory=dict)
    language: str | None = None
    first: int | None = None  # its text's first and last index (a say-as' or a sub's)
    last: int = 0


class _Builder:
    """Expat's events -> spans over the text (each character's index found from expat's byte index)."""

    def __init__(self, text: str, wrapped: bool, limits: SsmlLimits) -> None:
        self.text, self.limits = text, limits
        self.shift = len(_WRAP) if wrapped else 0
        self.xml = f"{_WRAP}{text}</speak>" if wrapped else text
        self.bytes_at: list[int] = []  # the UTF-8 byte index of each character of `xml`
        n = 0
        for ch in self.xml:
            self.bytes_at.append(n)
            n += len(ch.encode("utf-8", "surrogatepass"))
        self.stack: list[_Open] = []
        self.spans: list[Span] = []
        self.ignored: list[str] = []
        self.pending: tuple[int, str] | None = None  # a text chunk whose end is the next event's index
        self.breaks = 0.0
        self.elements = 0
        self.root_language: str | None = None

    # -- positions -----------------------------------------------------------------------------------------
    def _index(self) -> int:
        """The current event's index in the text as sent."""
        return bisect_right(self.bytes_at, self.parser.CurrentByteIndex) - 1 - self.shift

    def _error(self, message: str) -> SsmlError:
        at = max(0, min(len(self.text), self._index()))
        line = self.text.count("\n", 0, at) + 1
        return SsmlError(message, line, at - (self.text.rfind("\n", 0, at) + 1) + 1)

    def parse(self) -> SsmlDocument:
        self.parser = _hardened()
        self.parser.StartElementHandler = self._start
        self.parser.EndElementHandler = self._end
        self.parser.CharacterDataHandler = self._data
        self.parser.ProcessingInstructionHandler = lambda *a: self._close_text()
        self.parser.CommentHandler = lambda *a: self._close_text()
        try:
            self.parser.Parse(self.xml, True)
        except ExpatError as exc:
            line, column = exc.lineno, exc.offset + 1
            if self.shift and line == 1:
                column -= self.shift
            raise SsmlError(f"malformed SSML: {str(exc).split(':')[0]}", line, max(1, column)) from None
        except DefusedXmlException as exc:
            raise self._error(f"refused SSML: {type(exc).__name__} (DTDs, entities and external references)") from None
        spans = _merged([s for s in self.spans if s.start >= 0 and s.end <= len(self.text)])
        doc = TextDocument(self.text, tuple(spans))
        return SsmlDocument(doc, tuple(dict.fromkeys(self.ignored)), self.root_language)

    # -- events --------------------------------------------------------------------------------------------
    def _close_text(self) -> None:
        if self.pending is None:
            return
        start, data = self.pending
        self.pending = None
        end = self._index()
        inner = next((o for o in reversed(self.stack) if o.kind is not None), None)
        if inner is not None:  # a say-as' or a sub's text: one span, made at its end
            inner.first = start if inner.first is None else inner.first
            inner.last = end
            return
        self.spans.append(Span("text", start, end, self._language()))

    def _language(self) -> str | None:
        return next((o.language for o in reversed(self.stack) if o.language is not None), None)

    def _data(self, data: str) -> None:
        self._close_text()
        self.pending = (self._index(), data)

    def _start(self, name: str, attr_list: list[str]) -> None:
        self._close_text()
        self.elements += 1
        if self.elements > self.limits.max_elements:
            raise self._error(f"the SSML has more than {self.limits.max_elements} elements")
        if len(self.stack) >= self.limits.max_depth:
            raise self._error(f"the SSML nests deeper than {self.limits.max_depth} elements")
        attrs = dict(zip(attr_list[::2], attr_list[1::2], strict=True))
        if not self.stack and name != "speak":
            raise self._error(f"the SSML root must be <speak>, not <{name[:40]}>")
        element = _Open(name, self._index())
        self.stack.append(element)
        if "xml:lang" in attrs and name in ("speak", "lang", "voice", "p", "s"):
            element.language = language_of(attrs["xml:lang"])
            if element.language is None:
                self.ignored.append(f"{name}@xml:lang={attrs['xml:lang'][:40]}")
            if name == "speak":
                self.root_language = element.language
        elif name == "lang":
            self.ignored.append("lang")  # without xml:lang it does nothing
        if name in ("p", "s"):
            self.spans.append(Span("boundary", element.start, element.start))
        elif name == "say-as":
            self._say_as(element, attrs)
        elif name == "sub":
            element.kind, element.attrs = "sub", {"alias": attrs.get("alias", "")}
            if "alias" not in attrs:
                self.ignored.append("sub")
        elif name == "break":
            self._break(element, attrs)
        elif name not in ("speak", "lang"):
            self.ignored.append(name)

    def _say_as(self, element: _Open, attrs: dict[str, str]) -> None:
        how = attrs.get("interpret-as", "")
        if how in ssml_spans.INTERPRET_AS:
            element.kind = "say-as"
            element.attrs = {"interpret-as": how, "format": attrs.get("format", "")}
        else:
            self.ignored.append(f"say-as@interpret-as={how[:40]}")

    def _break(self, element: _Open, attrs: dict[str, str]) -> None:
        try:
            seconds = break_seconds(attrs)
        except ValueError as exc:
            raise self._error(str(exc)) from None
        if seconds > MAX_BREAK_S:
            self.ignored.append(f"break@time>{MAX_BREAK_S:g}s")
            seconds = MAX_BREAK_S
        self.breaks += seconds
        if self.breaks > self.limits.max_total_break_s:
            raise self._error(f"the SSML's breaks add up to more than {self.limits.max_total_break_s:g} s")
        element.kind, element.attrs = None, {"seconds": repr(seconds)}

    def _end(self, name: str) -> None:
        self._close_text()
        element = self.stack.pop()
        end = self._index()
        if name == "break":
            stop = max(end, element.start + 1)
            self.spans.append(Span("pause", element.start, stop, None, MappingProxyType(element.attrs)))
        elif name in ("p", "s"):
            self.spans.append(Span("boundary", end, end))
        elif element.kind is not None:
            if element.first is None:  # nothing inside: the element itself stands for it
                element.first, element.last = element.start, end
            language = self._language() if element.language is None else element.language
            self.spans.append(Span(element.kind, element.first, element.last, language, MappingProxyType(element.attrs)))


def _hardened() -> expat.XMLParserType:
    """An expat parser without namespace processing (Polly's `<amazon:effect>` declares no namespace) with
    defusedxml's handlers: a DTD, an entity declaration or an external reference raises."""
    defused = DefusedXMLParser(forbid_dtd=True, forbid_entities=True, forbid_external=True)
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = defused.defused_start_doctype_decl
    parser.EntityDeclHandler = defused.defused_entity_decl
    parser.UnparsedEntityDeclHandler = defused.defused_unparsed_entity_decl
    parser.ExternalEntityRefHandler = defused.defused_external_entity_ref_handler
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.ordered_attributes = True
    parser.buffer_text = False
    return parser


def _merged(spans: list[Span]) -> list[Span]:
    """Spans in order without overlaps; touching text spans of one language joined."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and s.start < out[-1].end:
            continue  # inside the span before (a pause within a say-as): the outer one wins
        prev = out[-1] if out else None
        if prev is not None and prev.kind == s.kind == "text" and prev.end == s.start and prev.language == s.language:
            out[-1] = Span("text", prev.start, s.end, s.language)
        else:
            out.append(s)
    return out
