"""A key's own limits, held by every worker and replica together through the store they share (PostgreSQL, or
SQLite on one box): streams at once as leases with an expiry, renewed while the stream runs (a killed worker's
leases expire by themselves); requests and characters per minute as windowed counters (a sliding window, the
previous minute weighted by how much of it is still inside); audio seconds per day as a daily counter that usage
fills (app/service/usage.py). Checked at admission, before any work: a running stream is never cut for a limit.

One admission is one transaction under the key's lock (PostgreSQL: an advisory lock per key; SQLite: the file's
write lock), in a worker thread. A refusal is a 429 with `Retry-After` and OpenAI's `x-ratelimit-*` headers.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.errors import OverloadedError
from app.service.migrations import locked
from app.service.principal import CallerLimits, Principal, Quota
from app.service.tables import leases_table, windows_table

if TYPE_CHECKING:
    from app.service.admission import Slot

logger = logging.getLogger(__name__)

MINUTE, DAY = 60, 86_400


def sliding_count(previous: float, current: float, elapsed: float, length: float) -> float:
    """What a window of `length` seconds ending now holds, from the fixed windows' counts: the current one's,
    plus the previous one's in proportion to how much of it the sliding window still covers."""
    return previous * max(0.0, 1.0 - elapsed / length) + current


def lock_id(key_id: str) -> int:
    """The key's PostgreSQL advisory lock: a signed 64-bit number of its id."""
    return int.from_bytes(hashlib.sha256(b"tts-limits\0" + key_id.encode()).digest()[:8], "big", signed=True)


def tenant_subject(tenant: str) -> str:
    """The id a tenant's own limits are counted under (`streams:tenant/<name>`): never a key's (no key id has a
    `/`)."""
    return f"tenant/{tenant}"


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose limits an admission checks: a key's (`id`: its key id) or a tenant's (`tenant_subject`), with its
    limits by the name `LimitStore.admit` knows them by (streams, requests, chars, audio)."""

    id: str
    limits: dict[str, int]
    whose: str = "key"  # key or tenant: the refusal's message names it


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is refused: which limit (`what`: OpenAI's header suffix), its value, and when to retry."""

    what: str  # requests, tokens (characters), streams, audio-seconds
    limit: int
    retry_after: float
    whose: str = "key"

    def error(self) -> OverloadedError:
        wait = max(1, math.ceil(self.retry_after))
        headers = {
            f"x-ratelimit-limit-{self.what}": str(self.limit),
            f"x-ratelimit-remaining-{self.what}": "0",
            f"x-ratelimit-reset-{self.what}": f"{wait}s",
        }
        noun = {"tokens": "characters per minute", "requests": "requests per minute", "streams": "streams at once",
                "audio-seconds": "audio seconds per day"}[self.what]  # fmt: skip
        return OverloadedError(
            f"this {self.whose}'s limit of {self.limit} {noun} is reached; retry in {wait} s",
            retry_after=wait, code="rate_limit_exceeded", headers=headers,
        )  # fmt: skip


