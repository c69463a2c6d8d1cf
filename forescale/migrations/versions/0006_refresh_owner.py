"""Refresh runs carry a lease: the server that owns a run and when it last said it lives.

``owner`` names the server process that queued the run (``host:pid:random``);
``heartbeat_at`` (Unix seconds, UTC) is the last time it said it still works on it. A run
queued or running whose heartbeat is older than the lease is failed as abandoned by any
server on the store. Both are NULL on rows from before this revision: their last sign of
life is ``requested_at`` or ``started_at``, whichever is later.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("owner", sa.String(length=64)),
    ("heartbeat_at", sa.BigInteger()),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("refresh_runs") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("refresh_runs") as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
