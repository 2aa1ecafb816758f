"""The HTTP speech contexts (`context.id`) in the store: every worker and replica continues a conversation that
another one began.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_contexts",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("context_id", sa.String(128), primary_key=True),
        sa.Column("claim", sa.String(32), nullable=False),
        sa.Column("pending", sa.Boolean, nullable=False),
        sa.Column("voice", sa.String(64), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("tokens", sa.LargeBinary, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tts_contexts")
