"""Schema steps of the common tables (inbox, outbox) that every service's history runs.

A revision is frozen history: once released, a step here never changes (a later change is a
new step with a new name), so the four services' revisions can share it instead of carrying
four copies. Steps take no models: they name tables and columns as they were at that point.
"""

from __future__ import annotations

from alembic import op

_OUTBOX_CE_ID_UNIQUE = {"sqlite": "uq_fx_outbox_ce_id", "postgresql": "fx_outbox_ce_id_key"}
"""The baseline's unnamed `UNIQUE (ce_id)`: named by the batch's convention on SQLite, by
Postgres's own default elsewhere."""


def _dialect() -> str:
    return op.get_bind().dialect.name


def fewer_plumbing_indexes_upgrade() -> None:
    """The outbox loses its `UNIQUE (ce_id)` and its `cause_id` index (nothing reads by them;
    deterministic ids and the consumers' inboxes make a copy harmless), the inbox becomes a
    `WITHOUT ROWID` table on SQLite (its key is its only index). Each was a B-tree insert on a
    random key per event, and on a large store each dirtied a page of its own per row."""
    op.drop_index("ix_fx_outbox_cause_id", table_name="fx_outbox")
    if _dialect() == "sqlite":
        convention = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
        with op.batch_alter_table("fx_outbox", naming_convention=convention) as batch_op:
            batch_op.drop_constraint(_OUTBOX_CE_ID_UNIQUE["sqlite"], type_="unique")
        with op.batch_alter_table(
            "fx_inbox", recreate="always", table_kwargs={"sqlite_with_rowid": False}
        ):
            pass
    else:
        op.drop_constraint(_OUTBOX_CE_ID_UNIQUE["postgresql"], "fx_outbox", type_="unique")


def fewer_plumbing_indexes_downgrade() -> None:
    if _dialect() == "sqlite":
        with op.batch_alter_table(
            "fx_inbox", recreate="always", table_kwargs={"sqlite_with_rowid": True}
        ):
            pass
        with op.batch_alter_table("fx_outbox") as batch_op:
            batch_op.create_unique_constraint(_OUTBOX_CE_ID_UNIQUE["sqlite"], ["ce_id"])
    else:
        op.create_unique_constraint(_OUTBOX_CE_ID_UNIQUE["postgresql"], "fx_outbox", ["ce_id"])
    op.create_index("ix_fx_outbox_cause_id", "fx_outbox", ["cause_id"], unique=False)
