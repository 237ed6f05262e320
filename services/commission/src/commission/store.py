"""Commission store (tables prefixed `cm_`) and the queries the service needs.

Nothing here commits: the unit of work (a consumed batch, a tick or an HTTP command) owns
the transaction. Rows are never deleted: orders, commissions, early completions and refunds,
qualification transitions, plan versions and the audit trail are all history.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, Index, func
from sqlmodel import Field, Session, SQLModel, col, select

from commission import domain
from fx_common import db
from fx_common.db import UtcDateTime
from fx_common.processing import UnitOfWork


def _utc(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(
        default=None if nullable else ...,
        sa_column=Column(UtcDateTime(), nullable=nullable, index=index),
    )


class OrderRecord(SQLModel, table=True):
    """An attributed order (from fx.order.attributed)."""

    __tablename__ = "cm_order"
    order_id: str = Field(primary_key=True, max_length=128)
    distributor_id: str = Field(index=True, max_length=128)
    buyer_id: str = Field(max_length=128)
    basis: str = Field(max_length=16)
    paid_at: datetime = _utc()
    event_id: str = Field(max_length=128)


class CommissionRecord(SQLModel, table=True):
    """The current state of one commission (one per attributed order line)."""

    __tablename__ = "cm_commission"
    __table_args__ = (
        Index("ix_cm_commission_due", "status", "settle_at"),
        Index("ix_cm_commission_distributor", "distributor_id", "status", "paid_at"),
    )
    commission_id: str = Field(primary_key=True, max_length=64)
    distributor_id: str = Field(max_length=128)
    order_id: str = Field(index=True, max_length=128)
    line_id: str = Field(max_length=128)
    sku: str = Field(max_length=128)
    category: str | None = Field(default=None, max_length=128)
    quantity: int
    paid_amount_fen: int = Field(sa_type=sa.BigInteger)
    paid_at: datetime = _utc()
    plan_version: int
    rate_basis: str = Field(max_length=16)
    rate_bps: int
    fen_per_unit: int | None = Field(default=None, sa_type=sa.BigInteger)
    accrued_fen: int = Field(sa_type=sa.BigInteger)
    status: str = Field(max_length=16)
    amount_fen: int = Field(sa_type=sa.BigInteger)
    refunded_fen: int = Field(default=0, sa_type=sa.BigInteger)
    settle_at: datetime | None = _utc(nullable=True)
    settled_at: datetime | None = _utc(nullable=True)
    settled_fen: int = Field(default=0, sa_type=sa.BigInteger)
    reversed_fen: int = Field(default=0, sa_type=sa.BigInteger)
    voided_fen: int = Field(default=0, sa_type=sa.BigInteger)
    void_reason: str | None = Field(default=None, max_length=200)


class AuditRecord(SQLModel, table=True):
    """Every change applied to a commission: what caused it, and the amounts around it."""

    __tablename__ = "cm_commission_audit"
    id: int | None = Field(default=None, primary_key=True)
    commission_id: str = Field(index=True, max_length=64)
    cause_id: str = Field(max_length=160)
    """The consumed event's ce_id (or `tick:<now>`) that caused the change."""
    event_id: str | None = Field(default=None, max_length=128)
    """The ce_id of the event published for it (none for `frozen`, which is internal)."""
    kind: str = Field(max_length=16)
    occurred_at: datetime = _utc()
    status_before: str | None = Field(default=None, max_length=16)
    status_after: str = Field(max_length=16)
    amount_before: int = Field(sa_type=sa.BigInteger)
    amount_after: int = Field(sa_type=sa.BigInteger)
    plan_version: int
    reason: str | None = Field(default=None, max_length=200)
    refund_id: str | None = Field(default=None, max_length=128)


class CompletionRecord(SQLModel, table=True):
    """An order completion, kept whether or not its attribution has arrived yet."""

    __tablename__ = "cm_completion"
    order_id: str = Field(primary_key=True, max_length=128)
    distributor_id: str = Field(max_length=128)
    completed_at: datetime = _utc()
    event_id: str = Field(max_length=128)


class RefundLineRecord(SQLModel, table=True):
    """One line of a refund, kept whether or not its attribution has arrived yet."""

    __tablename__ = "cm_refund_line"
    order_id: str = Field(primary_key=True, max_length=128)
    refund_id: str = Field(primary_key=True, max_length=128)
    line_id: str = Field(primary_key=True, max_length=128)
    refund_amount_fen: int = Field(sa_type=sa.BigInteger)
    refunded_at: datetime = _utc()
    event_id: str = Field(max_length=128)


