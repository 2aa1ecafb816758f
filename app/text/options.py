"""`TextOptions`: how one request's text is read, as one value (instead of `normalize_malaysian` and `language`
passed side by side through every layer). A later option (a pronunciation dictionary, SSML parsing) is a field
here and reaches every path that takes the value."""

from __future__ import annotations

from dataclasses import dataclass, replace

from app.text.dictionary import Dictionary

LANGUAGES = ("auto", "ms", "en", "zh")


@dataclass(frozen=True)
class TextOptions:
    normalize_malaysian: bool = True  # False: markup and whitespace cleaned only, no rules
    language: str = "auto"  # "auto" (detected per sentence), "ms", "en" or "zh"
    dictionaries: tuple[Dictionary, ...] = ()  # pronunciation dictionaries, in the request's order (the first wins)

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, got {self.language!r}")

    def reading(self, language: str | None) -> TextOptions:
        """These options for a span with its own language hint (None: the request's)."""
        return self if language is None or language == self.language else replace(self, language=language)


class TextFields:
    """A request model's `text_options`, from its `normalize_malaysian` and `language` fields (a mixin that adds
    no field: the wire format stays the model's own)."""

    @property
    def text_options(self) -> TextOptions:
        return TextOptions(self.normalize_malaysian, self.language)  # type: ignore[attr-defined]
