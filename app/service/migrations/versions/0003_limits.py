"""Limits every worker and replica holds together: stream leases (an expiry, renewed while the stream runs) and
windowed counters (requests and characters per minute, audio seconds per day), per key.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_leases",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("scope", sa.String(160), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_index("ix_tts_leases_scope", "tts_leases", ["scope"])
    op.create_table(
        "tts_rate_windows",
        sa.Column("scope", sa.String(160), primary_key=True),
        sa.Column("window", sa.BigInteger, primary_key=True),
        sa.Column("amount", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tts_rate_windows")
    op.drop_index("ix_tts_leases_scope", "tts_leases")
    op.drop_table("tts_leases")
