"""Pronunciation dictionaries (issue 33): each tenant's dictionaries and every version of their rules, so that
every worker and replica applies the same ones.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tts_dictionaries",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text, nullable=True),
        sa.Column("latest_version", sa.String(32), nullable=False),
        sa.Column("latest_rules", sa.Integer, nullable=False),
        sa.Column("created_by_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("archived_at", sa.Float, nullable=True),
    )
    op.create_table(
        "tts_dictionary_versions",
        sa.Column("tenant", sa.String(64), primary_key=True),
        sa.Column("dictionary_id", sa.String(32), primary_key=True),
        sa.Column("version_id", sa.String(32), primary_key=True),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tts_dictionary_versions")
    op.drop_table("tts_dictionaries")
