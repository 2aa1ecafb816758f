"""tools/new_migration.py, on a copy of the shipped migrations: the next numbered revision after the head, empty
or drafted from the code's tables, and a store of the earlier head upgrades through it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

from app.service import migrations, tables
from tools.new_migration import new_revision, next_revision_id


@pytest.fixture
def location(tmp_path: Path) -> Path:
    copy = tmp_path / "migrations"
    shutil.copytree(migrations.SCRIPT_LOCATION, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def test_an_empty_revision_follows_the_head(location: Path, tmp_path: Path) -> None:
    before = migrations.head(location)
    after = next_revision_id(location)
    assert after == f"{int(before) + 1:04d}"
    path = new_revision("add an owner to voices", location=location)
    assert path == location / "versions" / f"{after}_add_an_owner_to_voices.py"
    text = path.read_text()
    assert f"down_revision = {before!r}" in text and "def upgrade() -> None:\n    pass" in text
    assert migrations.head(location) == after
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrations.upgrade(engine, location)
    with engine.connect() as conn:
        assert migrations.current(conn) == (migrations.head(location),)
    engine.dispose()


def test_autogenerate_drafts_what_the_code_adds_as_batch_operations(
    location: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = sa.MetaData()
    for table in tables.metadata.tables.values():  # every table the code has, one of them with a column more
        table.to_metadata(code)
    code.tables["tts_voices"].append_column(sa.Column("label", sa.String(64), nullable=False, server_default=""))
    monkeypatch.setattr(tables, "metadata", code)
    text = new_revision("add a label", autogenerate=True, location=location).read_text()
    assert "batch_alter_table('tts_voices'" in text and "add_column(sa.Column('label'" in text
    assert "drop_column('label')" in text
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrations.upgrade(engine, location)
    with engine.connect() as conn:
        assert "label" in {c["name"] for c in sa.inspect(conn).get_columns("tts_voices")}
    engine.dispose()
