"""Baseline: the saved-voices table exactly as main created it before migrations (`CreateTable`, if not exists).

A database made then has this table and no `alembic_version`: start-up stamps it at this revision, untouched.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_voices",
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


def downgrade() -> None:
    op.drop_table("tts_voices")
