"""Shadow mode's audit: a service entering shadow mode, promoted out of it, demoted back.

One row per change, append-only: ``from_mode`` (NULL for a service's first row),
``to_mode``, ``reason`` in words, ``at`` in Unix seconds (UTC).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "mode_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("from_mode", sa.String(length=20), nullable=True),
        sa.Column("to_mode", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_mode_changes_service"), "mode_changes", ["service"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_mode_changes_service"), table_name="mode_changes")
    op.drop_table("mode_changes")
