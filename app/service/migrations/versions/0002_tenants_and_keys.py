"""Tenants and their keys: saved voices belong to a tenant (the ones made before it to `default`, the tenant of
API_KEY), their consent record names the key they were saved under, and API keys live in the store (hashed).

The voices' primary key becomes (tenant, name): two tenants may each have a voice of one name. SQLite alters a
table by copying it (batch mode); PostgreSQL in place.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DEFAULT_TENANT = "default"  # app.service.principal.DEFAULT_TENANT, as it was when this revision was written


VOICE_COLUMNS = (
    "name", "reference_text", "transcript", "reference_tokens", "audio_seconds", "audio_sha256", "language",
    "consent", "consent_by", "created_from", "created_at",
)  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _voices_with_tenants_copied()
    else:
        op.add_column("tts_voices", sa.Column("tenant", sa.String(64), nullable=False, server_default=DEFAULT_TENANT))
        op.add_column("tts_voices", sa.Column("created_by_key", sa.String(64), nullable=False, server_default=""))
        op.drop_constraint("tts_voices_pkey", "tts_voices", type_="primary")
        op.create_primary_key("tts_voices_pkey", "tts_voices", ["tenant", "name"])
        op.alter_column("tts_voices", "tenant", server_default=None)  # the code always names the tenant
        op.alter_column("tts_voices", "created_by_key", server_default=None)
    op.create_table(
        "tts_api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("max_streams", sa.Integer, nullable=False),
        sa.Column("requests_per_minute", sa.Integer, nullable=False),
        sa.Column("chars_per_minute", sa.Integer, nullable=False),
        sa.Column("audio_seconds_per_day", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("revoked_at", sa.String(32), nullable=True),
    )


def _voices_with_tenants_copied() -> None:
    """SQLite cannot change a primary key in place: a new table, the rows copied (of the default tenant), the old
    one dropped, the new one renamed."""
    op.create_table(
        "tts_voices_new",
        sa.Column("tenant", sa.String(64), primary_key=True),
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
        sa.Column("created_by_key", sa.String(64), nullable=False),
    )
    columns = ", ".join(VOICE_COLUMNS)
    op.execute(
        sa.text(
            f"INSERT INTO tts_voices_new (tenant, created_by_key, {columns}) "
            f"SELECT :tenant, '', {columns} FROM tts_voices"
        ).bindparams(tenant=DEFAULT_TENANT)
    )
    op.drop_table("tts_voices")
    op.rename_table("tts_voices_new", "tts_voices")


def downgrade() -> None:
    op.drop_table("tts_api_keys")
    with op.batch_alter_table("tts_voices") as batch:
        batch.drop_constraint("tts_voices_pkey", type_="primary")
        batch.create_primary_key("tts_voices_pkey", ["name"])
        batch.drop_column("created_by_key")
        batch.drop_column("tenant")
