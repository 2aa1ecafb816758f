"""Usage: requests, characters billed and audio delivered, per tenant, key, voice, endpoint and hour.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_usage",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("voice", sa.String(64), primary_key=True),
        sa.Column("endpoint", sa.String(32), primary_key=True),
        sa.Column("hour", sa.String(13), primary_key=True),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("characters", sa.BigInteger, nullable=False),
        sa.Column("audio_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tts_usage")
