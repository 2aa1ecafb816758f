"""A WebSocket's part in its caller's key and tenant limits (app/service/leases.py), for both text-streaming
protocols (ours and ElevenLabs').

Each context is a stream, as an HTTP request is: opening one takes a stream lease of the key and of the tenant
(renewed while it runs, given back when its last message is sent, whichever way it ends) and counts as one
request per minute. A socket with no context open holds no stream: an agent's socket idle between replies takes
nothing from its tenant. Characters count against the per-minute limits as the text arrives, each message's
before it is taken.

A refusal is checked when a context opens or its text arrives, never later: it is an error message in the
protocol's shape (naming the context, for ElevenLabs' multi-stream), after which the socket takes no more text or
contexts; what was accepted before is still spoken to the end (its audio was promised), then the socket closes
with 1013 (try again later).
"""

from __future__ import annotations

import logging

from app.api.errors import describe
from app.api.protocols.adapter import Command, Flush, Open, Text
from app.errors import OverloadedError
from app.service.leases import NO_LEASE, KeyLimits, Lease
from app.service.principal import Principal
from app.service.segments import SegmentStream

logger = logging.getLogger(__name__)

CLOSE_TRY_LATER = 1013


class SocketLimits:
    """Admits a session's commands against its caller's limits (`limits`: None where the store is not open)."""

    def __init__(self, limits: KeyLimits | None) -> None:
        self.limits = limits
        self.refused: OverloadedError | None = None  # once set, no more text or contexts are taken

    def taken(self, command: Command) -> bool:
        """Whether `command` is still applied: after a refusal, no new context, text or flush."""
        return self.refused is None or not isinstance(command, Open | Text | Flush)

    async def admit(self, command: Command, caller: Principal) -> Lease:
        """An `Open`'s lease (NO_LEASE where no stream limit applies); a `Text`'s characters counted. Raises the
        429's `OverloadedError` when a limit is reached (nothing is taken then)."""
        if self.limits is None:
            return NO_LEASE
        if isinstance(command, Open):
            return await self.limits.admit(caller)
        if isinstance(command, Text):
            await self.limits.charge(caller, len(command.text))
        return NO_LEASE

    def refuse(self, exc: OverloadedError, streams: list[SegmentStream], session_id: str) -> None:
        """Refused: no more text or contexts; the open ones' text ends with what was accepted."""
        self.refused = exc
        for stream in streams:
            stream.feed.end()
        logger.info("%s refused: %s", session_id, exc.message)

    def ending(self, code: int, reason: str) -> tuple[int, str]:
        """The close code and reason of a session that ends without an error: 1013 after a refusal."""
        if self.refused is None:
            return code, reason
        return CLOSE_TRY_LATER, describe(self.refused).message
