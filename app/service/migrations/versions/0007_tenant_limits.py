"""A tenant's own limits (streams at once, requests and characters per minute, audio seconds per day), held over
all its keys like a key's own.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_tenant_limits",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("max_streams", sa.Integer, nullable=False),
        sa.Column("requests_per_minute", sa.Integer, nullable=False),
        sa.Column("chars_per_minute", sa.Integer, nullable=False),
        sa.Column("audio_seconds_per_day", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tts_tenant_limits")
