"""API keys in the store: created, listed, revoked and rotated (`tts-api keys`, `/v1/admin/keys`), and the active
ones read back for `app.api.auth.Authenticator`, which compares them (the one place a key is compared).

A key is `tts-` and 43 characters of `secrets.token_urlsafe(32)`: 256 random bits. Only its SHA-256 is stored.
A plain hash suffices for a key of 256 random bits (a guess succeeds with probability 2^-256, whatever the hash
costs: slow hashes and peppers are for secrets people choose), needs no secret of its own that every replica
must share, and lets a presented key be looked up by its hash at once. The secret is shown once, when made.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from app.errors import ConflictError, InvalidRequestError, NotFoundError
from app.service.principal import NO_QUOTA, CallerLimits, Quota
from app.service.tables import NAME_MAX, keys_table

logger = logging.getLogger(__name__)

KEY_PREFIX = "tts-"
REFRESH_SECONDS = 2.0  # how often every process reads the active keys again: a revoke holds everywhere within 5 s
TENANT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LIMIT_FIELDS = ("max_streams", "requests_per_minute", "chars_per_minute", "audio_seconds_per_day")


def key_hash(key: str) -> str:
    """The stored form of a key: its SHA-256, hex."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key as stored, without its secret (`key_hash` only)."""

    id: str
    tenant: str
    name: str
    key_hash: str
    admin: bool
    max_streams: int = 0  # 0: no limit, as for every limit below
    requests_per_minute: int = 0
    chars_per_minute: int = 0
    audio_seconds_per_day: int = 0
    created_at: str = ""
    revoked_at: str | None = None

    def public(self) -> dict:
        """What `keys list` and `/v1/admin/keys` show: everything but the hash."""
        shown = asdict(self)
        del shown["key_hash"]
        return shown

    def limits(self, base: CallerLimits, tenant: Quota = NO_QUOTA) -> CallerLimits:
        """`base` (the settings' per-client shares) with this key's own limits and its `tenant`'s."""
        return CallerLimits(base.requests, base.sockets, **{f: getattr(self, f) for f in LIMIT_FIELDS}, tenant=tenant)


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just made: its record and its secret, shown this once."""

    record: KeyRecord
    key: str

    def shown(self) -> dict:
        return {"id": self.record.id, "key": self.key, "tenant": self.record.tenant, **self.record.public()}


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.fullmatch(tenant):
        raise InvalidRequestError(
            f"invalid tenant {tenant[:80]!r}: 1-{NAME_MAX} letters, digits, '.', '_' or '-'", param="tenant"
        )
    return tenant


def check_limits(limits: dict[str, int]) -> dict[str, int]:
    for name, value in limits.items():
        if name not in LIMIT_FIELDS:
            raise InvalidRequestError(f"unknown limit {name!r}; known: {', '.join(LIMIT_FIELDS)}", param=name)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**31 - 1:
            raise InvalidRequestError(f"{name} must be a whole number from 0 (no limit) up", param=name)
    return limits


class KeyStore:
    """The keys table of the store at `engine` (sync: the CLI calls it directly, the service in threads)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create(self, tenant: str, name: str = "", *, admin: bool = False, **limits: int) -> NewKey:
        check_tenant(tenant)
        check_limits(limits)
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            id="key_" + secrets.token_hex(8), tenant=tenant, name=name[:128], key_hash=key_hash(key), admin=admin,
            created_at=utc_now(), **limits,
        )  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(keys_table.insert().values(**asdict(record)))
        return NewKey(record, key)

    def list(self, tenant: str | None = None) -> list[KeyRecord]:
        """Every key (revoked ones too), of `tenant` when given, oldest first."""
        query = keys_table.select().order_by(keys_table.c.created_at, keys_table.c.id)
        if tenant is not None:
            query = query.where(keys_table.c.tenant == tenant)
        with self.engine.connect() as conn:
            return [KeyRecord(**r._mapping) for r in conn.execute(query)]

    def active(self) -> list[KeyRecord]:
        """The keys not revoked: what the authenticator accepts."""
        query = keys_table.select().where(keys_table.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [KeyRecord(**r._mapping) for r in conn.execute(query)]

    def get(self, key_id: str) -> KeyRecord:
        with self.engine.connect() as conn:
            row = conn.execute(keys_table.select().where(keys_table.c.id == key_id)).first()
        if row is None:
            raise NotFoundError(f"no API key with id {key_id[:80]!r}", param="id", code="key_not_found")
        return KeyRecord(**row._mapping)

    def revoke(self, key_id: str) -> KeyRecord:
        """Refused by every process within `REFRESH_SECONDS` (+ a read); revoking twice keeps the first time."""
        self.get(key_id)
        with self.engine.begin() as conn:
            conn.execute(
                keys_table.update()
                .where(keys_table.c.id == key_id, keys_table.c.revoked_at.is_(None))
                .values(revoked_at=utc_now())
            )
        return self.get(key_id)

    def rotate(self, key_id: str) -> NewKey:
        """A new secret for the key's tenant, name and limits (a new id); the old key is revoked in the same
        transaction."""
        old = self.get(key_id)
        if old.revoked_at is not None:
            raise ConflictError(f"API key {key_id!r} is revoked; create a new one", param="id", code="key_revoked")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        limits = {f: getattr(old, f) for f in LIMIT_FIELDS}
        record = KeyRecord(
            id="key_" + secrets.token_hex(8), tenant=old.tenant, name=old.name, key_hash=key_hash(key), admin=old.admin,
            created_at=utc_now(), **limits,
        )  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(keys_table.update().where(keys_table.c.id == key_id).values(revoked_at=utc_now()))
            conn.execute(keys_table.insert().values(**asdict(record)))
        return NewKey(record, key)


class KeyRefresher:
    """Reads the active keys and the tenants' limits (`tenants`, app/service/tenant_limits.py: its `quotas()`)
    every `interval` seconds and hands them to `use` (the authenticator's): a key created, revoked or rotated, or
    a tenant's limits set, anywhere holds in this process within `interval` + one read. A failed read keeps the
    last ones (logged)."""

    def __init__(
        self,
        store: KeyStore,
        use: Callable[[list[KeyRecord], dict[str, Quota]], None],
        interval: float = REFRESH_SECONDS,
        *,
        tenants: Callable[[], dict[str, Quota]] = dict,
    ):
        self.store = store
        self.use = use
        self.interval = interval
        self.tenants = tenants
        self._task: asyncio.Task | None = None

    async def load(self) -> None:
        self.use(*await asyncio.to_thread(lambda: (self.store.active(), self.tenants())))

    async def start(self) -> None:
        await self.load()
        self._task = asyncio.create_task(self._loop(), name="api-key-refresh")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.load()
            except Exception as exc:  # the store unreachable: keep the keys known
                logger.warning("API keys not refreshed: %s: %s", type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