class _Refused(Exception):
    """A refusal found inside the admission's transaction: raised to roll it back whole."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.what)
        self.refusal = refusal


class LimitStore:
    """The leases and counters tables (sync: run in threads). `clock`: Unix time, for tests."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock
        self._local = threading.Lock() if engine.dialect.name == "sqlite" else None  # one writer per process

    def admit(self, key_id: str, limits: dict[str, int], chars: int, lease_seconds: float) -> str | Refusal | None:
        """One key's admission (`admit_all` of that key alone): its lease id, None (no stream limit), or the
        refusal."""
        got = self.admit_all([Subject(key_id, limits)], chars, lease_seconds)
        return got if isinstance(got, Refusal) else (got[0] if got else None)

    def admit_all(self, subjects: list[Subject], chars: int, lease_seconds: float) -> tuple[str, ...] | Refusal:
        """Check and take, all or nothing, for every subject (a key and its tenant): the lease ids taken (one per
        subject with a stream limit), or the first refusal (nothing taken, nothing counted)."""
        now = self.clock()
        if self._local is not None:
            with self._local:
                return self._admit(subjects, chars, lease_seconds, now)
        return self._admit(subjects, chars, lease_seconds, now)

    def _admit(
        self, subjects: list[Subject], chars: int, lease_seconds: float, now: float
    ) -> tuple[str, ...] | Refusal:
        try:
            with locked(self.engine, *(lock_id(s.id) for s in subjects)) as conn:
                return self._take(conn, subjects, chars, lease_seconds, now)
        except _Refused as refused:  # rolled back: a lease taken for one subject before another's refusal too
            return refused.refusal

    def _take(self, conn: sa.Connection, subjects: list[Subject], chars: int, lease_seconds: float, now: float):
        checks = [(s, what, f"{scope}:{s.id}", length, amount, s.limits[scope]) for s in subjects
                  for what, scope, length, amount in (
            ("requests", "requests", MINUTE, 1),
            ("tokens", "chars", MINUTE, chars),
            ("audio-seconds", "audio", DAY, 0),  # filled by usage; refused once the day's is spent
        ) if s.limits.get(scope)]  # fmt: skip
        counted = self._windows(conn, [c[2] for c in checks], now) if checks else {}
        for subject, what, scope, length, amount, limit in checks:
            window = int(now // length)
            elapsed = now - window * length
            previous, current = counted.get((scope, window - 1), 0.0), counted.get((scope, window), 0.0)
            if what == "audio-seconds":  # a day is a calendar day (UTC), not a sliding one
                if current >= limit:
                    raise _Refused(Refusal(what, limit, length - elapsed, subject.whose))
            elif sliding_count(previous, current, elapsed, length) + amount > limit:
                raise _Refused(Refusal(what, limit, length - elapsed, subject.whose))
        leases = []
        for s in subjects:
            if s.limits.get("streams"):
                lease = self._lease(conn, f"streams:{s.id}", s.limits["streams"], lease_seconds, now)
                if isinstance(lease, Refusal):
                    raise _Refused(Refusal(lease.what, lease.limit, lease.retry_after, s.whose))
                leases.append(lease)
        for _, _, scope, length, amount, _ in checks:
            if amount:
                _add(conn, scope, int(now // length), amount)
        return tuple(leases)

    @staticmethod
    def _windows(conn: sa.Connection, scopes: list[str], now: float) -> dict[tuple[str, int], float]:
        """The recent windows' counts of `scopes` (one read); older windows dropped now and then."""
        t = windows_table.c
        oldest = int(now // DAY) - 1 if any(s.startswith("audio:") for s in scopes) else int(now // MINUTE) - 1
        if secrets.randbelow(100) == 0:  # about once in 100 admissions: a key's past windows go
            conn.execute(windows_table.delete().where(t.scope.in_(scopes), t.window < int(now // MINUTE) - 1,
                                                      ~t.scope.startswith("audio:") | (t.window < int(now // DAY) - 1)))  # fmt: skip
        rows = conn.execute(sa.select(t.scope, t.window, t.amount).where(t.scope.in_(scopes), t.window >= oldest))
        return {(r.scope, r.window): r.amount for r in rows}

    @staticmethod
    def _lease(conn: sa.Connection, scope: str, limit: int, lease_seconds: float, now: float) -> str | Refusal:
        t = leases_table.c
        live = (t.scope == scope) & (t.expires_at > now)
        held, first_end = conn.execute(sa.select(sa.func.count(), sa.func.min(t.expires_at)).where(live)).one()
        if held >= limit:
            return Refusal("streams", limit, min(1.0, first_end - now))  # most end sooner than they expire
        if secrets.randbelow(20) == 0:  # now and then: the expired ones of this key go (they count for nothing)
            conn.execute(leases_table.delete().where((t.scope == scope) & (t.expires_at <= now)))
        lease_id = secrets.token_hex(16)
        conn.execute(leases_table.insert().values(id=lease_id, scope=scope, expires_at=now + lease_seconds))
        return lease_id

    def add(self, scope: str, length: int, amount: float) -> None:
        """Count `amount` in the current window of `scope` (usage: the audio seconds a key delivered)."""
        now = self.clock()
        with self.engine.begin() as conn:
            _add(conn, scope, int(now // length), amount)

    def renew(self, lease_ids: list[str], lease_seconds: float) -> None:
        if lease_ids:
            with self.engine.begin() as conn:
                conn.execute(
                    leases_table.update()
                    .where(leases_table.c.id.in_(lease_ids))
                    .values(expires_at=self.clock() + lease_seconds)
                )

    def drop(self, lease_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(leases_table.delete().where(leases_table.c.id == lease_id))

    def held(self, scope: str) -> int:
        """The unexpired leases of `scope` (tests, tools)."""
        with self.engine.connect() as conn:
            query = sa.select(sa.func.count()).where(
                leases_table.c.scope == scope, leases_table.c.expires_at > self.clock()
            )
            return int(conn.execute(query).scalar_one())


def _add(conn: sa.Connection, scope: str, window: int, amount: float) -> None:
    """`amount` more in (scope, window), the row made if missing: one INSERT ... ON CONFLICT DO UPDATE."""
    insert = (pg_insert if conn.dialect.name == "postgresql" else sqlite_insert)(windows_table)
    conn.execute(
        insert.values(scope=scope, window=window, amount=amount).on_conflict_do_update(
            index_elements=["scope", "window"], set_={"amount": windows_table.c.amount + insert.excluded.amount}
        )
    )


class Lease:
    """A stream's leases (its key's, its tenant's), given back once (`release`, idempotent); renewed by
    `KeyLimits` until then."""

    __slots__ = ("_limits", "ids")

    def __init__(self, limits: KeyLimits | None, lease_ids: tuple[str, ...]) -> None:
        self._limits = limits
        self.ids = lease_ids

    def release(self) -> None:
        if self._limits is not None and self.ids:
            for lease_id in self.ids:
                self._limits._give_back(lease_id)
            self.ids = ()

    async def end(self) -> None:
        """`release`, awaited: the store has them back on return, so that a next stream the client starts at
        once (the next reply on a WebSocket) finds them free."""
        if self._limits is not None and self.ids:
            ids, self.ids = self.ids, ()
            await self._limits._give_back_now(ids)


NO_LEASE = Lease(None, ())


class KeyLimits:
    """A key's and its tenant's limits, at admission: `await admit(caller, chars)` is a `Lease` (to release when
    the stream ends) or a 429. Callers without limits (no key of the store, or a key and tenant without limits)
    cost nothing. The leases this process holds are renewed every `lease_seconds / 3`, so that they outlive a
    running stream and expire within `lease_seconds` of a killed process."""

    def __init__(self, store: LimitStore, lease_seconds: float) -> None:
        self.store = store
        self.lease_seconds = lease_seconds
        self._held: set[str] = set()
        self._renewer: asyncio.Task | None = None
        self._dropping: set[asyncio.Task] = set()

    async def admit(self, caller: Principal | None, chars: int = 0) -> Lease:
        subjects = subjects_of(caller)
        if not subjects:
            return NO_LEASE
        got = await asyncio.to_thread(self.store.admit_all, subjects, chars, self.lease_seconds)
        if isinstance(got, Refusal):
            raise got.error()
        if not got:
            return NO_LEASE
        self._held.update(got)
        self._start_renewing()
        return Lease(self, got)

    async def charge(self, caller: Principal | None, chars: int) -> None:
        """A request's characters, once known (a WebSocket's: as they arrive), against its key's and tenant's
        per-minute limits (a 429 beyond either; nothing counted then)."""
        subjects = [Subject(s.id, {"chars": s.limits["chars"]}, s.whose) for s in subjects_of(caller)
                    if s.limits.get("chars")]  # fmt: skip
        if subjects and chars:
            got = await asyncio.to_thread(self.store.admit_all, subjects, chars, 0)
            if isinstance(got, Refusal):
                raise got.error()

    def _give_back(self, lease_id: str) -> None:
        self._held.discard(lease_id)
        task = asyncio.get_running_loop().create_task(asyncio.to_thread(self.store.drop, lease_id))
        self._dropping.add(task)
        task.add_done_callback(self._dropping.discard)

    async def _give_back_now(self, lease_ids: tuple[str, ...]) -> None:
        self._held.difference_update(lease_ids)
        try:
            await asyncio.to_thread(lambda: [self.store.drop(i) for i in lease_ids])
        except Exception as exc:  # the store down: they expire by themselves
            logger.warning("stream leases not given back: %s: %s", type(exc).__name__, exc)

    def _start_renewing(self) -> None:
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.get_running_loop().create_task(self._renew(), name="lease-renewer")

    async def _renew(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                await asyncio.to_thread(self.store.renew, list(self._held), self.lease_seconds)
            except Exception as exc:  # the store down: the leases expire, the streams go on
                logger.warning("stream leases not renewed: %s: %s", type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        await asyncio.gather(*self._dropping, *([self._renewer] if self._renewer else []), return_exceptions=True)


def named_limits(q: CallerLimits | Quota) -> dict[str, int]:
    """The limits of `q` that are set, by the name `LimitStore.admit` knows them by."""
    named = {"streams": q.max_streams, "requests": q.requests_per_minute, "chars": q.chars_per_minute,
             "audio": q.audio_seconds_per_day}  # fmt: skip
    return {k: v for k, v in named.items() if v}


def subjects_of(caller: Principal | None) -> list[Subject]:
    """Whose limits the caller's requests count against: its key's and its tenant's, those that have any."""
    if caller is None or not caller.authenticated:
        return []
    subjects = [Subject(caller.key_id, named_limits(caller.limits)),
                Subject(tenant_subject(caller.tenant), named_limits(caller.limits.tenant), "tenant")]  # fmt: skip
    return [s for s in subjects if s.limits]


async def lease_for(limits: KeyLimits | None, caller: Principal | None, slot: Slot) -> None:
    """The caller's key's and tenant's admission (a 429 when a limit is reached), its stream leases given back
    with `slot`."""
    if limits is None:
        return
    lease = await limits.admit(caller)
    if lease is NO_LEASE:
        return
    before = slot.on_release

    def release() -> None:
        try:
            if before is not None:
                before()
        finally:
            lease.release()

    slot.on_release = release