class StatusChangeRecord(SQLModel, table=True):
    """A distributor's qualification transition, in arrival order (`id` is the sequence)."""

    __tablename__ = "cm_status_change"
    id: int | None = Field(default=None, primary_key=True)
    distributor_id: str = Field(index=True, max_length=128)
    status: str = Field(max_length=16)
    occurred_at: datetime = _utc()
    event_id: str = Field(max_length=128)


class PlanVersionRecord(SQLModel, table=True):
    """A version of the rate plan, in force from `effective_from` until the next one."""

    __tablename__ = "cm_plan_version"
    version: int = Field(primary_key=True)
    default_rate_bps: int
    effective_from: datetime = _utc(index=True)
    created_at: datetime | None = _utc(nullable=True)
    created_by: str | None = Field(default=None, max_length=128)
    """The ops user who created it over HTTP."""


class PlanRateRecord(SQLModel, table=True):
    """An override of a plan version: for a `sku` or a `category`."""

    __tablename__ = "cm_plan_rate"
    version: int = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    rate_bps: int | None = None
    fen_per_unit: int | None = None


TABLES: tuple[type[SQLModel], ...] = (
    OrderRecord,
    CommissionRecord,
    AuditRecord,
    CompletionRecord,
    RefundLineRecord,
    StatusChangeRecord,
    PlanVersionRecord,
    PlanRateRecord,
)


# ── rate plan ─────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Plans:
    """Stored plan versions, read for some moments of payment (see `plans_at`)."""

    starts: list[tuple[datetime, int]]
    """(effective_from, version) of every stored version, in that order."""
    versions: Mapping[int, domain.RatePlan]
    """The versions in force at the moments read, with their overrides."""

    def at(self, moment: datetime, default_rate_bps: int) -> domain.RatePlan:
        """The version in force at `moment`; version 0 is the configured default rate alone."""
        version = _version_at(self.starts, moment)
        if version is None:
            return domain.RatePlan(version=0, default_rate_bps=default_rate_bps)
        return self.versions[version]


def plans_at(connection: sa.Connection, moments: Iterable[datetime]) -> Plans:
    """Two queries: the versions, then the overrides of those in force at `moments`."""
    versions = _table(PlanVersionRecord)
    rows = connection.execute(
        sa.select(versions.c.effective_from, versions.c.version, versions.c.default_rate_bps)
    ).all()
    starts = sorted((effective_from, version) for effective_from, version, _ in rows)
    in_force = {_version_at(starts, moment) for moment in moments} - {None}
    defaults = {version: default_rate_bps for _, version, default_rate_bps in rows}
    return Plans(starts, _with_overrides(connection, defaults, in_force))


def _with_overrides(
    connection: sa.Connection, defaults: Mapping[int, int], versions: Iterable[int | None]
) -> dict[int, domain.RatePlan]:
    """The plans of `versions` (their default rates given), with their stored overrides."""
    by_scope: dict[int, dict[str, dict[str, domain.Rate]]] = {
        version: {"sku": {}, "category": {}} for version in versions if version is not None
    }
    rates = _table(PlanRateRecord)
    for chunk in _chunks(by_scope):
        for rate in connection.execute(sa.select(rates).where(rates.c.version.in_(chunk))):
            by_scope[rate.version][rate.scope][rate.key] = domain.Rate(
                rate.rate_bps, rate.fen_per_unit
            )
    return {
        version: domain.RatePlan(
            version=version,
            default_rate_bps=defaults[version],
            by_category=scopes["category"],
            by_sku=scopes["sku"],
        )
        for version, scopes in by_scope.items()
    }


def _version_at(starts: Sequence[tuple[datetime, int]], moment: datetime) -> int | None:
    """The latest start at or before `moment` (the highest version among equal starts)."""
    index = bisect.bisect_right(starts, moment, key=lambda start: start[0])
    return starts[index - 1][1] if index else None


def plan_at(session: Session, at: datetime, default_rate_bps: int) -> domain.RatePlan:
    return plans_at(session.connection(), [at]).at(at, default_rate_bps)


@dataclass(frozen=True)
class StoredPlan:
    """A plan version as stored; version 0 (the configured default rate) has no start."""

    plan: domain.RatePlan
    effective_from: datetime | None = None
    created_at: datetime | None = None
    created_by: str | None = None


def plan_versions(session: Session, default_rate_bps: int) -> list[StoredPlan]:
    """Every version, version 0 first (the plan is small: a few queries, no paging)."""
    connection = session.connection()
    table = _table(PlanVersionRecord)
    versions = connection.execute(sa.select(table).order_by(table.c.version)).all()
    defaults = {row.version: row.default_rate_bps for row in versions}
    plans = _with_overrides(connection, defaults, defaults)
    stored = [StoredPlan(domain.RatePlan(version=0, default_rate_bps=default_rate_bps))]
    stored += [
        StoredPlan(plans[row.version], row.effective_from, row.created_at, row.created_by)
        for row in versions
    ]
    return stored


