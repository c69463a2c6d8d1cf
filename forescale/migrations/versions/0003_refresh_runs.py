"""Refresh runs: a refit asked for through ``POST /v1/services/{name}/refresh``, pollable.

One row per accepted refresh (coalesced requests share one): ``status`` goes ``queued`` ->
``running`` -> ``succeeded`` | ``failed``; times are Unix seconds (UTC); ``forecast_run_id``
is the forecast the refit stored, ``error`` what went wrong. The API serves them as
``GET /v1/runs/refresh-<id>``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "refresh_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=True),
        sa.Column("finished_at", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("forecast_run_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["forecast_run_id"], ["forecast_runs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_refresh_runs_service"), "refresh_runs", ["service"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_refresh_runs_service"), table_name="refresh_runs")
    op.drop_table("refresh_runs")
