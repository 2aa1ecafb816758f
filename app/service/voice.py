"""What a request's voice resolves to: a built-in speaker, or a cloned voice (a reference clip's tokens and text).

Every text path prompts through `prompt_for`: a built-in speaker continues from the previous segment's context when
there is one; a cloned voice is prompted with its reference every time (the reference *is* its context).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.prompts import voice_clone_prompt
from app.service.context import SpeechContext
from app.service.prompting import segment_prompt


@dataclass(frozen=True)
class Voice:
    """`name`: what the client asked for (a built-in voice, an alias or a saved voice; `<cloned>` for an upload).
    `speaker`: the built-in speaker the model is prompted with, or None for a cloned voice, which then carries its
    reference: `reference_text` (normalized) and `reference_tokens` (codec tokens of the clip)."""

    name: str
    speaker: str | None = None
    reference_text: str = field(default="", repr=False)  # a saved voice's transcript: never in a log line
    reference_tokens: tuple[int, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.speaker is None and not (self.reference_text and self.reference_tokens):
            raise ValueError("a cloned voice needs its reference text and tokens")

    def __str__(self) -> str:  # in logs: the name, never the transcript or the tokens
        return self.name

    @property
    def cloned(self) -> bool:
        return self.speaker is None

    @classmethod
    def builtin(cls, speaker: str, name: str | None = None) -> Voice:
        return cls(name=name or speaker, speaker=speaker)

    @classmethod
    def clone(cls, reference_text: str, reference_tokens: tuple[int, ...] | list[int], name: str = "<cloned>") -> Voice:
        return cls(name=name, reference_text=reference_text, reference_tokens=tuple(int(t) for t in reference_tokens))

    def prompt_for(self, text: str, context: SpeechContext | None = None) -> str:
        """The prompt that speaks already-normalized `text` in this voice."""
        if self.speaker is None:
            return voice_clone_prompt(self.reference_text, self.reference_tokens, text)
        return segment_prompt(self.speaker, text, context)
