"""audit: who ran the command behind each history event

Revision ID: 0004
Revises: 0003
Created: 2026-12-06 18:38:50.034947
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("qf_history", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("qf_history", schema=None) as batch_op:
        batch_op.drop_column("actor")
