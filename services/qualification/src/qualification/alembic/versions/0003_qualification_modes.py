"""qualification modes: how and by whom a user was qualified (FX_QUALIFICATION_MODE)

Revision ID: 0003
Revises: 0002
Created: 2026-12-06 15:32:29.011572
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("qf_qualification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("qualified_via", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("appointed_by", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("appoint_reason", sa.String(length=1000), nullable=True))
    # Before the modes, the assessment was the only way to qualify (revoked users qualified
    # first).
    op.execute(
        "UPDATE qf_qualification SET qualified_via = 'assessment' "
        "WHERE status IN ('qualified', 'revoked')"
    )


def downgrade() -> None:
    with op.batch_alter_table("qf_qualification", schema=None) as batch_op:
        batch_op.drop_column("appoint_reason")
        batch_op.drop_column("appointed_by")
        batch_op.drop_column("qualified_via")
