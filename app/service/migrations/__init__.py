"""The voice store's schema: Alembic migrations (`versions/`, beside this file, shipped in the package), brought to
head when a front-end opens the store.

`upgrade(engine)` is the one entry point. It holds a lock that one process at a time can hold for the whole
check-and-upgrade (PostgreSQL: an advisory lock for the transaction; SQLite: BEGIN IMMEDIATE, the file's write
lock), so every `API_WORKERS` process and every replica may start at once. A database made before migrations
(the voices table, no `alembic_version`) is stamped at the baseline, then upgraded. No alembic.ini: the
configuration is made here. `python -m tools.new_migration "what it does"` adds a revision.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

SCRIPT_LOCATION = Path(__file__).resolve().parent
BASELINE = "0001"  # versions/0001_baseline.py: the table as main made it before migrations
BASELINE_TABLE = "tts_voices"
BASELINE_COLUMNS = frozenset(
    {"name", "reference_text", "transcript", "reference_tokens", "audio_seconds", "audio_sha256", "language",
     "consent", "consent_by", "created_from", "created_at"}
)  # fmt: skip
SCHEMA_LOCK = 0x7474_7376  # PostgreSQL advisory lock held while the schema is checked and upgraded ("ttsv")


class SchemaError(RuntimeError):
    """The database's schema is not one these migrations can bring to head; the message says why."""


def alembic_config(connection: sa.Connection | None = None, script_location: Path = SCRIPT_LOCATION) -> Config:
    """Alembic's configuration, made in code; `connection` is what env.py migrates."""
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")  # versions/0002_add_owner.py
    config.attributes["connection"] = connection
    return config


def head(script_location: Path = SCRIPT_LOCATION) -> str:
    """The newest revision (the migrations never branch)."""
    heads = ScriptDirectory.from_config(alembic_config(script_location=script_location)).get_heads()
    if len(heads) != 1:
        raise SchemaError(f"the migrations in {script_location} have {len(heads)} heads, {heads}: merge them into one")
    return heads[0]


def current(connection: sa.Connection) -> tuple[str, ...]:
    """The revisions `alembic_version` names: () for a database made before migrations, or an empty one."""
    return tuple(MigrationContext.configure(connection).get_current_heads())


def upgrade(engine: sa.Engine, script_location: Path = SCRIPT_LOCATION) -> None:
    """Bring the database's schema to head: nothing to do when it is there already; a database of before
    migrations stamped at the baseline first. Safe when several processes call it at once."""
    with locked(engine, SCHEMA_LOCK) as conn:
        config = alembic_config(conn, script_location)
        at = current(conn)
        if at == (head(script_location),):
            return
        if not at and sa.inspect(conn).has_table(BASELINE_TABLE):
            _check_baseline(conn)
            command.stamp(config, BASELINE)
        _check_known(config, at)
        command.upgrade(config, "head")


def _check_baseline(conn: sa.Connection) -> None:
    found = {c["name"] for c in sa.inspect(conn).get_columns(BASELINE_TABLE)}
    if found != BASELINE_COLUMNS:
        raise SchemaError(
            f"table {BASELINE_TABLE!r} has no alembic_version and is not the baseline: columns "
            f"{sorted(found - BASELINE_COLUMNS)} unexpected, {sorted(BASELINE_COLUMNS - found)} missing"
        )


def _check_known(config: Config, at: tuple[str, ...]) -> None:
    script = ScriptDirectory.from_config(config)
    for revision in at:
        try:
            script.get_revision(revision)
        except CommandError:
            raise SchemaError(
                f"the voice store's schema is at revision {revision!r}, which this release does not know "
                "(a newer release migrated it): run that release or newer against this store"
            ) from None


@contextmanager
def locked(engine: sa.Engine, lock: int, *more: int) -> Iterator[sa.Connection]:
    """A connection in a transaction that one process at a time holds until it commits or rolls back: of those
    asking for `lock` (a signed 64-bit number; and each of `more`, taken in order of their numbers, so that two
    transactions asking for the same ones never wait on each other) on PostgreSQL (advisory locks), of every
    writer on SQLite."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            # pysqlite would begin a deferred transaction of its own at the first write, after the check: here
            # it begins none (AUTOCOMMIT), and BEGIN IMMEDIATE takes the file's write lock before anything is read
            conn.execution_options(isolation_level="AUTOCOMMIT")
            with conn.begin():  # to SQLAlchemy and Alembic: in a transaction (theirs to leave alone)
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
        else:
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    for key in sorted({lock, *more}):
                        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield conn
