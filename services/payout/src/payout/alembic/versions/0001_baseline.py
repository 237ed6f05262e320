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
    {"fx_inbox", "fx_lease", "fx_outbox", "po_account", "po_ledger_entry", "po_withdrawal"}
)


def upgrade() -> None:
    _upgrade_fx_inbox()
    _upgrade_fx_lease()
    _upgrade_fx_outbox()
    _upgrade_po_account()
    _upgrade_po_ledger_entry()
    _upgrade_po_withdrawal()


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


def _upgrade_po_account() -> None:
    op.create_table(
        "po_account",
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("distributor_id"),
    )


def _upgrade_po_ledger_entry() -> None:
    op.create_table(
        "po_ledger_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("commission_id", sa.String(length=128), nullable=True),
        sa.Column("withdrawal_id", sa.String(length=128), nullable=True),
        sa.Column("source_event_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_event_id"),
        sa.UniqueConstraint("withdrawal_id", "kind"),
    )
    with op.batch_alter_table("po_ledger_entry", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_po_ledger_entry_commission_id"), ["commission_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_po_ledger_entry_distributor_id"), ["distributor_id"], unique=False
        )


def _upgrade_po_withdrawal() -> None:
    op.create_table(
        "po_withdrawal",
        sa.Column("withdrawal_id", sa.String(length=128), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("request_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("account", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("transfer_ref", sa.String(length=128), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("withdrawal_id"),
        sa.UniqueConstraint("distributor_id", "idempotency_key"),
    )
    with op.batch_alter_table("po_withdrawal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_po_withdrawal_distributor_id"), ["distributor_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_po_withdrawal_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("po_withdrawal", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_po_withdrawal_status"))
        batch_op.drop_index(batch_op.f("ix_po_withdrawal_distributor_id"))

    op.drop_table("po_withdrawal")
    with op.batch_alter_table("po_ledger_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_po_ledger_entry_distributor_id"))
        batch_op.drop_index(batch_op.f("ix_po_ledger_entry_commission_id"))

    op.drop_table("po_ledger_entry")
    op.drop_table("po_account")
    with op.batch_alter_table("fx_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_fx_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_fx_outbox_cause_id"))

    op.drop_table("fx_outbox")
    op.drop_table("fx_lease")
    op.drop_table("fx_inbox")
