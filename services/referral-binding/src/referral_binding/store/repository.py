"""The consume path's view of the store: what a batch reads and writes, in a few statements."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func

from fx_common.leaderboard import Item
from fx_common.processing import Keys, UnitOfWork
from fx_common.repository import ChangedRows, rows_in, table_of
from referral_binding import board
from referral_binding.domain import (
    REOPENABLE,
    Basis,
    Binding,
    CustomerBindings,
    Eligibility,
    EligibilityChange,
    VisitOutcome,
)
from referral_binding.store.queries import change_of
from referral_binding.store.tables import (
    RbBinding,
    RbEligibility,
    RbExtension,
    RbOrder,
    RbRecruiter,
    RbShare,
    RbVisit,
    binding_of,
    binding_row,
    new_share_row,
)

_SHARES = table_of(RbShare)
_BINDINGS = table_of(RbBinding)
_ORDERS = table_of(RbOrder)
_ELIGIBILITY = table_of(RbEligibility)
_VISITS = table_of(RbVisit)
_RECRUITERS = table_of(RbRecruiter)
_Columns = tuple[Any, ...]


class Repository:
    """One unit of work's view of the store on the consume path.

    `load` reads, in a few set-based queries, every row the batch's handlers will look up;
    the handlers then read and change this state, so each event sees the effects of the
    earlier ones without SQL. Appended rows (eligibility changes, extensions, orders) are
    staged on the unit of work; shares, bindings and visits, which change, are written once,
    when the unit of work flushes.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.shares: dict[str, dict[str, Any]] = {}
        self.eligibility: dict[str, Eligibility] = {}
        self.bindings: dict[str, Binding] = {}
        self.of_customer: dict[str, set[str]] = {}
        self.of_distributor: dict[str, set[str]] = {}
        self.latest_order_paid_at: dict[str, datetime | None] = {}
        self.order_distributor: dict[str, str | None] = {}
        self.visits: dict[str, dict[str, Any]] = {}
        """Reopenable visits (`REOPENABLE` outcomes) of the sharers loaded to reopen."""
        self.reopenable_of: dict[str, set[str]] = {}
        self._changed_shares = ChangedRows(RbShare)
        self._changed_bindings = ChangedRows(RbBinding)
        self._changed_visits = ChangedRows(RbVisit)
        self._changed_orders = ChangedRows(RbOrder)
        self.new_orders: dict[str, dict[str, Any]] = {}
        """Orders added by this unit of work, as rows (a late visit may attribute them)."""
        self.recruited: set[str] = set()
        """Of the `recruits` loaded, those whose recruiter is recorded."""
        self.changed_customers: set[str] = set()
        """Customers whose bindings this unit of work changed (their cached answers go)."""
        self.board_items: dict[str, Item] = {}
        """Bindings created, for the `customers` leaderboard (`referral_binding.board`)."""
        uow.before_flush(self.write)

    def load(self, keys: Keys) -> None:
        """The `shares`; the visits of each sharer of `reopen` ((sharer, since) pairs) refused
        as not eligible at or after `since` (their visitors join the customers); the
        `customers`' bindings and latest paid order; the `distributors`' open bindings; the
        `orders`; the eligibility of `users`, the customers, the distributors and the sharers
        and bound distributors of all of these."""
        shares, customers = keys.get("shares", set()), keys.get("customers", set())
        distributors, orders = keys.get("distributors", set()), keys.get("orders", set())
        users = keys.get("users", set())
        recruited = sa.select(_RECRUITERS.c.distributor_id)
        for (recruit,) in self._each(
            recruited, _RECRUITERS.c.distributor_id, keys.get("recruits", set())
        ):
            self.recruited.add(recruit)
        reopen: dict[str, datetime] = {}
        for sharer, since in keys.get("reopen", ()):
            reopen[sharer] = min(since, reopen.get(sharer, since))
        self.reopenable_of.update({sharer: set() for sharer in reopen})
        if reopen:
            refused = sa.select(_VISITS).where(
                _VISITS.c.outcome.in_(sorted(o.value for o in REOPENABLE)),
                _VISITS.c.visited_at >= min(reopen.values()),
            )
            for row in self._each(refused, _VISITS.c.sharer_id, set(reopen)):
                self._remember_visit(row._asdict())
            customers = customers | {v["visitor_id"] for v in self.visits.values()}
        self.of_customer.update({customer: set() for customer in customers})
        self.latest_order_paid_at.update({customer: None for customer in customers})
        self.of_distributor.update({distributor: set() for distributor in distributors})
        for row in self._each(sa.select(_SHARES), _SHARES.c.share_id, shares):
            self.shares[row.share_id] = row._asdict()
        bindings = sa.select(_BINDINGS)
        for row in self._each(bindings, _BINDINGS.c.customer_id, customers):
            self._remember(binding_of(row._asdict()))
        open_bindings = bindings.where(_BINDINGS.c.released_at.is_(None))
        for row in self._each(open_bindings, _BINDINGS.c.distributor_id, distributors):
            self._remember(binding_of(row._asdict()))
        latest = sa.select(_ORDERS.c.buyer_id, func.max(_ORDERS.c.paid_at))
        for buyer_id, paid_at in self._each(
            latest.group_by(_ORDERS.c.buyer_id), _ORDERS.c.buyer_id, customers
        ):
            self.latest_order_paid_at[buyer_id] = paid_at
        attributed = sa.select(_ORDERS.c.order_id, _ORDERS.c.distributor_id)
        for order_id, distributor_id in self._each(attributed, _ORDERS.c.order_id, orders):
            self.order_distributor[order_id] = distributor_id
        users = users | customers | distributors
        users |= {share["sharer_id"] for share in self.shares.values()}
        users |= {binding.distributor_id for binding in self.bindings.values()}
        changes: dict[str, list[EligibilityChange]] = {user: [] for user in users}
        history = sa.select(
            _ELIGIBILITY.c.user_id,
            _ELIGIBILITY.c.since,
            _ELIGIBILITY.c.eligible,
            _ELIGIBILITY.c.cause,
        )
        for user_id, since, eligible, cause in self._each(history, _ELIGIBILITY.c.user_id, users):
            changes[user_id].append(change_of(since, eligible, cause))
        self.eligibility.update({user: Eligibility(c) for user, c in changes.items()})

    def _each(
        self, query: sa.Select[*_Columns], key: sa.ColumnElement[str], keys: set[str]
    ) -> Iterator[sa.Row[*_Columns]]:
        """The rows of `query` whose `key` is one of `keys` (`fx_common.repository.rows_in`)."""
        return rows_in(self.uow.session.connection(), query, key, keys)

    def add_recruiter(
        self, distributor_id: str, binding: Binding, at: datetime, event_id: str
    ) -> None:
        self.uow.stage(
            RbRecruiter, distributor_id=distributor_id, recruiter_id=binding.distributor_id,
            binding_id=binding.binding_id, applied_at=at, event_id=event_id,
        )  # fmt: skip
        self.recruited.add(distributor_id)

    # --- shares

    def record_share(
        self,
        share_id: str,
        sharer_id: str,
        seen_at: datetime,
        *,
        created: bool,
        product_sku: str | None = None,
        channel: str | None = None,
    ) -> None:
        """Remember a share; `mall.share.created` is authoritative over what a visit said."""
        known = self.shares.get(share_id)
        share = dict(known) if known is not None else new_share_row(share_id, sharer_id, seen_at)
        if created:
            share.update(
                sharer_id=sharer_id, created_at=seen_at, product_sku=product_sku, channel=channel
            )
        share["first_seen_at"] = min(share["first_seen_at"], seen_at)
        if share != known:
            self.shares[share_id] = share
            self._changed_shares.put(share_id, share, created=known is None)

    def sharer_of(self, share_id: str) -> str | None:
        share = self.shares.get(share_id)
        return share["sharer_id"] if share is not None else None

    # --- eligibility

    def eligibility_of(self, user_id: str) -> Eligibility:
        return self.eligibility[user_id]

    def add_eligibility(
        self, event_id: str, user_id: str, since: datetime, eligible: bool, cause: str
    ) -> None:
        self.uow.stage(
            RbEligibility,
            event_id=event_id,
            user_id=user_id,
            since=since,
            eligible=eligible,
            cause=cause,
        )
        known = self.eligibility[user_id].changes
        self.eligibility[user_id] = Eligibility([*known, change_of(since, eligible, cause)])

    # --- bindings

    def customer(self, customer_id: str) -> CustomerBindings:
        bindings = [self.bindings[b] for b in self.of_customer[customer_id]]
        return CustomerBindings(customer_id, bindings, self.latest_order_paid_at[customer_id])

    def open_bindings_of_distributor(self, distributor_id: str) -> list[Binding]:
        bindings = (self.bindings[b] for b in self.of_distributor[distributor_id])
        return sorted((b for b in bindings if not b.released), key=_by_bound_at)

    def open_bindings_ended_by(self, now: datetime) -> list[Binding]:
        """Read from the store, any customer's, so the batch's changes are written first."""
        self.write()
        query = (
            sa.select(_BINDINGS)
            .where(_BINDINGS.c.released_at.is_(None), _BINDINGS.c.protected_until <= now)
            .order_by(_BINDINGS.c.protected_until, _BINDINGS.c.binding_id)
        )
        rows = self.uow.session.connection().execute(query)
        return [binding_of(row._asdict()) for row in rows]

    def save_binding(self, binding: Binding, *, created: bool) -> None:
        self._remember(binding)
        self.changed_customers.add(binding.customer_id)
        if created:
            self.board_items[binding.binding_id] = board.item_for(binding)
        self._changed_bindings.put(binding.binding_id, binding_row(binding), created=created)

    def add_extension(
        self, order_id: str, binding_id: str, extended_at: datetime, until: datetime
    ) -> None:
        self.uow.stage(
            RbExtension,
            order_id=order_id,
            binding_id=binding_id,
            extended_at=extended_at,
            protected_until=until,
        )

    def _remember(self, binding: Binding) -> None:
        """Indexed only under the customers and distributors loaded: a partial list would lie."""
        self.bindings[binding.binding_id] = binding
        if binding.customer_id in self.of_customer:
            self.of_customer[binding.customer_id].add(binding.binding_id)
        if binding.distributor_id in self.of_distributor:
            self.of_distributor[binding.distributor_id].add(binding.binding_id)

    # --- visits and orders

    def add_visit(
        self,
        *,
        event_id: str,
        share_id: str,
        sharer_id: str,
        visitor_id: str,
        visited_at: datetime,
        outcome: VisitOutcome,
        binding_id: str | None,
        protected_by: str | None,
    ) -> None:
        visit = {
            "event_id": event_id,
            "share_id": share_id,
            "sharer_id": sharer_id,
            "visitor_id": visitor_id,
            "visited_at": visited_at,
            "outcome": outcome.value,
            "binding_id": binding_id,
            "protected_by": protected_by,
        }
        self._changed_visits.put(event_id, visit, created=True)
        self._remember_visit(visit)

    def reopenable_visits(self, sharer_id: str, since: datetime) -> list[dict[str, Any]]:
        """The sharer's visits refused as not eligible, at or after `since`, in time order
        (only for the sharers loaded to reopen: a partial list would lie)."""
        visits = (self.visits[v] for v in self.reopenable_of.get(sharer_id, ()))
        chosen = (v for v in visits if v["visited_at"] >= since)
        return sorted(chosen, key=lambda v: (v["visited_at"], v["event_id"]))

    def redecide_visit(
        self,
        event_id: str,
        *,
        outcome: VisitOutcome,
        binding_id: str | None,
        protected_by: str | None,
    ) -> None:
        """Record the new outcome of a reopened visit (written once, with the batch)."""
        visit = self.visits[event_id]
        changed = {
            **visit,
            "outcome": outcome.value,
            "binding_id": binding_id,
            "protected_by": protected_by,
        }
        if changed == visit:
            return
        self._changed_visits.put(event_id, changed, created=False)
        self.visits[event_id] = changed
        if outcome not in REOPENABLE:
            del self.visits[event_id]
            self.reopenable_of[changed["sharer_id"]].discard(event_id)

    def _remember_visit(self, visit: dict[str, Any]) -> None:
        sharer_id = visit["sharer_id"]
        if visit["outcome"] in REOPENABLE and sharer_id in self.reopenable_of:
            self.visits[visit["event_id"]] = visit
            self.reopenable_of[sharer_id].add(visit["event_id"])

    def is_paid(self, order_id: str) -> bool:
        return order_id in self.order_distributor

    def attributed_to(self, order_id: str) -> str | None:
        """The distributor a paid order is attributed to (None: unknown or unattributed)."""
        return self.order_distributor.get(order_id)

    def add_order(
        self,
        *,
        order_id: str,
        buyer_id: str,
        paid_at: datetime,
        share_id: str | None,
        distributor_id: str | None,
        basis: Basis | None,
        binding_id: str | None,
        event_id: str | None = None,
        lines: str | None = None,
    ) -> None:
        row = {
            "order_id": order_id,
            "buyer_id": buyer_id,
            "paid_at": paid_at,
            "share_id": share_id,
            "distributor_id": distributor_id,
            "basis": basis.value if basis else None,
            "binding_id": binding_id,
            "event_id": event_id,
            "lines": lines if distributor_id is None else None,
        }
        self._changed_orders.put(order_id, row, created=True)
        self.new_orders[order_id] = row
        self.order_distributor[order_id] = distributor_id
        latest = self.latest_order_paid_at[buyer_id]
        self.latest_order_paid_at[buyer_id] = paid_at if latest is None else max(latest, paid_at)

    def write(self) -> None:
        """Write the shares, bindings and visits created or changed since the last write."""
        connection = self.uow.session.connection()
        self._changed_shares.write(connection)
        self._changed_bindings.write(connection)
        self._changed_visits.write(connection)
        self._changed_orders.write(connection)

    def orders_since(self, buyer_id: str, since: datetime) -> list[dict[str, Any]]:
        """The buyer's orders paid at or after `since` (store and this unit of work)."""
        query = sa.select(_ORDERS).where(_ORDERS.c.buyer_id == buyer_id, _ORDERS.c.paid_at >= since)
        rows = {row.order_id: row._asdict() for row in self.uow.session.connection().execute(query)}
        for order_id, row in self.new_orders.items():
            if row["buyer_id"] == buyer_id and row["paid_at"] >= since:
                rows[order_id] = row
        return sorted(rows.values(), key=lambda r: (r["paid_at"], r["order_id"]))

    def attribute_order(self, row: dict[str, Any]) -> None:
        """Record the attribution a late visit gave an order (`row`: the whole new row)."""
        self._changed_orders.put(row["order_id"], row, created=False)
        if row["order_id"] in self.new_orders:
            self.new_orders[row["order_id"]] = row
        self.order_distributor[row["order_id"]] = row["distributor_id"]


def _by_bound_at(binding: Binding) -> tuple[datetime, str]:
    return binding.bound_at, binding.binding_id
