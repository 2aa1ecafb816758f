"""SSML's span kinds (app.text.document): a pause, a segment boundary, an alias, a say-as. Each says what the
normalizer reads for it; the pause is a segment of its own that is silence, not a generation
(app.service.segments)."""

from __future__ import annotations

import re

from app.text.document import Segment, Span, SpanType, span_type
from app.text.offsets import Mapped

INTERPRET_AS = frozenset(
    {"characters", "spell-out", "verbatim", "digits", "telephone", "cardinal", "number", "ordinal", "date", "time",
     "currency"}
)  # fmt: skip
_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
_DIGITS = re.compile(r"[0-9]+")


@span_type
class PauseSpan(SpanType):
    """`<break>`: `attrs["seconds"]` of silence; a segment of its own, sent to no model."""

    name = "pause"
    atomic = True
    breaks = True
    normalized = False

    def reads(self, span: Span, text: Mapped) -> Mapped:
        return Mapped("", ())


@span_type
class BoundarySpan(SpanType):
    """`<p>`/`<s>`'s start or end: an empty span where a segment ends."""

    name = "boundary"
    breaks = True
    normalized = False

    def reads(self, span: Span, text: Mapped) -> Mapped:
        return Mapped("", ())


@span_type
class SubSpan(SpanType):
    """`<sub alias>`: the alias is read (by the rules) for the text; each of its characters names all of it."""

    name = "sub"
    atomic = True

    def reads(self, span: Span, text: Mapped) -> Mapped:
        alias = " ".join(span.attrs.get("alias", "").split())
        return _padded(text, Mapped(alias, (_whole(text),) * len(alias)))


@span_type
class SayAsSpan(SpanType):
    """`<say-as interpret-as format>`: the text rewritten so that the normalizer's rules read it as asked, in the
    sentence's language (Malay, English or Chinese): each character names the source it came from."""

    name = "say-as"
    atomic = True

    def reads(self, span: Span, text: Mapped) -> Mapped:
        return _padded(text, self._said(span, text))

    def _said(self, span: Span, text: Mapped) -> Mapped:
        how, fmt = span.attrs.get("interpret-as", ""), span.attrs.get("format", "")
        words = Mapped(" ".join(text.text.split()), _squeezed(text))
        if how in ("characters", "spell-out", "verbatim"):
            return _spaced(words, lambda c: not c.isspace())
        if how in ("digits", "telephone") and (how == "digits" or not re.search(r"[\s()+-]", words.text)):
            return _spaced(words, str.isdigit)
        if how in ("cardinal", "number"):
            return _replaced(words, lambda n: str(n) if span.language == "zh" else f"{n:,}")  # "2,024": no year
        if how == "ordinal":
            return _replaced(words, lambda n: f"第{n}" if span.language == "zh" else f"ke-{n}")
        if how == "date":
            return _date(words, fmt) or words
        return words  # time, currency, a telephone number with its separators: the rules read them as written


def _padded(text: Mapped, said: Mapped) -> Mapped:
    """`said` with the space `text` has before and after it (a space joined in after the span stays a space)."""
    head = Mapped(" ", text.spans[:1]) if text.text[:1].isspace() and said.text else Mapped("", ())
    tail = Mapped(" ", text.spans[-1:]) if text.text[-1:].isspace() and said.text else Mapped("", ())
    return Mapped.join([head, said, tail], "")


def _whole(text: Mapped) -> tuple[int, int]:
    ranges = [s for s in text.spans if s[1] > s[0]] or list(text.spans) or [(0, 0)]
    return (min(s[0] for s in ranges), max(s[1] for s in ranges))


def _squeezed(text: Mapped) -> tuple[tuple[int, int], ...]:
    """The source ranges of `" ".join(text.text.split())`'s characters."""
    out: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text.text):
        if out:
            out.append(text.spans[m.start() - 1])
        out += text.spans[m.start() : m.end()]
    return tuple(out)


def _spaced(words: Mapped, keep) -> Mapped:  # noqa: ANN001
    """Each kept character apart: "AB12" -> "A B 1 2"."""
    return Mapped.join([Mapped(c, (s,)) for c, s in zip(words.text, words.spans, strict=True) if keep(c)], " ")


def _replaced(words: Mapped, form) -> Mapped:  # noqa: ANN001
    """Each number (its grouping commas and spaces dropped) written as `form(n)` says; the rest kept."""
    plain = re.sub(r"(?<=[0-9])[, ](?=[0-9]{3}\b)", "", words.text)
    if plain != words.text:
        keep = [i for i, c in enumerate(words.text) if not (c in ", " and i > 0 and words.text[i - 1].isdigit())]
        words = Mapped(plain, tuple(words.spans[i] for i in keep)) if len(keep) == len(plain) else words
    parts: list[Mapped] = []
    at = 0
    for m in _DIGITS.finditer(words.text):
        parts.append(Mapped(words.text[at : m.start()], words.spans[at : m.start()]))
        said = form(int(m.group()))
        parts.append(Mapped(said, ((words.spans[m.start()][0], words.spans[m.end() - 1][1]),) * len(said)))
        at = m.end()
    parts.append(Mapped(words.text[at:], words.spans[at:]))
    return Mapped.join(parts, "")


def _date(words: Mapped, fmt: str) -> Mapped | None:
    """A date in `format` (d, m, y in its order: "mdy", "dmy", "ymd", "md", "dm", "my", "ym", "y", "m", "d") written
    the way the date rules read it whatever the language: "2024-12-03", "3 December", "December 2024"."""
    numbers = [int(n) for n in _DIGITS.findall(words.text)]
    fmt = fmt.lower() or ("ymd" if len(numbers) == 3 and len(_DIGITS.findall(words.text)[0]) == 4 else "dmy")
    if len(numbers) != len(fmt) or set(fmt) - set("dmy"):
        return None
    got = dict(zip(fmt, numbers, strict=True))
    day, month, year = got.get("d"), got.get("m"), got.get("y")
    if month is not None and not 1 <= month <= 12 or day is not None and not 1 <= day <= 31:
        return None
    if year is not None and year < 100:
        year += 2000 if year < 50 else 1900
    if day and month and year:
        said = f"{year:04d}-{month:02d}-{day:02d}"
    elif day and month:
        said = f"{day} {_MONTHS[month - 1]}"
    elif month and year:
        said = f"{_MONTHS[month - 1]} {year}"
    else:
        said = str(next(n for n in (year, month and _MONTHS[month - 1], day) if n))
    whole = _whole(words)
    return Mapped(said, (whole,) * len(said))


def pause_seconds(segment: str) -> float | None:
    """A segment's silence when it is a pause (`<break>`'s), else None."""
    spans = getattr(segment, "spans", ())
    if isinstance(segment, Segment) and len(spans) == 1 and spans[0].kind == "pause":
        return float(spans[0].attrs.get("seconds", "0"))
    return None
