"""The `earned` leaderboard (docs/domain.md §7): distributors by commission settled, net of
clawbacks, in the period of its settlement (`settled_at`, the end of the after-sales hold).

Counted changes are the audit rows `settled` (+ the amount settled) and `reversed` (− the
amount clawed back, in the period the commission settled); each is one board item, its id
the `ce_id` of the fx.commission.settled / .reversed event it published.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commission import domain
from commission.store.tables import AuditRecord, CommissionRecord
from fx_common.leaderboard import Item
from fx_common.leaderboard_service import BoardWiring
from fx_common.repository import rows_in, table_of

BOARD = "earned"
COUNTED: frozenset[str] = frozenset({"settled", "reversed"})
_EARNING = ("settled", "reversed")


def item_for(commission: domain.Commission, change: domain.Change, event_id: str) -> Item | None:
    """The board item of an audited change, if the board counts it."""
    if change.kind not in COUNTED or commission.settled_at is None:
        return None
    delta = change.amount_after - (0 if change.kind == "settled" else change.amount_before)
    return Item(event_id, commission.distributor_id, commission.settled_at, delta)


class EarnedSource:
    """What the commission store says about the `earned` board."""

    def recent(
        self, connection: sa.Connection, since: datetime
    ) -> Iterable[tuple[str, datetime, int]]:
        c = table_of(CommissionRecord)
        query = sa.select(c.c.distributor_id, c.c.settled_at, c.c.amount_fen).where(
            c.c.status.in_(_EARNING), c.c.settled_at >= since
        )
        return [(row[0], row[1], int(row[2])) for row in connection.execute(query)]

    def totals(self, connection: sa.Connection) -> Mapping[str, int]:
        c = table_of(CommissionRecord)
        query = (
            sa.select(c.c.distributor_id, sa.func.sum(c.c.amount_fen))
            .where(c.c.status.in_(_EARNING))
            .group_by(c.c.distributor_id)
        )
        return {row[0]: int(row[1]) for row in connection.execute(query)}

    def items(self, connection: sa.Connection) -> int:
        a = table_of(AuditRecord)
        query = sa.select(sa.func.count()).where(a.c.kind.in_(sorted(COUNTED)))
        return int(connection.execute(query).scalar_one())

    def present(self, connection: sa.Connection, ids: Sequence[str]) -> set[str]:
        a = table_of(AuditRecord)
        return {row[0] for row in rows_in(connection, sa.select(a.c.event_id), a.c.event_id, ids)}


def wiring(settings: Any) -> BoardWiring:
    return BoardWiring.of(settings, BOARD, EarnedSource(), "fen", lambda repo: repo.board_items)
