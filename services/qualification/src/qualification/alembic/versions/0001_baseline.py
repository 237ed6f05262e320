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
    {"fx_inbox", "fx_lease", "fx_outbox", "qf_history", "qf_order", "qf_qualification", "qf_refund"}
)


def upgrade() -> None:
    _upgrade_fx_inbox()
    _upgrade_fx_lease()
    _upgrade_fx_outbox()
    _upgrade_qf_history()
    _upgrade_qf_order()
    _upgrade_qf_qualification()
    _upgrade_qf_refund()


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


def _upgrade_qf_history() -> None:
    op.create_table(
        "qf_history",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("ce_type", sa.String(length=128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "seq"),
    )


def _upgrade_qf_order() -> None:
    op.create_table(
        "qf_order",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("paid_fen", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("uncounted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("user_id", "order_id"),
    )


def _upgrade_qf_qualification() -> None:
    op.create_table(
        "qf_qualification",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("wechat_id", sa.String(length=128), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("required_orders", sa.Integer(), nullable=True),
        sa.Column("counts_own_orders", sa.Boolean(), nullable=True),
        sa.Column("qualified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoke_reason", sa.String(length=1000), nullable=True),
        sa.PrimaryKeyConstraint("user_id"),
    )
    with op.batch_alter_table("qf_qualification", schema=None) as batch_op:
        batch_op.create_index("ix_qf_qualification_due", ["status", "deadline"], unique=False)


def _upgrade_qf_refund() -> None:
    op.create_table(
        "qf_refund",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("refund_id", sa.String(length=128), nullable=False),
        sa.Column("amount_fen", sa.Integer(), nullable=False),
        sa.Column("refunded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "order_id", "refund_id"),
    )


def downgrade() -> None:
    op.drop_table("qf_refund")
    with op.batch_alter_table("qf_qualification", schema=None) as batch_op:
        batch_op.drop_index("ix_qf_qualification_due")

    op.drop_table("qf_qualification")
    op.drop_table("qf_order")
    op.drop_table("qf_history")
    with op.batch_alter_table("fx_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_fx_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_fx_outbox_cause_id"))

    op.drop_table("fx_outbox")
    op.drop_table("fx_lease")
    op.drop_table("fx_inbox")
