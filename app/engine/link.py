"""What a front-end knows of its codec engine's life (`EngineLink`), and which of its streams are running
(`RunningStreams`): the state behind `EngineClient`'s dead / late / hung rules (see `app.engine.client`)."""

from __future__ import annotations

import asyncio
import logging
import time

from app.engine import messages as m
from app.engine.errors import EngineLost, EngineUnavailable
from app.engine.messages import JobKind

logger = logging.getLogger("app.engine.client")  # the client's lines keep its name in the logs

STREAM_TTL = 60.0  # a stream with no job for this long counts as new again (its end was never seen)


class EngineLink:
    """The engine's latest heartbeat, and whether it is alive (heard within `heartbeat_timeout`), or down: "dead"
    (its connection closed) or "hung" (silent past `hang_timeout`). The methods that turn it down return True when
    the jobs waiting on the engine must fail; the caller owns those jobs."""

    def __init__(self, heartbeat_timeout: float, hang_timeout: float) -> None:
        self.heartbeat_timeout = heartbeat_timeout
        self.hang_timeout = max(hang_timeout, heartbeat_timeout)
        self.beat: m.Heartbeat | None = None
        self.last_heard = 0.0
        self.alive = False
        self.up = asyncio.Event()  # set while `alive`
        self.down: str | None = None  # "dead" (connection closed) or "hung" (silent past hang_timeout)
        self.reconnected = False  # dead, then connected again: the next heartbeat is the new engine's
        self.first_beat = asyncio.Event()
        self.beat_event = asyncio.Event()

    def on_heartbeat(self, beat: m.Heartbeat) -> bool:
        """Take a heartbeat: the engine is up. True when it comes from a restarted engine (the jobs sent to the old
        one will never be answered)."""
        if self.down == "dead" and not self.reconnected:
            return False  # queued before the old engine died
        previous = self.beat
        self.beat = beat
        restarted = previous is not None and previous.epoch != beat.epoch
        if restarted:
            logger.warning("codec engine restarted (epoch %s -> %s)", previous.epoch, beat.epoch)
        if not self.alive:
            logger.info("codec engine %s is up on %s", beat.epoch, beat.device)
        self.alive = True
        self.down = None
        self.reconnected = False
        self.up.set()
        self.first_beat.set()
        self.beat_event.set()
        return restarted

    def check(self, now: float, unread: bool, pending: int) -> bool:
        """The watch's tick at `now` (`unread`: messages wait on the socket, so the engine has spoken and this event
        loop is late to read them): late past `heartbeat_timeout`; True when it has just turned hung."""
        if unread:
            self.last_heard = now
        silent = now - self.last_heard
        if self.alive and silent > self.heartbeat_timeout:
            self.alive = False
            self.up.clear()
            logger.warning("codec engine: no heartbeat for %.1f s; not ready, new requests wait for it", silent)
        if self.down is None and self.beat is not None and silent > self.hang_timeout:
            self.down = "hung"
            logger.error("codec engine: no answer for %.1f s; taken for hung, failing %d jobs", silent, pending)
            return True
        return False

    def on_disconnect(self, pending: int) -> bool:
        """The connection closed (the engine process exited); True when that has just made it dead."""
        if self.beat is None or self.down == "dead":
            return False
        self.alive = False
        self.up.clear()
        self.down = "dead"
        self.reconnected = False
        logger.error("codec engine: its connection closed (the process exited); failing %d jobs", pending)
        return True

    async def wait_restarted(self, restart_wait: float, kind: JobKind) -> None:
        """Wait up to `restart_wait` seconds for the engine to be up again (`EngineUnavailable` past it)."""
        lost_at = time.monotonic()
        try:
            await asyncio.wait_for(self.up.wait(), restart_wait)
        except TimeoutError:
            raise EngineUnavailable(
                f"the codec engine died and was not back within ENGINE_RESTART_WAIT ({restart_wait:g} s)"
            ) from None
        logger.info("codec engine back after %.2f s: a %s job sent to it again", time.monotonic() - lost_at, kind)


class RunningStreams:
    """The streams with a decode window sent (-> when the last one was sent): a running stream's next window waits
    for a late engine, and is sent again to a restarted one, where a new request's first job is refused."""

    def __init__(self) -> None:
        self._last: dict[int, float] = {}

    def __contains__(self, stream: object) -> bool:
        return stream in self._last

    def note(self, stream: int, final: bool) -> None:
        """A window of `stream` is sent; `final`: its last, so the stream ends."""
        now = time.monotonic()
        if final:
            self._last.pop(stream, None)
            return
        if stream not in self._last and len(self._last) >= 256:
            self._last = {k: t for k, t in self._last.items() if now - t < STREAM_TTL}
        self._last[stream] = now

    def worth_resending(self, exc: EngineUnavailable, kind: JobKind, stream: object, *, dead: bool) -> bool:
        """A job the engine died with, or a running stream's next window while the engine is `dead`."""
        return isinstance(exc, EngineLost) or (dead and kind is JobKind.DECODE and stream in self)
