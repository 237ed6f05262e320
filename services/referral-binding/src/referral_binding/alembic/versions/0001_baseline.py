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
        "fx_inbox",
        "fx_lease",
        "fx_outbox",
        "rb_binding",
        "rb_eligibility",
        "rb_extension",
        "rb_order",
        "rb_share",
        "rb_visit",
    }
)


def upgrade() -> None:
    _upgrade_fx_inbox()
    _upgrade_fx_lease()
    _upgrade_fx_outbox()
    _upgrade_rb_binding()
    _upgrade_rb_eligibility()
    _upgrade_rb_extension()
    _upgrade_rb_order()
    _upgrade_rb_share()
    _upgrade_rb_visit()


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


def _upgrade_rb_binding() -> None:
    op.create_table(
        "rb_binding",
        sa.Column("binding_id", sa.String(length=128), nullable=False),
        sa.Column("customer_id", sa.String(length=128), nullable=False),
        sa.Column("distributor_id", sa.String(length=128), nullable=False),
        sa.Column("share_id", sa.String(length=128), nullable=False),
        sa.Column("order_id", sa.String(length=128), nullable=True),
        sa.Column("bound_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("protected_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_reason", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("binding_id"),
    )
    with op.batch_alter_table("rb_binding", schema=None) as batch_op:
        batch_op.create_index("ix_rb_binding_customer", ["customer_id", "bound_at"], unique=False)
        batch_op.create_index(
            "ix_rb_binding_distributor", ["distributor_id", "released_at"], unique=False
        )
        batch_op.create_index(
            "ix_rb_binding_open", ["released_at", "protected_until"], unique=False
        )


def _upgrade_rb_eligibility() -> None:
    op.create_table(
        "rb_eligibility",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("cause", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("rb_eligibility", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rb_eligibility_user_id"), ["user_id"], unique=False)


def _upgrade_rb_extension() -> None:
    op.create_table(
        "rb_extension",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("binding_id", sa.String(length=128), nullable=False),
        sa.Column("extended_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("protected_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("rb_extension", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rb_extension_binding_id"), ["binding_id"], unique=False
        )


def _upgrade_rb_order() -> None:
    op.create_table(
        "rb_order",
        sa.Column("order_id", sa.String(length=128), nullable=False),
        sa.Column("buyer_id", sa.String(length=128), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("share_id", sa.String(length=128), nullable=True),
        sa.Column("distributor_id", sa.String(length=128), nullable=True),
        sa.Column("basis", sa.String(length=32), nullable=True),
        sa.Column("binding_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("order_id"),
    )
    with op.batch_alter_table("rb_order", schema=None) as batch_op:
        batch_op.create_index("ix_rb_order_buyer", ["buyer_id", "paid_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_rb_order_distributor_id"), ["distributor_id"], unique=False
        )


def _upgrade_rb_share() -> None:
    op.create_table(
        "rb_share",
        sa.Column("share_id", sa.String(length=128), nullable=False),
        sa.Column("sharer_id", sa.String(length=128), nullable=False),
        sa.Column("product_sku", sa.String(length=128), nullable=True),
        sa.Column("channel", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("share_id"),
    )
    with op.batch_alter_table("rb_share", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rb_share_sharer_id"), ["sharer_id"], unique=False)


def _upgrade_rb_visit() -> None:
    op.create_table(
        "rb_visit",
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("share_id", sa.String(length=128), nullable=False),
        sa.Column("sharer_id", sa.String(length=128), nullable=False),
        sa.Column("visitor_id", sa.String(length=128), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("binding_id", sa.String(length=128), nullable=True),
        sa.Column("protected_by", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("event_id"),
    )
    with op.batch_alter_table("rb_visit", schema=None) as batch_op:
        batch_op.create_index("ix_rb_visit_sharer_outcome", ["sharer_id", "outcome"], unique=False)
        batch_op.create_index(batch_op.f("ix_rb_visit_visitor_id"), ["visitor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rb_visit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_visit_visitor_id"))
        batch_op.drop_index("ix_rb_visit_sharer_outcome")

    op.drop_table("rb_visit")
    with op.batch_alter_table("rb_share", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_share_sharer_id"))

    op.drop_table("rb_share")
    with op.batch_alter_table("rb_order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_order_distributor_id"))
        batch_op.drop_index("ix_rb_order_buyer")

    op.drop_table("rb_order")
    with op.batch_alter_table("rb_extension", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_extension_binding_id"))

    op.drop_table("rb_extension")
    with op.batch_alter_table("rb_eligibility", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rb_eligibility_user_id"))

    op.drop_table("rb_eligibility")
    with op.batch_alter_table("rb_binding", schema=None) as batch_op:
        batch_op.drop_index("ix_rb_binding_open")
        batch_op.drop_index("ix_rb_binding_distributor")
        batch_op.drop_index("ix_rb_binding_customer")

    op.drop_table("rb_binding")
    with op.batch_alter_table("fx_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_fx_outbox_pending")
        batch_op.drop_index(batch_op.f("ix_fx_outbox_cause_id"))

    op.drop_table("fx_outbox")
    op.drop_table("fx_lease")
    op.drop_table("fx_inbox")
