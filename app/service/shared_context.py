"""The HTTP speech contexts shared by every worker and replica through the store (`tts_contexts`), so that a
`context.id` continues on whichever process its next request reaches (API_WORKERS > 1, several replicas).

`SharedContextStore` is the in-memory `ContextStore` (a request waiting for one still generating in this process
waits on its future) with the store behind it: a claim and its resolution are written in order by one writer
task, off the request's path; any other `previous` reads the row (another process may have spoken the latest
sentence), and polls it while another process is still generating it (`pending`), up to the same timeout.
Added time per request with a context id: one indexed read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable, Hashable

import numpy as np
import sqlalchemy as sa

from app.service.context import ContextStore, SpeechContext
from app.service.tables import contexts_table

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # how often a request waiting for another process's context reads it again


class SharedContextStore(ContextStore):
    """A `ContextStore` whose keys are `(tenant, context id)`, kept in the store too."""

    def __init__(self, engine: sa.Engine, ttl: float, clock: Callable[[], float] = time.time) -> None:
        super().__init__(ttl)
        self.engine = engine
        self.wall = clock
        self._claims: dict[Hashable, str] = {}  # this process's claim of each key: its resolution names it
        self._writes: asyncio.Queue[tuple] | None = None
        self._writer: asyncio.Task | None = None

    def claim(self, key: Hashable) -> asyncio.Future[SpeechContext | None]:
        fut = super().claim(key)
        claim = self._claims[key] = secrets.token_hex(16)
        self._write(("claim", key, claim, self.wall() + self.ttl))
        return fut

    def resolve(self, key: Hashable, fut: asyncio.Future[SpeechContext | None], value: SpeechContext | None) -> None:
        super().resolve(key, fut, value)
        claim = self._claims.pop(key, None)
        if claim is not None:
            self._write(("resolve", key, claim, value, self.wall() + self.ttl))

    async def previous(self, key: Hashable, timeout: float) -> SpeechContext | None:
        self._expire()
        entry = self._entries.get(key)
        if entry is not None and not entry[1].done():  # generating here now: its future, no read
            return await super().previous(key, timeout)
        deadline = time.monotonic() + timeout
        if self._writes is not None and self._writes.qsize():
            await asyncio.wait_for(self.flush(), timeout)  # this process's own last resolution, written first
        while True:
            row = await asyncio.to_thread(self._read, key)
            if row is None or not row.pending or time.monotonic() >= deadline:
                return _context(row) if row is not None and not row.pending else None
            await asyncio.sleep(POLL_SECONDS)

    def _read(self, key: Hashable):
        tenant, context_id = key  # type: ignore[misc]
        query = contexts_table.select().where(
            contexts_table.c.tenant == tenant,
            contexts_table.c.context_id == context_id,
            contexts_table.c.expires_at > self.wall(),
        )
        with self.engine.connect() as conn:
            return conn.execute(query).first()

    # -- the writer: claims and resolutions in the order they were made, off the requests' path -----------------
    def _write(self, op: tuple) -> None:
        if self._writes is None:
            self._writes = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._drain(), name="shared-contexts")
        self._writes.put_nowait(op)

    async def _drain(self) -> None:
        assert self._writes is not None
        while True:
            op = await self._writes.get()
            try:
                await asyncio.to_thread(_apply, self.engine, op, self.wall())
            except Exception as exc:  # the store down: this process's contexts still work, others miss them
                logger.warning("context %s not shared: %s: %s", op[0], type(exc).__name__, exc)
            finally:
                self._writes.task_done()

    async def flush(self) -> None:
        """Every write made so far, done (tests; the end of the service)."""
        if self._writes is not None:
            await self._writes.join()

    async def close(self) -> None:
        await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer


def _apply(engine: sa.Engine, op: tuple, now: float) -> None:
    """A claim (the row made pending, its old context gone) or a resolution (its context, if the claim is still
    the row's: a later claim from another process wins). Expired rows are dropped on the way."""
    kind, (tenant, context_id), claim = op[0], op[1], op[2]
    t = contexts_table.c
    match = (t.tenant == tenant) & (t.context_id == context_id)
    with engine.begin() as conn:
        conn.execute(contexts_table.delete().where(t.expires_at <= now))
        if kind == "claim":
            values = {"claim": claim, "pending": True, "voice": "", "text": "", "tokens": b"", "expires_at": op[3]}
            if not conn.execute(contexts_table.update().where(match).values(**values)).rowcount:
                with contextlib.suppress(sa.exc.IntegrityError), conn.begin_nested():
                    conn.execute(contexts_table.insert().values(tenant=tenant, context_id=context_id, **values))
            return
        value: SpeechContext | None = op[3]
        done = {"pending": False, "expires_at": op[4]}
        if value is not None:
            tokens = np.asarray(value.tokens, "<i4").tobytes()
            done |= {"voice": value.voice[:64], "text": value.text, "tokens": tokens}
        conn.execute(contexts_table.update().where(match & (t.claim == claim)).values(**done))


def _context(row) -> SpeechContext | None:
    if not row.tokens:
        return None
    tokens = tuple(int(x) for x in np.frombuffer(row.tokens, dtype="<i4"))
    return SpeechContext(row.text, tokens, row.voice)
