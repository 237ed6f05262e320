"""event contract: inbox digest, 64-bit inbox offsets; late visits (rb_order.event_id and
lines of unattributed orders, rb_follow_up)

Revision ID: 0002
Revises: 0001
Created: 2026-12-06 13:10:40.810096
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rb_follow_up",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("ce_type", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("rb_follow_up", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rb_follow_up_order_id"), ["order_id"], unique=False)

    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "offset", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )

    with op.batch_alter_table("rb_order", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("lines", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rb_order", schema=None) as batch_op:
        batch_op.drop_column("lines")
        batch_op.drop_column("event_id")

    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.alter_column(
            "offset", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.drop_column("digest")

    with op.batch_alter_table("rb_follow_up", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_follow_up_order_id"))

    op.drop_table("rb_follow_up")
