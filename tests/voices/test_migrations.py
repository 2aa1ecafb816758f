"""The voice store's migrations (app/service/migrations), on a real SQLite file and the real PostgreSQL server: a
fresh store is made at head and matches the code's tables, a store made by main before migrations upgrades with
its voices intact, opening again changes nothing, real processes opening one store at once upgrade it once, a
later revision applies to a store of an earlier one, and a schema they cannot upgrade is refused clearly."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.service import migrations
from app.service.tables import metadata
from app.service.voice_store import SavedVoice, VoiceStore, open_engine
from tests.voices.test_store import voice

# main's table before migrations, copied as it was (app/service/voice_store.py, created with CreateTable if not
# exists): the schema of every store users have today
OLD_MAIN = sa.MetaData()
OLD_MAIN_VOICES = sa.Table(
    "tts_voices",
    OLD_MAIN,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("reference_text", sa.Text, nullable=False),
    sa.Column("transcript", sa.Text, nullable=False),
    sa.Column("reference_tokens", sa.LargeBinary, nullable=False),
    sa.Column("audio_seconds", sa.Float, nullable=False),
    sa.Column("audio_sha256", sa.String(64), nullable=False),
    sa.Column("language", sa.String(16), nullable=False),
    sa.Column("consent", sa.Text, nullable=False),
    sa.Column("consent_by", sa.Text, nullable=False),
    sa.Column("created_from", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)
OLD_VOICES = [
    voice("aminah"),
    voice("long.voice_2", tokens=tuple(range(0, 65536, 7))),
    voice("x", tokens=(0,)),
    SavedVoice(
        name="zh.voice",
        reference_text="我喜欢吃饭。",
        transcript="我喜欢吃饭",
        reference_tokens=(5, 6),
        audio_seconds=1.25,
        audio_sha256="cd" * 32,
        language="zh",
        consent="yes",
        consent_by="",
        created_from="2001:db8::1",
        created_at="2026-01-31T23:59:59Z",
    ),
]


def make_old_main_store(url: str, voices: list[SavedVoice]) -> None:
    """A store as main made it: its CreateTable, its rows (tokens as int32 little-endian bytes)."""
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.schema.CreateTable(OLD_MAIN_VOICES, if_not_exists=True))
        for v in voices:
            tokens = np.asarray(v.reference_tokens, "<i4").tobytes()
            row = {c.name: getattr(v, c.name) for c in OLD_MAIN_VOICES.columns}  # main's columns only
            conn.execute(OLD_MAIN_VOICES.insert().values(**{**row, "reference_tokens": tokens}))
    engine.dispose()


def schema_state(url: str) -> tuple[list[str], list]:
    """(every row of alembic_version, what differs between the database and the code's tables)."""
    engine = open_engine(url)
    with engine.connect() as conn:
        versions = [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    return versions, diff


async def open_and_close(url: str) -> None:
    store = VoiceStore(url)
    try:
        await store.open()
    finally:
        await store.close()


async def test_a_fresh_store_is_made_at_head_and_matches_the_code(store_url: str) -> None:
    await open_and_close(store_url)
    assert schema_state(store_url) == ([migrations.head()], [])


async def test_a_store_made_by_main_before_migrations_upgrades_with_every_voice_intact(store_url: str) -> None:
    make_old_main_store(store_url, OLD_VOICES)
    engine = open_engine(store_url)
    with engine.connect() as conn:
        raw_before = sorted(tuple(r) for r in conn.execute(OLD_MAIN_VOICES.select()))
        assert not sa.inspect(conn).has_table("alembic_version")
    store = VoiceStore(store_url)
    await store.open()
    try:
        assert await store.list() == sorted(OLD_VOICES, key=lambda v: v.name)
        for v in OLD_VOICES:
            assert await store.get(v.name) == v
    finally:
        await store.close()
    with engine.connect() as conn:
        assert sorted(tuple(r) for r in conn.execute(OLD_MAIN_VOICES.select())) == raw_before
    engine.dispose()
    assert schema_state(store_url) == ([migrations.head()], [])


async def test_opening_a_store_at_head_again_writes_nothing(store_url: str) -> None:
    store = VoiceStore(store_url)
    await store.open()
    await store.add(voice("kept"))
    await store.close()
    again = VoiceStore(store_url)
    statements: list[str] = []
    sa.event.listen(again.engine, "before_cursor_execute", lambda c, cur, stmt, *a: statements.append(stmt))
    await again.open()
    try:
        writes = [s for s in statements if s.split()[0].upper() in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE")]
        assert statements and not writes  # it looked, and wrote nothing
        assert await again.get("kept") == voice("kept")
    finally:
        await again.close()
    assert schema_state(store_url) == ([migrations.head()], [])


OPENER = """
import asyncio, sys
from app.service.voice_store import VoiceStore

async def main(url):
    store = VoiceStore(url)
    try:
        await store.open()
    finally:
        await store.close()

print("ready", flush=True)
sys.stdin.read(1)  # the start signal, sent to every process at once
asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.parametrize("old_main", [False, True], ids=["fresh", "old-main"])
def test_processes_opening_one_store_at_once_upgrade_it_once(store_url: str, old_main: bool) -> None:
    """Real processes (as API_WORKERS starts them), each past its imports and then released together."""
    if old_main:
        make_old_main_store(store_url, OLD_VOICES)
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, store_url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
        for _ in range(6)
    ]  # fmt: skip
    try:
        for p in procs:
            assert p.stdout.readline() == b"ready\n", p.communicate(timeout=30)[1].decode()[-3000:]
        for p in procs:
            p.stdin.write(b"g")
            p.stdin.flush()
        failed = [err.decode()[-3000:] for p in procs if (err := p.communicate(timeout=60)[1]) and p.returncode]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert not failed, failed[0]
    assert schema_state(store_url) == ([migrations.head()], [])
    if old_main:
        store = VoiceStore(store_url)
        assert asyncio.run(_list_then_close(store)) == sorted(OLD_VOICES, key=lambda v: v.name)


async def _list_then_close(store: VoiceStore) -> list[SavedVoice]:
    try:
        return await store.list()
    finally:
        await store.close()


NEXT_REVISION = '''"""A test's revision: an owner for each voice.

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tts_voices") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=False, server_default=""))
    op.create_table("tts_owners", sa.Column("owner", sa.String(64), primary_key=True))


def downgrade() -> None:
    op.drop_table("tts_owners")
    with op.batch_alter_table("tts_voices") as batch:
        batch.drop_column("owner")
'''


async def test_a_later_revision_upgrades_a_store_of_an_earlier_one(store_url: str, tmp_path: Path) -> None:
    """As the next features will: the shipped migrations plus one that alters the voices table and adds another,
    applied at open to a store of main before migrations (stamped at the baseline, then upgraded)."""
    location = tmp_path / "migrations"
    shutil.copytree(migrations.SCRIPT_LOCATION, location, ignore=shutil.ignore_patterns("__pycache__"))
    down = migrations.head(location)
    rev = f"{int(down) + 1:04d}"
    (location / "versions" / f"{rev}_owner.py").write_text(NEXT_REVISION.format(rev=rev, down=down))
    make_old_main_store(store_url, OLD_VOICES)
    engine = open_engine(store_url)
    assert migrations.head(location) == rev
    migrations.upgrade(engine, location)
    migrations.upgrade(engine, location)  # at head: nothing
    with engine.connect() as conn:
        assert migrations.current(conn) == (rev,)
        assert sa.inspect(conn).has_table("tts_owners")
        rows = conn.execute(sa.text("SELECT name, owner, reference_tokens FROM tts_voices ORDER BY name")).all()
    engine.dispose()
    assert [(r[0], r[1]) for r in rows] == [(v.name, "") for v in sorted(OLD_VOICES, key=lambda v: v.name)]
    assert [bytes(r[2]) for r in rows] == [
        np.asarray(v.reference_tokens, "<i4").tobytes() for v in sorted(OLD_VOICES, key=lambda v: v.name)
    ]


async def test_a_store_migrated_by_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    await open_and_close(url)
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(migrations.SchemaError, match=r"revision '0099', which this release does not know"):
        await open_and_close(url)


async def test_a_voices_table_that_is_not_mains_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = open_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE tts_voices (name VARCHAR(64) PRIMARY KEY, speaker TEXT)"))
    engine.dispose()
    with pytest.raises(migrations.SchemaError, match=r"not the baseline: columns \['speaker'\] unexpected"):
        await open_and_close(url)


async def test_a_store_at_0005_upgrades_to_the_dictionaries_with_its_voices_intact(store_url: str) -> None:
    """Migration 0006 (pronunciation dictionaries, issue 33) on a store that 0005 made: the voices kept, the
    dictionaries' tables made as the code's, and usable at once."""
    from alembic import command

    from app.service.dictionary_store import DictionaryStore
    from app.service.tables import voices_table
    from app.text.dictionary import Rule

    engine = open_engine(store_url)
    with engine.begin() as conn:  # a store as 0005 left it, with voices (0006 leaves their table as it is)
        command.upgrade(migrations.alembic_config(conn), "0005")
        for v in OLD_VOICES:
            conn.execute(voices_table.insert().values(**{**v.__dict__, "reference_tokens": np.asarray(v.reference_tokens, "<i4").tobytes()}))
    with engine.connect() as conn:
        assert migrations.current(conn) == ("0005",) and not sa.inspect(conn).has_table("tts_dictionaries")
    engine.dispose()
    store = VoiceStore(store_url)
    await store.open()
    try:
        assert await store.list() == sorted(OLD_VOICES, key=lambda v: v.name)
        dictionaries = DictionaryStore(store.engine)
        made = await dictionaries.create("default", "brands", None, (Rule("KL", alias="Kuala Lumpur"),), "api-key")
        assert await dictionaries.rules("default", made.id, None) == (made.latest_version, (Rule("KL", alias="Kuala Lumpur"),))
    finally:
        await store.close()
    assert schema_state(store_url) == ([migrations.head()], [])
