"""second tier: cm_commission.tier and source_distributor_id, the plan's tier-2 default rate

Revision ID: 0004
Revises: 0003
Created: 2026-12-06 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(
            sa.Column("source_distributor_id", sa.String(length=128), nullable=True)
        )
        batch_op.create_index(
            "ix_cm_commission_source", ["source_distributor_id", "status"], unique=False
        )
    with op.batch_alter_table("cm_plan_version", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tier2_default_rate_bps", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("cm_plan_version", schema=None) as batch_op:
        batch_op.drop_column("tier2_default_rate_bps")
    with op.batch_alter_table("cm_commission", schema=None) as batch_op:
        batch_op.drop_index("ix_cm_commission_source")
        batch_op.drop_column("source_distributor_id")
        batch_op.drop_column("tier")