def latest_paid_at(session: Session) -> datetime | None:
    paid_at: datetime | None = session.exec(select(func.max(OrderRecord.paid_at))).one()
    return paid_at


def add_plan_version(
    session: Session,
    plan: domain.RatePlan,
    effective_from: datetime,
    *,
    created_at: datetime | None = None,
    created_by: str | None = None,
) -> None:
    session.add(
        PlanVersionRecord(
            version=plan.version,
            default_rate_bps=plan.default_rate_bps,
            effective_from=effective_from,
            created_at=created_at,
            created_by=created_by,
        )
    )
    for scope, rates in (("sku", plan.by_sku), ("category", plan.by_category)):
        for key, rate in rates.items():
            session.add(
                PlanRateRecord(
                    version=plan.version,
                    scope=scope,
                    key=key,
                    rate_bps=rate.rate_bps,
                    fen_per_unit=rate.fen_per_unit,
                )
            )


def copy_plan_versions(source: sa.Engine, target: sa.Engine) -> int:
    """Copy the plan versions of a live store into a fresh, migrated one (returns how many).

    Plan versions come from HTTP, not from a topic: a replay into a fresh store needs them
    first, or it would price every order at the configured default rate (version 0).
    """
    tables = [_table(PlanVersionRecord), _table(PlanRateRecord)]
    with source.connect() as reading, target.begin() as writing:
        rows = {
            table: [dict(row._mapping) for row in reading.execute(sa.select(table))]
            for table in tables
        }
        for table in tables:
            if rows[table]:
                writing.execute(sa.insert(table), rows[table])
    return len(rows[tables[0]])


# ── reads of one order ────────────────────────────────────────────────────────────────


def order(session: Session, order_id: str) -> OrderRecord | None:
    return session.get(OrderRecord, order_id)


def completion(session: Session, order_id: str) -> CompletionRecord | None:
    return session.get(CompletionRecord, order_id)


def commissions_of_order(session: Session, order_id: str) -> list[CommissionRecord]:
    query = (
        select(CommissionRecord)
        .where(CommissionRecord.order_id == order_id)
        .order_by(col(CommissionRecord.line_id))
    )
    return list(session.exec(query))


# ── the consume path: what a batch reads and writes, in a few statements ──────────────

_BATCH = "commission"
_COMMISSION_FIELDS = tuple(f.name for f in dataclasses.fields(domain.Commission))
_OPEN_OR_SETTLED: frozenset[domain.Status] = domain.OPEN | {"settled"}


def batch_of(uow: UnitOfWork) -> Batch:
    """The unit of work's `Batch` (empty until `Batch.load`: the sweeper's tick loads nothing)."""
    if _BATCH not in uow.cache:
        uow.cache[_BATCH] = Batch(uow)
    batch: Batch = uow.cache[_BATCH]
    return batch


@dataclass(frozen=True)
class RefundLine:
    refund_id: str
    line_id: str
    refund_amount_fen: int
    refunded_at: datetime


