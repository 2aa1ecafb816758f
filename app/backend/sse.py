"""Pure parsing of vLLM's streaming completion events into speech token ids."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from app.prompts import N_SPEECH_TOKENS

SPEECH_TOKEN_RE = re.compile(r"<\|s_(\d+)\|>")
# an unfinished speech token at the end of a text piece: "<", "<|", "<|s", "<|s_12", "<|s_12|"
_PARTIAL_TAIL_RE = re.compile(r"<(?:\|(?:s(?:_\d*(?:\|)?)?)?)?$")


class StreamFormatError(ValueError):
    """The backend sent something that is not a completion event."""


@dataclass
class CompletionEvent:
    text: str
    finish_reason: str | None
    usage: dict | None


def parse_sse_data(line: str) -> CompletionEvent | None:
    """One SSE line -> an event; None for blank/comment/non-data lines and for ``[DONE]``.

    Raises `StreamFormatError` for malformed JSON, and `BackendStreamError` for an ``{"error": ...}`` event.
    """
    line = line.strip()
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise StreamFormatError(f"malformed event from backend: {payload[:120]!r}") from exc
    if not isinstance(obj, dict):
        raise StreamFormatError(f"unexpected event from backend: {payload[:120]!r}")
    if "error" in obj or obj.get("object") == "error":
        raise BackendStreamError(error_message(obj))
    choices = obj.get("choices") or []
    if not choices:
        return CompletionEvent("", None, obj.get("usage"))
    choice = choices[0]
    return CompletionEvent(choice.get("text") or "", choice.get("finish_reason"), obj.get("usage"))


class BackendStreamError(RuntimeError):
    """The backend reported an error inside the stream."""


def error_message(body: object) -> str:
    """The human message of a vLLM/OpenAI error body (either `{"error": {...}}` or `{"object": "error", ...}`)."""
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            msg = err.get("message") or err.get("detail")
            if msg:
                return str(msg)
        elif isinstance(err, str):
            return err
        if body.get("detail"):
            return str(body["detail"])
    return str(body)[:500]


class SpeechTokenParser:
    """Extracts `<|s_N|>` ids from text pieces, keeping a partial token that spans two pieces."""

    def __init__(self) -> None:
        self._pending = ""
        self.other_text = 0  # characters of non-speech text seen (logged, not spoken)

    def feed(self, text: str) -> list[int]:
        buf = self._pending + text
        ids: list[int] = []
        last = 0
        for m in SPEECH_TOKEN_RE.finditer(buf):
            self.other_text += m.start() - last
            n = int(m.group(1))
            if n < N_SPEECH_TOKENS:
                ids.append(n)
            last = m.end()
        rest = buf[last:]
        tail = _PARTIAL_TAIL_RE.search(rest)
        if tail:
            self.other_text += tail.start()
            self._pending = rest[tail.start() :]
        else:
            self.other_text += len(rest)
            self._pending = ""
        return ids
