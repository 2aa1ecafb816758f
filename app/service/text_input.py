"""User text -> the text prompted: the length limit, the normalizer on its priority pool, control markers out."""

from __future__ import annotations

from typing import Protocol

from app.errors import InvalidRequestError
from app.prompts import strip_control_tokens
from app.text.executor import SPEECH, PriorityExecutor


class TextNormalizer(Protocol):
    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str: ...


class TextInput:
    """Checks and normalizes request text. The normalizer runs on one pool where speech goes before tools."""

    def __init__(self, normalizer: TextNormalizer, max_chars: int) -> None:
        self.normalizer = normalizer
        self.max_chars = max_chars
        self._pool = PriorityExecutor("normalizer")

    def close(self) -> None:
        self._pool.shutdown()

    def check(self, text: str, param: str) -> None:
        """A 400 when `text` is longer than the input limit."""
        if len(text) > self.max_chars:
            raise InvalidRequestError(f"{param} is {len(text)} characters; the limit is {self.max_chars}", param=param)

    async def normalize(self, text: str, malaysian: bool, language: str = "auto", *, priority: int = SPEECH) -> str:
        """The text as it will be prompted: normalized, without control markers."""
        text = await self._pool.run(priority, self.normalizer.normalize, text, malaysian, language)
        return strip_control_tokens(text)


def require_speech(text: str, param: str) -> str:
    """`text` (normalized), or a 400 when nothing speakable is left of it."""
    if not text:
        raise InvalidRequestError(f"{param} has nothing to speak after cleanup", param=param)
    return text
