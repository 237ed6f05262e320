"""recruiters: rb_recruiter (a distributor's recruiter, recorded once)

Revision ID: 0003
Revises: 0002
Created: 2026-12-06 18:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rb_recruiter",
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("recruiter_id", sa.String(length=128), nullable=False),
        sa.Column("binding_id", sa.String(length=128), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("distributor_id"),
    )
    with op.batch_alter_table("rb_recruiter", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rb_recruiter_recruiter_id"), ["recruiter_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rb_recruiter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_recruiter_recruiter_id"))
    op.drop_table("rb_recruiter")
