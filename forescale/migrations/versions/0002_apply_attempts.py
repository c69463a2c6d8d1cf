"""Apply attempts: what the file held before forescale's write, retries linked, outcomes kept.

Each apply attempt is its own ``changes`` row (append-only audit): ``retry_of`` links an
attempt to the one it continues; ``file_sha_before``/``literal_before`` record what the
variable file held before forescale wrote (so a resume, restore or retry works from the
record, never from the file as it is now); ``file_sha_after``/``literal_after`` what
forescale wrote; ``message`` the outcome as the operator saw it.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    ("retry_of", sa.Integer()),
    ("file_sha_before", sa.String(length=64)),
    ("file_sha_after", sa.String(length=64)),
    ("literal_before", sa.Text()),
    ("literal_after", sa.Text()),
    ("message", sa.Text()),
)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("changes") as batch:
        for name, kind in _COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("changes") as batch:
        for name, _kind in reversed(_COLUMNS):
            batch.drop_column(name)
