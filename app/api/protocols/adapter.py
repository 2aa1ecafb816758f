"""What a WebSocket protocol adapter speaks with the session loop (`app/api/session.py`).

A client message becomes commands (`Protocol.parse`); a session event becomes a message (`Protocol.render`:
a JSON object, binary audio, or None for an event the protocol does not send).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass

from app.audio.output import OutputSpec
from app.errors import TTSError
from app.service.requests import ResolvedGeneration
from app.service.segment_policy import StreamUsage
from app.service.segments import SegmentEvent, SegmentStream
from app.service.timing import SegmentTimings
from app.service.voice import Voice
from app.text.options import TextOptions

# -- commands: what a client message asks for ----------------------------------------------------


@dataclass(frozen=True)
class Auth:
    """The key a message carries (None: it carries none). Checked until the client is authorized: the session
    ends a socket whose Auth brings no valid key, so a `parse` that goes on after yielding its Auth serves an
    authorized caller, and may look things up (a voice) that a caller without the key must not learn of."""

    key: str | None


@dataclass(frozen=True)
class Open:
    """Open a context: one voice's text stream, generated per `gen`, its audio leaving per `output`."""

    context: str
    voice: Voice
    gen: ResolvedGeneration
    output: OutputSpec
    text: TextOptions = TextOptions()
    use_context: bool = True
    ssml: bool = False  # its text messages are SSML (app.service.ssml_input.SsmlFeed)


@dataclass(frozen=True)
class Text:
    context: str
    text: str


@dataclass(frozen=True)
class Flush:
    """Speak what is buffered now, without waiting for the end of a sentence."""

    context: str


@dataclass(frozen=True)
class EndContext:
    """No more text for this context: its last segment is what is buffered."""

    context: str


@dataclass(frozen=True)
class CancelContext:
    """Stop a context now (an interrupted reply): its generation is cancelled, its buffered text dropped, and
    nothing of it is sent after this but its final message."""

    context: str


@dataclass(frozen=True)
class CloseSocket:
    """End every context; the session closes (1000) when the last one has sent its final message."""


@dataclass(frozen=True)
class KeepAlive:
    """Nothing to do (the message only resets the idle timer)."""


Command = Auth | Open | Text | Flush | EndContext | CancelContext | CloseSocket | KeepAlive

# -- events: what the session tells the client ---------------------------------------------------


@dataclass(frozen=True)
class ContextStarted:
    session_id: str
    context: str
    stream: SegmentStream
    sample_rate: int


@dataclass(frozen=True)
class Segment:
    """A segment `started`, `done` or failed (`error`: the context goes on with the next one)."""

    context: str
    segment: SegmentEvent


@dataclass(frozen=True)
class Audio:
    """Encoded audio of segment `index` (None: the encoder's last bytes)."""

    context: str
    data: bytes
    index: int | None


@dataclass(frozen=True)
class Timings:
    """Where the words and characters of segment `index` lie in the context's audio, sent once the segment's
    audio is complete (only to a protocol whose `timings` is true). `text`: the segment as the client sent it;
    `timings`: over the normalized text that was spoken."""

    context: str
    index: int
    text: str
    timings: SegmentTimings


@dataclass(frozen=True)
class ContextFinal:
    """A context's last message: all its audio was sent."""

    context: str
    usage: StreamUsage


@dataclass(frozen=True)
class Rejected:
    """A message was refused; the session goes on. `context`: the one it named, if any."""

    error: TTSError
    context: str | None


@dataclass(frozen=True)
class SessionEnded:
    """The error that ends the session (sent before the close frame)."""

    error: TTSError


Event = ContextStarted | Segment | Audio | Timings | ContextFinal | Rejected | SessionEnded


class Protocol(ABC):
    """One connection's message adapter: parses messages into commands and renders events into messages."""

    id_prefix: str  # of the session id, e.g. tts-ws
    missing_key: str  # the error when the client's key is missing or wrong
    idle_timeout: float  # seconds without a message (and no segment in progress) before the session ends
    pending_text_limit: int | None = None  # characters waiting to be synthesized before the session ends
    awaiting_config: bool = False  # True while any error ends the session (before a config message is taken)
    timings: bool = False  # whether the session computes `Timings` events for this protocol

    @abstractmethod
    def describe(self) -> str:
        """One line for the session's first log record."""

    def context_of(self, message: dict) -> str | None:
        """The context a message names, for its error messages."""
        return None

    @abstractmethod
    def parse(self, message: dict, contexts: Collection[str], *, closing: bool) -> AsyncIterator[Command]:
        """A message's commands, in order (an async generator: a voice may be looked up in the store) (`contexts`: the open ones; `closing`: the socket is closing).
        Raises InvalidRequestError for a message it refuses; commands already taken stay applied."""

    @abstractmethod
    def render(self, event: Event) -> dict | bytes | None:
        """The message for an event, or None when the protocol sends none."""

    def idle_error(self) -> TTSError | None:
        """The error the idle timeout ends the session with; None closes it normally."""
        return None
