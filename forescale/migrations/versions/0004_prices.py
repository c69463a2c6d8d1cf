"""Prices: the on-demand price of a unit looked up once (AWS Pricing API), with its date.

One row per lookup key (``aws:ec2:<instance type>:<region>:<os>:<tenancy>``): the price per
unit-hour, its currency, and when it was fetched (Unix seconds, UTC). A service with
``pricing:`` reads its price from here and asks the Pricing API only when no row exists.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "prices",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("per_hour", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fetched_at", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("prices")
