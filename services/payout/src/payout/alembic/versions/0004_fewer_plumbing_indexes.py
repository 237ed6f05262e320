"""fewer plumbing indexes: the outbox without UNIQUE (ce_id) and the cause_id index, the inbox
WITHOUT ROWID on SQLite (fx_common.alembic.plumbing_steps says why; SQLite copies the inbox)

Revision ID: 0004
Revises: 0003
Created: 2026-12-06 22:30:00
"""

from collections.abc import Sequence

from fx_common.alembic import plumbing_steps

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    plumbing_steps.fewer_plumbing_indexes_upgrade()


def downgrade() -> None:
    plumbing_steps.fewer_plumbing_indexes_downgrade()
