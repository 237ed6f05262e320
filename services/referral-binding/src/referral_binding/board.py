"""The `customers` leaderboard (docs/domain.md §7): distributors by customers bound, in the
period the binding began (`bound_at`, the time of the visit or order that bound).

Every binding created counts once (its `binding_id` is the board item's id), whatever
happens to it later (extended, lapsed, released, overwritten): bindings are intervals
and none is deleted, so a period's count never goes down.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fx_common.leaderboard import Item
from fx_common.leaderboard_service import BoardWiring
from fx_common.repository import rows_in, table_of
from referral_binding.domain import Binding
from referral_binding.store.tables import RbBinding

BOARD = "customers"


def item_for(binding: Binding) -> Item:
    return Item(binding.binding_id, binding.distributor_id, binding.bound_at, 1)


class CustomersSource:
    """What the referral-binding store says about the `customers` board."""

    def recent(
        self, connection: sa.Connection, since: datetime
    ) -> Iterable[tuple[str, datetime, int]]:
        b = table_of(RbBinding)
        query = sa.select(b.c.distributor_id, b.c.bound_at).where(b.c.bound_at >= since)
        return [(row[0], row[1], 1) for row in connection.execute(query)]

    def totals(self, connection: sa.Connection) -> Mapping[str, int]:
        b = table_of(RbBinding)
        query = sa.select(b.c.distributor_id, sa.func.count()).group_by(b.c.distributor_id)
        return {row[0]: int(row[1]) for row in connection.execute(query)}

    def items(self, connection: sa.Connection) -> int:
        b = table_of(RbBinding)
        return int(connection.execute(sa.select(sa.func.count()).select_from(b)).scalar_one())

    def present(self, connection: sa.Connection, ids: Sequence[str]) -> set[str]:
        b = table_of(RbBinding)
        return {
            row[0] for row in rows_in(connection, sa.select(b.c.binding_id), b.c.binding_id, ids)
        }


def wiring(settings: Any) -> BoardWiring:
    return BoardWiring.of(
        settings,
        BOARD,
        CustomersSource(),
        "customers",
        lambda repo: list(repo.board_items.values()),
    )
