"""event contract: inbox digest, 64-bit inbox offsets and money (up to 2^53 - 1 fen)

Revision ID: 0002
Revises: 0001
Created: 2026-12-06 13:10:37.066393
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _upgrade_cm_commission()
    _upgrade_cm_commission_audit()
    _upgrade_cm_refund_line()
    _upgrade_fx_inbox()


def _upgrade_cm_commission() -> None:
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.alter_column(
            "paid_amount_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "fen_per_unit",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "accrued_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "amount_fen", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )
        batch_op.alter_column(
            "refunded_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "settled_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "reversed_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "voided_fen", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )


def _upgrade_cm_commission_audit() -> None:
    with op.batch_alter_table("cm_commission_audit", schema=None) as batch_op:
        batch_op.alter_column(
            "amount_before",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "amount_after",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )


def _upgrade_cm_refund_line() -> None:
    with op.batch_alter_table("cm_refund_line", schema=None) as batch_op:
        batch_op.alter_column(
            "refund_amount_fen",
            existing_type=sa.INTEGER(),
            type_=sa.BigInteger(),
            existing_nullable=False,
        )


def _upgrade_fx_inbox() -> None:
    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "offset", existing_type=sa.INTEGER(), type_=sa.BigInteger(), existing_nullable=False
        )


def downgrade() -> None:
    _downgrade_fx_inbox()
    _downgrade_cm_refund_line()
    _downgrade_cm_commission_audit()
    _downgrade_cm_commission()


def _downgrade_fx_inbox() -> None:
    with op.batch_alter_table("fx_inbox", schema=None) as batch_op:
        batch_op.alter_column(
            "offset", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.drop_column("digest")


def _downgrade_cm_refund_line() -> None:
    with op.batch_alter_table("cm_refund_line", schema=None) as batch_op:
        batch_op.alter_column(
            "refund_amount_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )


def _downgrade_cm_commission_audit() -> None:
    with op.batch_alter_table("cm_commission_audit", schema=None) as batch_op:
        batch_op.alter_column(
            "amount_after",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "amount_before",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )


def _downgrade_cm_commission() -> None:
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.alter_column(
            "voided_fen", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.alter_column(
            "reversed_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "settled_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "refunded_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "amount_fen", existing_type=sa.BigInteger(), type_=sa.INTEGER(), existing_nullable=False
        )
        batch_op.alter_column(
            "accrued_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
        batch_op.alter_column(
            "fen_per_unit",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=True,
        )
        batch_op.alter_column(
            "paid_amount_fen",
            existing_type=sa.BigInteger(),
            type_=sa.INTEGER(),
            existing_nullable=False,
        )
