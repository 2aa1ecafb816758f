"""Pronunciation dictionaries in the store (`tts_dictionaries`, `tts_dictionary_versions`: migration 0006), shared
by every worker and replica: each tenant's dictionaries, and every version of their rules (a version never
changes; adding or removing rules makes a new one and moves `latest_version`).

Every query names the tenant: another tenant's dictionary is exactly one that does not exist (None here; 404 on
the routes, the unknown-dictionary 400 on speech). SQLAlchemy Core on the voice store's engine, in threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from app.errors import StoreUnavailableError
from app.service.migrations import locked
from app.service.tables import dictionaries_table as dt
from app.service.tables import dictionary_versions_table as vt
from app.text.dictionary import Rule

logger = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class DictionaryRecord:
    """A dictionary's metadata (its latest version's id and rule count)."""

    tenant: str
    id: str
    name: str
    description: str | None
    latest_version: str
    latest_rules: int
    created_by_key: str
    created_at: float
    archived_at: float | None = None

    def metadata(self) -> dict[str, Any]:
        """ElevenLabs' `GetPronunciationDictionaryMetadataResponse`."""
        return {
            "id": self.id, "latest_version_id": self.latest_version, "latest_version_rules_num": self.latest_rules,
            "name": self.name, "permission_on_resource": "admin", "created_by": self.created_by_key,
            "creation_time_unix": int(self.created_at),
            "archived_time_unix": None if self.archived_at is None else int(self.archived_at),
            "description": self.description,
        }  # fmt: skip


def new_id() -> str:
    return secrets.token_urlsafe(15).replace("-", "a").replace("_", "b")  # 20 letters and digits, as ElevenLabs'


def _record(row: Any) -> DictionaryRecord:
    return DictionaryRecord(**dict(row._mapping))


def _rules(text: str) -> tuple[Rule, ...]:
    return tuple(Rule.from_json(r) for r in json.loads(text))


