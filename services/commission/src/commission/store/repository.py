"""The consume path's view of the store: what a batch reads and writes, in a few statements."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commission import board, domain
from commission.store.plans import Plans, plans_at
from commission.store.tables import (
    AuditRecord,
    CommissionRecord,
    CompletionRecord,
    OrderRecord,
    RecruiterRecord,
    RefundLineRecord,
    StatusChangeRecord,
)
from fx_common.leaderboard import Item
from fx_common.processing import Keys, UnitOfWork
from fx_common.repository import ChangedRows, rows_in, table_of

_COMMISSION_FIELDS = tuple(f.name for f in dataclasses.fields(domain.Commission))
_OPEN_OR_SETTLED: frozenset[domain.Status] = domain.OPEN | {"settled"}


class Repository:
    """One unit of work's view of the store on the consume path.

    `load` reads, in a few set-based queries, every row the batch's handlers will look up;
    the handlers then read and change this state, so each event sees the effects of the
    earlier ones without SQL. History (orders, completions, refund lines, qualification
    transitions, the audit trail) is staged on the unit of work; commissions, which change,
    are written once when the unit of work ends (`UnitOfWork.before_flush`), and before a
    tick reads the store.
    """

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.attributed: set[str] = set()
        self.completed_at: dict[str, datetime] = {}
        self.refunds: dict[str, list[domain.RefundLine]] = {}
        self.history: dict[str, list[domain.StatusChange]] = {}
        self.recruiter_of: dict[str, str] = {}
        """The recorded recruiter of each of the `recruits` (and recruits of `recruiting`)
        loaded that has one."""
        self.recruits_of: dict[str, list[str]] = {}
        """The recruits of each of the `recruiting` loaded."""
        self.plans = Plans([], {})
        self.commissions: dict[str, domain.Commission] = {}
        self._of_order: dict[str, list[domain.Commission]] = {}
        self._of_distributor: dict[str, list[domain.Commission]] = {}
        self._of_source: dict[str, list[domain.Commission]] = {}
        self._changed = ChangedRows(CommissionRecord)
        self.board_items: list[Item] = []
        """What this unit of work adds to the `earned` leaderboard (`commission.board`)."""
        uow.before_flush(self.write)

    def load(self, keys: Keys) -> None:
        """What arrived for `keys["orders"]` and for every order of `keys["orders_of"]`
        distributors, and their commissions (both tiers); the recorded recruiter of
        `keys["recruits"]` and the recruits of `keys["recruiting"]` (their orders too); the
        open and settled commissions of `keys["reassessed"]` distributors, as earner or as
        source; the qualification history of `keys["distributors"]` and of everyone those
        commissions and recruiters name; the plan versions in force at `keys["paid_at"]` and
        at the payment of the whole-order lists loaded."""
        connection = self.uow.session.connection()
        self._load_recruiters(
            connection, keys.get("recruits", set()), keys.get("recruiting", set())
        )
        whole = keys.get("orders_of", set()) | {
            recruit
            for recruiter in keys.get("recruiting", ())
            for recruit in self.recruits_of[recruiter]
        }
        order = table_of(OrderRecord)
        of_whole = sa.select(order.c.order_id)
        orders = keys.get("orders", set()) | {
            row[0] for row in rows_in(connection, of_whole, order.c.distributor_id, whole)
        }
        reassessed, paid_at = keys.get("reassessed", set()), set(keys.get("paid_at", ()))
        self.refunds.update({order_id: [] for order_id in orders})
        self._of_order.update({order_id: [] for order_id in orders})
        self._of_distributor.update({distributor: [] for distributor in reassessed})
        self._of_source.update({distributor: [] for distributor in reassessed})
        self._load_orders(connection, orders)
        commission = table_of(CommissionRecord)
        held = sa.select(commission).where(commission.c.status.in_(sorted(_OPEN_OR_SETTLED)))
        self._keep(rows_in(connection, held, commission.c.distributor_id, reassessed))
        self._keep(rows_in(connection, held, commission.c.source_distributor_id, reassessed))
        people = keys.get("distributors", set()) | set(self.recruiter_of.values()) | whole
        for c in self.commissions.values():
            people |= {c.distributor_id, c.source_distributor_id} - {None}
        self._load_history(connection, people)
        paid_at |= {c.paid_at for c in self.commissions.values() if c.distributor_id in whole}
        if paid_at:
            self.plans = plans_at(connection, sorted(paid_at))

    def _load_recruiters(
        self, connection: sa.Connection, recruits: set[str], recruiting: set[str]
    ) -> None:
        recruiter = table_of(RecruiterRecord)
        recorded = sa.select(recruiter.c.distributor_id, recruiter.c.recruiter_id)
        for recruit, recruiter_id in rows_in(
            connection, recorded, recruiter.c.distributor_id, recruits
        ):
            self.recruiter_of[recruit] = recruiter_id
        self.recruits_of.update({recruiter_id: [] for recruiter_id in recruiting})
        for recruit, recruiter_id in rows_in(
            connection, recorded, recruiter.c.recruiter_id, recruiting
        ):
            self.recruiter_of[recruit] = recruiter_id
            self.recruits_of[recruiter_id].append(recruit)

    def _load_history(self, connection: sa.Connection, distributors: set[str]) -> None:
        self.history.update({distributor: [] for distributor in distributors})
        change = table_of(StatusChangeRecord)
        history = sa.select(
            change.c.distributor_id, change.c.status, change.c.occurred_at, change.c.id
        ).order_by(change.c.id)
        for distributor, status, at, seq in rows_in(
            connection, history, change.c.distributor_id, distributors
        ):
            self.history[distributor].append(domain.StatusChange(status, at, seq))

    def _load_orders(self, connection: sa.Connection, orders: set[str]) -> None:
        order, completion, refund, commission = (
            table_of(m) for m in (OrderRecord, CompletionRecord, RefundLineRecord, CommissionRecord)
        )
        attributed = sa.select(order.c.order_id)
        self.attributed.update(
            row[0] for row in rows_in(connection, attributed, order.c.order_id, orders)
        )
        completed = sa.select(completion.c.order_id, completion.c.completed_at)
        for order_id, at in rows_in(connection, completed, completion.c.order_id, orders):
            self.completed_at[order_id] = at
        refunds = sa.select(
            refund.c.order_id, refund.c.refund_id, refund.c.line_id,
            refund.c.refund_amount_fen, refund.c.refunded_at,
        )  # fmt: skip
        for order_id, refund_id, line_id, amount, at in rows_in(
            connection, refunds, refund.c.order_id, orders
        ):
            self.refunds[order_id].append(domain.RefundLine(refund_id, line_id, amount, at))
        self._keep(rows_in(connection, sa.select(commission), commission.c.order_id, orders))

    # --- what arrived for an order

    def add_order(
        self, order_id: str, distributor_id: str, buyer_id: str, basis: str, paid_at: datetime,
        event_id: str,
    ) -> None:  # fmt: skip
        self.uow.stage(
            OrderRecord,
            order_id=order_id,
            distributor_id=distributor_id,
            buyer_id=buyer_id,
            basis=basis,
            paid_at=paid_at,
            event_id=event_id,
        )
        self.attributed.add(order_id)

    def add_completion(
        self, order_id: str, distributor_id: str, completed_at: datetime, event_id: str
    ) -> None:
        self.uow.stage(
            CompletionRecord,
            order_id=order_id,
            distributor_id=distributor_id,
            completed_at=completed_at,
            event_id=event_id,
        )
        self.completed_at[order_id] = completed_at

    def refund_known(self, order_id: str, refund_id: str) -> bool:
        return any(line.refund_id == refund_id for line in self.refunds[order_id])

    def refund_lines(self, order_id: str) -> list[domain.RefundLine]:
        return sorted(self.refunds[order_id], key=lambda line: (line.refunded_at, line.refund_id))

    def add_refund_line(self, order_id: str, line: domain.RefundLine, event_id: str) -> None:
        self.uow.stage(
            RefundLineRecord,
            order_id=order_id,
            refund_id=line.refund_id,
            line_id=line.line_id,
            refund_amount_fen=line.refund_amount_fen,
            refunded_at=line.refunded_at,
            event_id=event_id,
        )
        self.refunds[order_id].append(line)

    def add_recruiter(
        self, distributor_id: str, recruiter_id: str, binding_id: str, applied_at: datetime,
        event_id: str,
    ) -> None:  # fmt: skip
        self.uow.stage(
            RecruiterRecord, distributor_id=distributor_id, recruiter_id=recruiter_id,
            binding_id=binding_id, applied_at=applied_at, event_id=event_id,
        )  # fmt: skip
        self.recruiter_of[distributor_id] = recruiter_id
        if recruiter_id in self.recruits_of:
            self.recruits_of[recruiter_id].append(distributor_id)

    # --- qualification history

    def add_status_change(
        self, distributor_id: str, status: domain.QualificationStatus, at: datetime,
        event_id: str,
    ) -> None:  # fmt: skip
        self.uow.stage(
            StatusChangeRecord,
            distributor_id=distributor_id,
            status=status,
            occurred_at=at,
            event_id=event_id,
        )
        # The store numbers it after every earlier row: only the order within one
        # distributor matters.
        history = self.history[distributor_id]
        history.append(domain.StatusChange(status, at, history[-1].seq + 1 if history else 1))

    # --- commissions

    def commissions_of_order(self, order_id: str) -> list[domain.Commission]:
        return sorted(self._of_order[order_id], key=lambda c: (c.line_id, c.tier))

    def open_or_settled_of(self, distributor_id: str) -> list[domain.Commission]:
        """The open and settled commissions the distributor earns or (tier 2) is the source
        of, oldest payment first."""
        related = {c.commission_id: c for c in self._of_distributor[distributor_id]}
        related |= {c.commission_id: c for c in self._of_source[distributor_id]}
        return sorted(
            (c for c in related.values() if c.status in _OPEN_OR_SETTLED),
            key=lambda c: (c.paid_at, c.order_id, c.line_id, c.tier),
        )

    def tier1_lines_of(self, distributor_id: str) -> list[domain.Commission]:
        """The distributor's own (tier-1) lines, oldest payment first: complete only for the
        `orders_of` and recruits of `recruiting` loaded."""
        return sorted(
            (c for c in self.commissions.values()
             if c.tier == 1 and c.distributor_id == distributor_id),
            key=lambda c: (c.paid_at, c.order_id, c.line_id),
        )  # fmt: skip

    def due_for_settlement(self, now: datetime) -> list[domain.Commission]:
        """Read from the store, any distributor's, so the batch's changes are written first."""
        self.write()
        commission = table_of(CommissionRecord)
        query = (
            sa.select(commission)
            .where(commission.c.status == "frozen", commission.c.settle_at <= now)
            .order_by(commission.c.settle_at, commission.c.order_id, commission.c.line_id)
        )
        return self._keep(self.uow.session.connection().execute(query))

    def save(self, commission: domain.Commission) -> None:
        """A new commission, or a change to one this batch holds."""
        if commission.commission_id not in self.commissions:
            self._index(commission)
        self._changed.put(commission.commission_id, _row(commission))

    def add_audit(
        self, commission: domain.Commission, change: domain.Change, event_id: str | None
    ) -> None:
        self.uow.stage(
            AuditRecord,
            commission_id=commission.commission_id,
            cause_id=self.uow.cause_id,
            event_id=event_id,
            kind=change.kind,
            occurred_at=change.at,
            status_before=change.status_before,
            status_after=change.status_after,
            amount_before=change.amount_before,
            amount_after=change.amount_after,
            plan_version=commission.plan_version,
            reason=change.reason,
            refund_id=change.refund_id,
        )
        if event_id is not None and (item := board.item_for(commission, change, event_id)):
            self.board_items.append(item)

    def write(self) -> None:
        """Write the commissions created or changed since the last write."""
        self._changed.write(self.uow.session.connection())

    def _keep(self, rows: Iterable[sa.Row[Any]]) -> list[domain.Commission]:
        """The rows as the batch's commissions: one object per commission, the batch's
        version when it already holds one."""
        kept = []
        for values in rows:
            row = values._asdict()
            commission = self.commissions.get(row["commission_id"])
            if commission is None:
                commission = domain.Commission(**row)
                self._index(commission)
                self._changed.stored(commission.commission_id, row)
            kept.append(commission)
        return kept

    def _index(self, commission: domain.Commission) -> None:
        """Only the orders and distributors loaded are indexed: a partial list would lie."""
        self.commissions[commission.commission_id] = commission
        if commission.order_id in self._of_order:
            self._of_order[commission.order_id].append(commission)
        if commission.distributor_id in self._of_distributor:
            self._of_distributor[commission.distributor_id].append(commission)
        source = commission.source_distributor_id
        if source is not None and source in self._of_source:
            self._of_source[source].append(commission)


def _row(commission: domain.Commission) -> dict[str, Any]:
    return {name: getattr(commission, name) for name in _COMMISSION_FIELDS}
