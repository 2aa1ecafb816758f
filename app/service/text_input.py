"""User text -> the text prompted: clean input, the length limit, the normalizer on its priority pool, control
markers out.

Every text that reaches the shared normalizer thread is at most the input limit (`MAX_INPUT_CHARS`), so one
request holds it for a bounded time; a longer text is refused (400) before it is queued.
"""

from __future__ import annotations

import re
from typing import Protocol

from app.errors import InvalidRequestError
from app.prompts import strip_control_tokens
from app.text.dictionary import apply as apply_dictionaries
from app.text.document import Reading, readings, segment_of
from app.text.executor import SPEECH, PriorityExecutor
from app.text.offsets import Mapped, Tracker, carry, sub, tracking
from app.text.options import TextOptions

# A str holding a code point of U+D800-U+DFFF is not Unicode text (JSON's "\ud800" alone, or a broken pair).
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 control characters other than white space, and the bidi marks, embeddings, overrides and isolates
# (a "Trojan Source" reordering of what is read versus what is shown in logs and transcripts).
INVISIBLE = "\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
"""The characters removed from every text (control characters but white space, bidi controls): a regex class."""
_INVISIBLE = re.compile(f"[{INVISIBLE}]")


def unpaired_surrogate(text: str) -> bool:
    return _SURROGATE.search(text) is not None


def without_invisible(text: str) -> str:
    """`text` without control characters (white space kept) and bidi controls."""
    return _INVISIBLE.sub("", text)


def cleaned_offsets(text: str) -> list[int]:
    """For each character of `text`, its index in `without_invisible(text)` (a removed one: the next kept one's)."""
    out, kept = [], 0
    for ch in text:
        out.append(kept)
        if not _INVISIBLE.match(ch):
            kept += 1
    return out


def clean_text(text: str, param: str) -> str:
    """`text` without control characters and bidi controls; a 400 when it holds an unpaired surrogate."""
    if unpaired_surrogate(text):
        raise InvalidRequestError(
            f"{param} holds an unpaired surrogate (U+D800-U+DFFF); send valid Unicode text", param=param
        )
    return without_invisible(text)


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

    def tail(self, text: str) -> str:
        """The end of `text` that fits the input limit, from a word start (all of it when it fits)."""
        if len(text) <= self.max_chars:
            return text
        end = text[-self.max_chars :]
        space = end.find(" ")
        return end[space + 1 :] if 0 <= space < len(end) - 1 else end

    async def normalize(
        self, text: str, malaysian: bool, language: str = "auto", *, priority: int = SPEECH, param: str = "input"
    ) -> str:
        """The text as it will be prompted: clean, normalized, without control markers. A 400 when it is longer
        than the input limit (checked before it is queued for the normalizer thread)."""
        self.check(text, param)
        text = without_invisible(_SURROGATE.sub("", text))  # the request models refuse surrogates; never prompted
        text = await self._pool.run(priority, self.normalizer.normalize, text, malaysian, language)
        return strip_control_tokens(text)

    async def speak(
        self, text: str, options: TextOptions, *, priority: int = SPEECH, param: str = "input"
    ) -> Mapped:
        """`normalize` for a segment (a `Segment` from app.text.segmenter, or a plain text): the same text, with
        the map of each of its characters back to the text as sent (the segment's source offsets)."""
        self.check(text, param)
        reads = [
            Reading(_with_dictionaries(_cleaned(r.text), options), r.language, r.normalized)
            for r in readings(segment_of(text))
        ]
        speak = getattr(self.normalizer, "speak", None)
        if speak is not None:
            spoken = await self._pool.run(priority, speak, reads, options)
        else:  # a normalizer of plain text only (a test's): the map carried over by a diff
            given = Mapped.join([r.text for r in reads], "")
            out = await self._pool.run(
                priority, self.normalizer.normalize, given.text, options.normalize_malaysian, options.language
            )
            spoken = Mapped(out, tuple(carry(given.text, given.spans, out)))
        tracker = Tracker(spoken.text, spoken.spans)
        tracker.follow(strip_control_tokens(spoken.text))
        return tracker.mapped()


def _cleaned(text: Mapped) -> Mapped:
    """`text` without surrogates, control characters and bidi controls (the request models refuse surrogates)."""
    with tracking(Tracker(text.text, text.spans)) as tracker:
        sub(_INVISIBLE, "", sub(_SURROGATE, "", text.text))
    return tracker.mapped()


def _with_dictionaries(text: Mapped, options: TextOptions) -> Mapped:
    """`text` with the request's pronunciation dictionaries applied, before the normalizer's rules and the bundled
    overrides (so a dictionary's "Dr. Tan" beats them); each alias names the string it replaced."""
    if not options.dictionaries:
        return text
    with tracking(Tracker(text.text, text.spans)) as tracker:
        apply_dictionaries(options.dictionaries, text.text)
    return tracker.mapped()


def require_speech(text: str, param: str) -> str:
    """`text` (normalized), or a 400 when nothing speakable is left of it."""
    if not text:
        raise InvalidRequestError(f"{param} has nothing to speak after cleanup", param=param)
    return text
