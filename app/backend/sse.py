"""Pure parsing of vLLM's streaming completion events into speech token ids."""

from __future__ import annotations

from app.prompts import N_SPEECH_TOKENS, PARTIAL_SPEECH_TOKEN_RE, SPEECH_TOKEN_RE


class StreamFormatError(ValueError):
    """The backend sent something that is not a completion event."""


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
        tail = PARTIAL_SPEECH_TOKEN_RE.search(rest)
        if tail:
            self.other_text += tail.start()
            self._pending = rest[tail.start() :]
        else:
            self.other_text += len(rest)
            self._pending = ""
        return ids
