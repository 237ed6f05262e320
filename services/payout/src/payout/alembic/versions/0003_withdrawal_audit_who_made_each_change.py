"""withdrawal audit: who made each change

Revision ID: 0003
Revises: 0002
Created: 2026-12-06 18:36:24.829228
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
        "po_withdrawal_step",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("withdrawal_id", sa.String(length=128), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("transfer_ref", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("po_withdrawal_step", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_po_withdrawal_step_distributor_id"), ["distributor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_po_withdrawal_step_withdrawal_id"), ["withdrawal_id"], unique=False
        )
    _backfill()


# The withdrawals made before the audit: their steps from the times they kept (who is unknown).
_STEPS = (
    ("requested", "requested_at", "NULL", "NULL"),
    ("approved", "approved_at", "NULL", "NULL"),
    ("rejected", "rejected_at", "reason", "NULL"),
    ("paid", "paid_at", "NULL", "transfer_ref"),
    ("failed", "failed_at", "reason", "NULL"),
)


def _backfill() -> None:
    for status, at, reason, transfer_ref in _STEPS:
        op.execute(
            "INSERT INTO po_withdrawal_step "
            "(withdrawal_id, distributor_id, status, at, actor, amount_fen, reason, transfer_ref) "
            f"SELECT withdrawal_id, distributor_id, '{status}', {at}, NULL, amount_fen, "
            f"{reason}, {transfer_ref} FROM po_withdrawal WHERE {at} IS NOT NULL "
            f"ORDER BY {at}, withdrawal_id"
        )


def downgrade() -> None:
    with op.batch_alter_table("po_withdrawal_step", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_po_withdrawal_step_withdrawal_id"))
        batch_op.drop_index(batch_op.f("ix_po_withdrawal_step_distributor_id"))

    op.drop_table("po_withdrawal_step")