class Batch:
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
        self.refunds: dict[str, list[RefundLine]] = {}
        self.history: dict[str, list[domain.StatusChange]] = {}
        self.plans = Plans([], {})
        self.commissions: dict[str, domain.Commission] = {}
        self._of_order: dict[str, list[domain.Commission]] = {}
        self._of_distributor: dict[str, list[domain.Commission]] = {}
        self._changed = _Changes(CommissionRecord)
        uow.before_flush(self.write)

    def load(
        self,
        *,
        orders: set[str],
        distributors: set[str],
        reassessed: set[str],
        paid_at: Sequence[datetime],
    ) -> None:
        """What arrived for `orders` and their commissions; the qualification history of
        `distributors`; the open and settled commissions of `reassessed` distributors; the
        plan versions in force at `paid_at`."""
        execute = self.uow.session.connection().execute
        order, completion, refund, change, commission = (
            _table(m)
            for m in (
                OrderRecord, CompletionRecord, RefundLineRecord, StatusChangeRecord,
                CommissionRecord,
            )
        )  # fmt: skip
        self.refunds.update({order_id: [] for order_id in orders})
        self.history.update({distributor: [] for distributor in distributors})
        self._of_order.update({order_id: [] for order_id in orders})
        self._of_distributor.update({distributor: [] for distributor in reassessed})
        for chunk in _chunks(orders):
            query = sa.select(order.c.order_id).where(order.c.order_id.in_(chunk))
            self.attributed.update(execute(query).scalars())
            query = sa.select(completion.c.order_id, completion.c.completed_at)
            rows = execute(query.where(completion.c.order_id.in_(chunk)))
            self.completed_at.update({order_id: at for order_id, at in rows})
            query = sa.select(
                refund.c.order_id, refund.c.refund_id, refund.c.line_id,
                refund.c.refund_amount_fen, refund.c.refunded_at,
            ).where(refund.c.order_id.in_(chunk))  # fmt: skip
            for order_id, *line in execute(query):
                self.refunds[order_id].append(RefundLine(*line))
            self._keep(execute(sa.select(commission).where(commission.c.order_id.in_(chunk))))
        for chunk in _chunks(distributors):
            query = (
                sa.select(
                    change.c.distributor_id, change.c.status, change.c.occurred_at, change.c.id
                )
                .where(change.c.distributor_id.in_(chunk))
                .order_by(change.c.id)
            )
            for distributor, status, at, seq in execute(query):
                self.history[distributor].append(domain.StatusChange(status, at, seq))
        for chunk in _chunks(reassessed):
            query = sa.select(commission).where(
                commission.c.distributor_id.in_(chunk),
                commission.c.status.in_(sorted(_OPEN_OR_SETTLED)),
            )
            self._keep(execute(query))
        if paid_at:
            self.plans = plans_at(self.uow.session.connection(), paid_at)

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

    def refund_lines(self, order_id: str) -> list[RefundLine]:
        return sorted(self.refunds[order_id], key=lambda line: (line.refunded_at, line.refund_id))

    def add_refund_line(self, order_id: str, line: RefundLine, event_id: str) -> None:
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
        return sorted(self._of_order[order_id], key=lambda c: c.line_id)

    def open_or_settled_of(self, distributor_id: str) -> list[domain.Commission]:
        """Oldest payment first."""
        return sorted(
            (c for c in self._of_distributor[distributor_id] if c.status in _OPEN_OR_SETTLED),
            key=lambda c: (c.paid_at, c.order_id, c.line_id),
        )

    def due_for_settlement(self, now: datetime) -> list[domain.Commission]:
        """Read from the store, any distributor's, so the batch's changes are written first."""
        self.write()
        commission = _table(CommissionRecord)
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
        self._changed.put(commission)

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

    def write(self) -> None:
        """Write the commissions created or changed since the last write."""
        self._changed.write(self.uow.session.connection())

    def _keep(self, rows: sa.Result[Any]) -> list[domain.Commission]:
        """The rows as the batch's commissions: one object per commission, the batch's
        version when it already holds one."""
        kept = []
        columns = list(rows.keys())
        for values in rows:
            row = dict(zip(columns, values, strict=True))
            commission = self.commissions.get(row["commission_id"])
            if commission is None:
                commission = domain.Commission(**row)
                self._index(commission)
                self._changed.stored[commission.commission_id] = row
            kept.append(commission)
        return kept

    def _index(self, commission: domain.Commission) -> None:
        """Only the orders and distributors loaded are indexed: a partial list would lie."""
        self.commissions[commission.commission_id] = commission
        if commission.order_id in self._of_order:
            self._of_order[commission.order_id].append(commission)
        if commission.distributor_id in self._of_distributor:
            self._of_distributor[commission.distributor_id].append(commission)


class _Changes:
    """Commissions created or changed by a batch: one INSERT executemany, and one UPDATE
    executemany per set of columns changed since the row was read or written."""

    def __init__(self, model: type[SQLModel]) -> None:
        self.table = _table(model)
        [self.key] = self.table.primary_key.columns
        self.stored: dict[str, dict[str, Any]] = {}
        """The rows as the store has them, by key."""
        self.pending: dict[str, domain.Commission] = {}

    def put(self, commission: domain.Commission) -> None:
        self.pending[commission.commission_id] = commission

    def write(self, connection: sa.Connection) -> None:
        created: list[dict[str, Any]] = []
        changed: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for key, commission in self.pending.items():
            row = _row(commission)
            before = self.stored.get(key)
            if before is None:
                created.append(row)
            else:
                columns = tuple(name for name, value in row.items() if before[name] != value)
                if columns:
                    changed.setdefault(columns, []).append(
                        {**{name: row[name] for name in columns}, "key_": key}
                    )
            self.stored[key] = row
        if created:
            connection.execute(sa.insert(self.table), created)
        by_key = sa.update(self.table).where(self.key == sa.bindparam("key_"))
        for rows in changed.values():
            connection.execute(by_key, rows)
        self.pending = {}