class DictionaryStore:
    """The dictionaries of every front-end sharing the store's `engine`."""

    def __init__(self, engine: sa.Engine, clock: Callable[[], float] = time.time) -> None:
        self.engine = engine
        self.clock = clock

    async def create(
        self, tenant: str, name: str, description: str | None, rules: tuple[Rule, ...], key_id: str
    ) -> DictionaryRecord:
        """A new dictionary with its first version."""
        now = self.clock()
        record = DictionaryRecord(tenant, new_id(), name, description, new_id(), len(rules), key_id, now)

        def insert() -> None:
            with self.engine.begin() as conn:
                conn.execute(dt.insert().values(**record.__dict__))
                conn.execute(vt.insert().values(_version(record, rules, now)))

        await self._run(insert)
        return record

    async def get(self, tenant: str, dictionary_id: str) -> DictionaryRecord | None:
        def select() -> DictionaryRecord | None:
            with self.engine.connect() as conn:
                row = conn.execute(dt.select().where(_key(tenant, dictionary_id))).first()
            return None if row is None else _record(row)

        return await self._run(select)

    async def rules(
        self, tenant: str, dictionary_id: str, version_id: str | None
    ) -> tuple[str, tuple[Rule, ...]] | None:
        """A version's id and rules (`version_id` None: the latest), or None where the tenant has no such
        dictionary or version."""

        def select() -> tuple[str, tuple[Rule, ...]] | None:
            query = sa.select(vt.c.version_id, vt.c.rules).where(
                vt.c.tenant == tenant, vt.c.dictionary_id == dictionary_id
            )
            if version_id is None:
                latest = sa.select(dt.c.latest_version).where(_key(tenant, dictionary_id)).scalar_subquery()
                query = query.where(vt.c.version_id == latest)
            else:
                query = query.where(vt.c.version_id == version_id)
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
            return None if row is None else (row[0], _rules(row[1]))

        return await self._run(select)

    async def list(
        self, tenant: str, *, archived: bool, sort: str, descending: bool, limit: int, offset: int
    ) -> list[DictionaryRecord]:
        """A page of the tenant's dictionaries, sorted by `sort` (`name` or `created_at`)."""
        column = dt.c.name if sort == "name" else dt.c.created_at
        query = dt.select().where(dt.c.tenant == tenant)
        if not archived:
            query = query.where(dt.c.archived_at.is_(None))
        order = (column.desc(), dt.c.id.desc()) if descending else (column.asc(), dt.c.id.asc())
        query = query.order_by(*order).limit(limit).offset(offset)

        def select() -> list[DictionaryRecord]:
            with self.engine.connect() as conn:
                return [_record(r) for r in conn.execute(query)]

        return await self._run(select)

    async def new_version(
        self, tenant: str, dictionary_id: str, change: Callable[[tuple[Rule, ...]], tuple[Rule, ...]]
    ) -> DictionaryRecord | None:
        """A new latest version: `change` of the latest one's rules, read and written by one writer at a time (every
        process's: PostgreSQL's advisory lock of the dictionary, SQLite's write lock), so that two changes made at
        once both land. None where the tenant has no such dictionary."""

        def update() -> DictionaryRecord | None:
            with locked(self.engine, _lock(tenant, dictionary_id)) as conn:
                row = conn.execute(dt.select().where(_key(tenant, dictionary_id))).first()
                if row is None:
                    return None
                record = _record(row)
                latest = conn.execute(
                    sa.select(vt.c.rules).where(_version_key(tenant, dictionary_id, record.latest_version))
                ).scalar_one()
                rules = change(_rules(latest))
                now = self.clock()
                record = DictionaryRecord(**{**record.__dict__, "latest_version": new_id(), "latest_rules": len(rules)})
                conn.execute(vt.insert().values(_version(record, rules, now)))
                conn.execute(
                    dt.update().where(_key(tenant, dictionary_id))
                    .values(latest_version=record.latest_version, latest_rules=record.latest_rules)
                )  # fmt: skip
                return record

        return await self._run(update)

    async def update(self, tenant: str, dictionary_id: str, **values: Any) -> DictionaryRecord | None:
        """Rename or archive (`name`, `archived_at`): the version is kept. None where there is no such one."""

        def change() -> DictionaryRecord | None:
            with self.engine.begin() as conn:
                if values:
                    conn.execute(dt.update().where(_key(tenant, dictionary_id)).values(**values))
                row = conn.execute(dt.select().where(_key(tenant, dictionary_id))).first()
            return None if row is None else _record(row)

        return await self._run(change)

    async def delete(self, tenant: str, dictionary_id: str) -> bool:
        """The dictionary and every version of it gone; False where there was none."""

        def remove() -> bool:
            with self.engine.begin() as conn:
                conn.execute(vt.delete().where(vt.c.tenant == tenant, vt.c.dictionary_id == dictionary_id))
                return conn.execute(dt.delete().where(_key(tenant, dictionary_id))).rowcount > 0

        return await self._run(remove)

    async def _run(self, work: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(work)
        except SQLAlchemyError as exc:
            logger.warning("dictionary store failed: %s", exc)
            raise StoreUnavailableError(f"the dictionary store is unavailable: {type(exc).__name__}") from exc


def _version(record: DictionaryRecord, rules: tuple[Rule, ...], now: float) -> dict[str, Any]:
    rules_json = json.dumps([r.to_json() for r in rules], ensure_ascii=False)
    return {
        "tenant": record.tenant, "dictionary_id": record.id, "version_id": record.latest_version,
        "rules": rules_json, "created_at": now,
    }  # fmt: skip


def _lock(tenant: str, dictionary_id: str) -> int:
    """The dictionary's PostgreSQL advisory lock: a signed 64-bit number of its tenant and id."""
    digest = hashlib.sha256(b"tts-dictionary\0" + tenant.encode() + b"\0" + dictionary_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _key(tenant: str, dictionary_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(dt.c.tenant == tenant, dt.c.id == dictionary_id)


def _version_key(tenant: str, dictionary_id: str, version_id: str) -> sa.ColumnElement[bool]:
    return sa.and_(vt.c.tenant == tenant, vt.c.dictionary_id == dictionary_id, vt.c.version_id == version_id)
