"""A request's text as SSML or as plain text: the one place every path (our speech and vc endpoints, our WebSocket,
ElevenLabs' HTTP and WebSocket) turns its input into what the segment stream speaks, and SSML's errors into 400s.

`input_format`: "ssml" parses the input as SSML (a `<speak>` document, or a `<speak>` document's content), "text"
never does, None (auto) parses it when it starts with `<speak>`: plain text that merely holds a `<` stays text."""

from __future__ import annotations

from dataclasses import dataclass

from app.errors import InvalidRequestError
from app.text.document import TextDocument
from app.text.ssml import SsmlError, SsmlLimits, looks_like_ssml, parse_ssml

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
