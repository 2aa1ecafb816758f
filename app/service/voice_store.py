"""Saved voices: each one's reference tokens, normalized transcript and consent record, in SQLite or PostgreSQL.

One code path for both stores (SQLAlchemy Core on a sync engine); every call runs in a worker thread, never on
the event loop. Opening the store brings its schema to head (`app.service.migrations`, Alembic), idempotently,
and safely when several processes start at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from app.errors import ConflictError, InvalidRequestError, NotFoundError, StoreUnavailableError
from app.service import migrations
from app.service.principal import DEFAULT_TENANT
from app.service.tables import voices_table

logger = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit"

def check_name(name: str, param: str = "name") -> str:
    """`name` if it may name a saved voice (NAME_RULE), else a 400."""
    if not NAME_PATTERN.fullmatch(name):
        raise InvalidRequestError(f"invalid voice name {name[:80]!r}: {NAME_RULE}", param=param, code="invalid_name")
    return name


@dataclass(frozen=True)
class SavedVoice:
    """One row of the store. Its repr names the voice, never its transcript, tokens or consent record (logs)."""

    name: str
    reference_text: str = field(repr=False)
    transcript: str = field(repr=False)
    reference_tokens: tuple[int, ...] = field(repr=False)
    audio_seconds: float = field(repr=False)
    audio_sha256: str = field(repr=False)
    language: str = field(repr=False)
    consent: str = field(repr=False)
    consent_by: str = field(repr=False)
    created_from: str = field(repr=False)
    created_at: str = field(repr=False)
    tenant: str = field(default=DEFAULT_TENANT, repr=False)  # whose it is: for another tenant it does not exist
    created_by_key: str = field(default="", repr=False)  # the id of the key it was saved under ("" before keys)

    def metadata(self) -> dict[str, Any]:
        """What `GET /v1/audio/voices/{name}` shows: everything but the tokens (their count instead)."""
        return {
            "id": self.name,
            "name": self.name,
            "type": "saved",
            "reference_text": self.reference_text,
            "transcript": self.transcript,
            "reference_tokens": len(self.reference_tokens),
            "audio_seconds": round(self.audio_seconds, 3),
            "audio_sha256": self.audio_sha256,
            "language": self.language,
            "consent": {
                "given": self.consent, "by": self.consent_by, "from": self.created_from, "at": self.created_at,
                "key": self.created_by_key,
            },  # fmt: skip
            "tenant": self.tenant,
            "created_at": self.created_at,
        }


def _row(row: Any) -> SavedVoice:
    m = row._mapping
    tokens = tuple(int(t) for t in np.frombuffer(m["reference_tokens"], dtype="<i4"))
    return SavedVoice(**{**dict(m), "reference_tokens": tokens})


def open_engine(url: str) -> sa.Engine:
    """A SQLAlchemy engine for `url` (`sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite://`
    for a store in memory, `postgresql://user:pass@host/db`, psycopg 3 driving PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:"):  # one connection shared by every thread, or each would see its own DB
            return sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
        create_private(Path(database))
        return sa.create_engine(url, connect_args={"timeout": 15})  # waits up to 15 s for another writer
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, pool_pre_ping=True, pool_size=5, max_overflow=5)


def create_private(path: Path) -> None:
    """The SQLite file (it holds every voice's tokens) and the directories above it, when they do not exist yet:
    created 0600 and 0700, readable by this user only. SQLite gives its journal the file's mode. What exists is
    left as it is (a directory the operator made, a file from before)."""
    missing = []
    directory = path.parent.absolute()
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for directory in reversed(missing):
        with suppress(FileExistsError):  # another front-end made it meanwhile
            directory.mkdir(mode=0o700)
    with suppress(OSError):  # there already, or not to be made here: SQLite's own open then says why
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class VoiceStore:
    """The saved voices of every front-end sharing `url`. Async methods; the database work runs in threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = open_engine(url)

    @property
    def kind(self) -> str:
        return self.engine.dialect.name

    async def open(self) -> None:
        """Bring the schema to head: create it, or migrate it (several processes may do so at once)."""
        await self._run(lambda: migrations.upgrade(self.engine))
        logger.info("voice store: %s", self.engine.url.render_as_string(hide_password=True))

    async def close(self) -> None:
        await asyncio.to_thread(self.engine.dispose)

    async def add(self, voice: SavedVoice) -> None:
        """Save `voice`; ConflictError (409) if its name is taken."""
        values = {**voice.__dict__, "reference_tokens": np.asarray(voice.reference_tokens, "<i4").tobytes()}

        def insert() -> None:
            with self.engine.begin() as conn:
                conn.execute(voices_table.insert().values(**values))

        try:
            await self._run(insert)
        except IntegrityError:
            raise taken(voice.name) from None

    async def get(self, name: str, tenant: str = DEFAULT_TENANT) -> SavedVoice | None:
        """`tenant`'s voice `name`, or None (another tenant's voice of that name is none)."""

        def select() -> SavedVoice | None:
            with self.engine.connect() as conn:
                row = conn.execute(voices_table.select().where(_key(tenant, name))).first()
            return None if row is None else _row(row)

        return await self._run(select)

    async def list(self, tenant: str = DEFAULT_TENANT) -> list[SavedVoice]:
        """`tenant`'s voices, by name."""
        query = voices_table.select().where(voices_table.c.tenant == tenant).order_by(voices_table.c.name)

        def select() -> list[SavedVoice]:
            with self.engine.connect() as conn:
                return [_row(r) for r in conn.execute(query)]

        return await self._run(select)

    async def delete(self, name: str, tenant: str = DEFAULT_TENANT) -> None:
        """Remove `tenant`'s voice; NotFoundError (404) if it has none of that name."""

        def remove() -> int:
            with self.engine.begin() as conn:
                return conn.execute(voices_table.delete().where(_key(tenant, name))).rowcount

        if not await self._run(remove):
            raise not_found(name)

    async def _run(self, work: Any) -> Any:
        try:
            return await asyncio.to_thread(work)
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            logger.warning("voice store %s failed: %s", self.kind, exc)
            raise StoreUnavailableError(f"the voice store is unavailable: {type(exc).__name__}") from exc


def _key(tenant: str, name: str) -> sa.ColumnElement[bool]:
    return sa.and_(voices_table.c.tenant == tenant, voices_table.c.name == name)


def not_found(name: str) -> NotFoundError:
    return NotFoundError(f"no saved voice named {name[:80]!r}", param="name", code="voice_not_found")


def taken(name: str) -> ConflictError:
    return ConflictError(f"a saved voice named {name!r} already exists; DELETE it first", param="name", code="voice_exists")