def _row(commission: domain.Commission) -> dict[str, Any]:
    return {name: getattr(commission, name) for name in _COMMISSION_FIELDS}


def _table(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def _chunks(keys: Iterable[Any]) -> Iterator[list[Any]]:
    """`IN (...)` lists of at most 500 (SQLite limits the bound parameters)."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), 500):
        yield ordered[start : start + 500]


# ── reads for the API ─────────────────────────────────────────────────────────────────


def page_of_commissions(
    session: Session,
    distributor_id: str,
    status: domain.Status | None,
    page: int,
    page_size: int,
) -> tuple[list[CommissionRecord], int]:
    """Newest orders first."""
    where = [CommissionRecord.distributor_id == distributor_id]
    if status is not None:
        where.append(CommissionRecord.status == status)
    total = session.exec(select(func.count()).select_from(CommissionRecord).where(*where)).one()
    query = (
        select(CommissionRecord)
        .where(*where)
        .order_by(
            col(CommissionRecord.paid_at).desc(),
            col(CommissionRecord.order_id),
            col(CommissionRecord.line_id),
        )
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return list(session.exec(query)), int(total)


def audit_of(session: Session, commission_ids: Sequence[str]) -> list[AuditRecord]:
    query = (
        select(AuditRecord)
        .where(col(AuditRecord.commission_id).in_(list(commission_ids)))
        .order_by(col(AuditRecord.id))
    )
    return list(session.exec(query))


def totals_by_status(
    session: Session, distributor_id: str, paid_from: datetime | None = None
) -> dict[str, int]:
    """Fen by state for orders paid since `paid_from` (all time if None).

    held / pending / frozen: what is currently worth; settled: settled net of clawbacks;
    reversed: clawed back; voided: what was cancelled.
    """
    query = select(
        CommissionRecord.status,
        func.sum(CommissionRecord.amount_fen),
        func.sum(CommissionRecord.reversed_fen),
        func.sum(CommissionRecord.voided_fen),
    ).where(CommissionRecord.distributor_id == distributor_id)
    if paid_from is not None:
        query = query.where(col(CommissionRecord.paid_at) >= paid_from)
    totals: dict[str, int] = dict.fromkeys(domain.STATUSES, 0)
    for status, amount, reversed_fen, voided in session.exec(
        query.group_by(CommissionRecord.status)
    ):
        bucket = "settled" if status == "reversed" else status
        totals[bucket] += int(amount or 0)
        totals["reversed"] += int(reversed_fen or 0)
        totals["voided"] += int(voided or 0)
    return totals


@dataclass(frozen=True)
class Fact:
    """A consumed event that bears on one commission (`kind`: attributed, completed,
    refunded, qualification)."""

    kind: str
    event_id: str
    occurred_at: datetime
    status: str | None = None
    refund_id: str | None = None
    refund_amount_fen: int | None = None


def facts_of(session: Session, commission: CommissionRecord) -> list[Fact]:
    """The attribution, completion and refunds of its line, and the distributor's
    qualification history (what `domain.assess` read), oldest first."""
    facts: list[Fact] = []
    order = session.get(OrderRecord, commission.order_id)
    if order is not None:
        facts.append(Fact("attributed", order.event_id, order.paid_at))
    completed = session.get(CompletionRecord, commission.order_id)
    if completed is not None:
        facts.append(Fact("completed", completed.event_id, completed.completed_at))
    refunds = select(RefundLineRecord).where(
        RefundLineRecord.order_id == commission.order_id,
        RefundLineRecord.line_id == commission.line_id,
    )
    facts += [
        Fact("refunded", r.event_id, r.refunded_at, refund_id=r.refund_id,
             refund_amount_fen=r.refund_amount_fen)
        for r in session.exec(refunds)
    ]  # fmt: skip
    changes = select(StatusChangeRecord).where(
        StatusChangeRecord.distributor_id == commission.distributor_id
    )
    facts += [
        Fact("qualification", c.event_id, c.occurred_at, status=c.status)
        for c in session.exec(changes.order_by(col(StatusChangeRecord.id)))
    ]
    return sorted(facts, key=lambda fact: fact.occurred_at)


def inbox_positions(session: Session, event_ids: Iterable[str]) -> dict[str, db.InboxRecord]:
    """Where each consumed event was read (topic, partition, offset), by ce_id."""
    positions: dict[str, db.InboxRecord] = {}
    for chunk in _chunks(set(event_ids)):
        query = select(db.InboxRecord).where(col(db.InboxRecord.ce_id).in_(chunk))
        positions.update({row.ce_id: row for row in session.exec(query)})
    return positions
