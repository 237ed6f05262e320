"""event contract: inbox digest, 64-bit inbox offsets and money (up to 2^53 - 1 fen)

Revision ID: 0002
Revises: 0001
Created: 2026-12-06 13:10:30.929781
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "offset", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )

    with op.batch_alter_table("qf_order", schema=None) as batch_op:
        batch_op.alter_column(
            "paid_fen", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )

    with op.batch_alter_table("qf_refund", schema=None) as batch_op:
        batch_op.alter_column(
            "amount_fen", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("qf_refund", schema=None) as batch_op:
        batch_op.alter_column(
            "amount_fen", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )

    with op.batch_alter_table("qf_order", schema=None) as batch_op:
        batch_op.alter_column(
            "paid_fen", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )

    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.alter_column(
            "offset", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.drop_column("digest")
