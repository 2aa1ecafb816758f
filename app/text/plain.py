"""`TEXT_NORMALIZER=none`: text goes to the model as written (whitespace collapsed). For deployments whose
callers normalize upstream, or machines without malaya; loads nothing."""

from __future__ import annotations


class PlainNormalizer:
    def warmup(self) -> None:
        pass

    def normalize(self, text: str, malaysian: bool = True, language: str = "auto") -> str:
        return " ".join(text.split())
