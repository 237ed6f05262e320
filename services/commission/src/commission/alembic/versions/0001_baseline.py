"""baseline: the schema create_all made before migrations

Revision ID: 0001
Revises: (none)
Created: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The tables `create_all` made before migrations existed: a store that has them and no
# revision is adopted at this baseline (`fx_common.migrations`).
LEGACY_TABLES = frozenset(
    {
        "cm_commission",
        "cm_commission_audit",
        "cm_completion",
        "cm_order",
        "cm_plan_rate",
        "cm_plan_version",
        "cm_refund_line",
        "cm_status_change",
        "fx_inbox",
        "fx_lease",
        "fx_outbox",
    }
)


def upgrade() -> None:
    _upgrade_cm_commission()
    _upgrade_cm_commission_audit()
    _upgrade_cm_completion()
    _upgrade_cm_order()
    _upgrade_cm_plan_rate()
    _upgrade_cm_plan_version()
    _upgrade_cm_refund_line()
    _upgrade_cm_status_change()
    _upgrade_fx_inbox()
    _upgrade_fx_lease()
    _upgrade_fx_outbox()


def _upgrade_cm_commission() -> None:
    op.create_table(
        "cm_commission",
        sa.Column("commission_id", sa.String(length=64), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("line_id", sa.String(length=128), nullable=False),
        sa.Column("sku", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=128), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("paid_amount_fen", sa.Integer(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("rate_basis", sa.String(length=16), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=False),
        sa.Column("fen_per_unit", sa.Integer(), nullable=True),
        sa.Column("accrued_fen", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("refunded_fen", sa.Integer(), nullable=False),
        sa.Column("settle_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("settled_fen", sa.Integer(), nullable=False),
        sa.Column("reversed_fen", sa.Integer(), nullable=False),
        sa.Column("voided_fen", sa.Integer(), nullable=False),
        sa.Column("void_reason", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("commission_id"),
    )
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cm_commission_distributor", ["distributor_id", "status", "paid_at"], unique=False
        )
        batch_op.create_index("ix_cm_commission_due", ["status", "settle_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_cm_commission_order_id"), ["order_id"], unique=False)


def _upgrade_cm_commission_audit() -> None:
    op.create_table(
        "cm_commission_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("commission_id", sa.String(length=64), nullable=False),
        sa.Column("cause_id", sa.String(length=160), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status_before", sa.String(length=16), nullable=True),
        sa.Column("status_after", sa.String(length=16), nullable=False),
        sa.Column("amount_before", sa.Integer(), nullable=False),
        sa.Column("amount_after", sa.Integer(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("refund_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cm_commission_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cm_commission_audit_commission_id"), ["commission_id"], unique=False
        )


def _upgrade_cm_completion() -> None:
    op.create_table(
        "cm_completion",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )


def _upgrade_cm_order() -> None:
    op.create_table(
        "cm_order",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("basis", sa.String(length=16), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("cm_order", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cm_order_distributor_id"), ["distributor_id"], unique=False
        )


def _upgrade_cm_plan_rate() -> None:
    op.create_table(
        "cm_plan_rate",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("rate_bps", sa.Integer(), nullable=True),
        sa.Column("fen_per_unit", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("version", "scope", "key"),
    )


def _upgrade_cm_plan_version() -> None:
    op.create_table(
        "cm_plan_version",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("default_rate_bps", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("version"),
    )
    with op.batch_alter_table("cm_plan_version", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cm_plan_version_effective_from"), ["effective_from"], unique=False
        )


def _upgrade_cm_refund_line() -> None:
    op.create_table(
        "cm_refund_line",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("line_id", sa.String(length=128), nullable=False),
        sa.Column("refund_amount_fen", sa.Integer(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "refund_id", "line_id"),
    )


def _upgrade_cm_status_change() -> None:
    op.create_table(
        "cm_status_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("cm_status_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cm_status_change_distributor_id"), ["distributor_id"], unique=False
        )


def _upgrade_fx_inbox() -> None:
    op.create_table(
        "fx_inbox",
        sa.Column("ce_id", sa.String(length=128), nullable=False),
        sa.Column("ce_type", sa.String(length=128), nullable=False),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.Integer(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ce_id"),
    )


def _upgrade_fx_lease() -> None:
    op.create_table(
        "fx_lease",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def _upgrade_fx_outbox() -> None:
    op.create_table(
        "fx_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ce_id", sa.String(length=128), nullable=True),
        sa.Column("ce_type", sa.String(length=128), nullable=True),
        sa.Column("cause_id", sa.String(length=160), nullable=True),
        sa.Column("topic", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=256), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=True),
        sa.Column("headers", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ce_id"),
    )
    with op.batch_alter_table("fx_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fx_outbox_cause_id"), ["cause_id"], unique=False)
        batch_op.create_index("ix_fx_outbox_pending", ["published_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fx_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_fx_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_fx_outbox_cause_id"))

    op.drop_table("fx_outbox")
    op.drop_table("fx_lease")
    op.drop_table("fx_inbox")
    with op.batch_alter_table("cm_status_change", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cm_status_change_distributor_id"))

    op.drop_table("cm_status_change")
    op.drop_table("cm_refund_line")
    with op.batch_alter_table("cm_plan_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cm_plan_version_effective_from"))

    op.drop_table("cm_plan_version")
    op.drop_table("cm_plan_rate")
    with op.batch_alter_table("cm_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cm_order_distributor_id"))

    op.drop_table("cm_order")
    op.drop_table("cm_completion")
    with op.batch_alter_table("cm_commission_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cm_commission_audit_commission_id"))

    op.drop_table("cm_commission_audit")
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cm_commission_order_id"))
        batch_op.drop_index("ix_cm_commission_due")
        batch_op.drop_index("ix_cm_commission_distributor")

    op.drop_table("cm_commission")
