"""Add a migration to the voice store's schema: `python -m tools.new_migration "add an owner to voices"` writes
app/service/migrations/versions/NNNN_add_an_owner_to_voices.py, the next number, revising the current head.

With `--autogenerate` it is filled with what differs between the code's tables (app.service.tables.metadata)
and the schema at head (made in a scratch SQLite file), as batch operations so that SQLite can apply them too: a
draft to read and finish (data moves, server defaults for new NOT NULL columns), then to test on both stores.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from app.service import migrations


def next_revision_id(location: Path = migrations.SCRIPT_LOCATION) -> str:
    """The number after the highest revision's: 0001 -> 0002."""
    script = ScriptDirectory.from_config(migrations.alembic_config(script_location=location))
    numbers = [int(s.revision) for s in script.walk_revisions()]
    return f"{max(numbers, default=0) + 1:04d}"


def new_revision(message: str, autogenerate: bool = False, location: Path = migrations.SCRIPT_LOCATION) -> Path:
    """Write the next revision's file into `location`/versions; its path."""
    rev_id = next_revision_id(location)
    with tempfile.TemporaryDirectory() as scratch:
        engine = sa.create_engine(f"sqlite:///{scratch}/head.db")
        try:
            if autogenerate:
                migrations.upgrade(engine, location)
            with engine.begin() as conn:
                config = migrations.alembic_config(conn, location)
                if autogenerate:
                    from app.service.tables import metadata

                    config.attributes["target_metadata"] = metadata
                script = command.revision(config, message=message, rev_id=rev_id, autogenerate=autogenerate)
        finally:
            engine.dispose()
    return Path(script.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.new_migration", description=__doc__.split("\n\n")[0])
    parser.add_argument("message", help="what the migration does, e.g. 'add an owner to voices'")
    parser.add_argument("--autogenerate", action="store_true", help="draft it from the code's tables")
    args = parser.parse_args(argv)
    print(new_revision(args.message, args.autogenerate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
