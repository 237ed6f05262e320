"""Commission store (tables prefixed `cm_`) and the queries the service needs.

Nothing here commits: the unit of work (a consumed batch, a tick or an HTTP command) owns
the transaction. Rows are never deleted: orders, commissions, early completions and refunds,
qualification transitions, plan versions and the audit trail are all history.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Dialect, Index, TypeDecorator, func
from sqlmodel import Field, Session, SQLModel, col, select

from commission import domain


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite keeps naive UTC, Postgres a timestamptz."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


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
    paid_amount_fen: int
    paid_at: datetime = _utc()
    plan_version: int
    rate_basis: str = Field(max_length=16)
    rate_bps: int
    fen_per_unit: int | None = None
    accrued_fen: int
    status: str = Field(max_length=16)
    amount_fen: int
    refunded_fen: int = 0
    settle_at: datetime | None = _utc(nullable=True)
    settled_at: datetime | None = _utc(nullable=True)
    settled_fen: int = 0
    reversed_fen: int = 0
    voided_fen: int = 0
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
    amount_before: int
    amount_after: int
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
    refund_amount_fen: int
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


def plan_at(session: Session, at: datetime, default_rate_bps: int) -> domain.RatePlan:
    """The plan version in force at `at`; version 0 is the configured default rate alone."""
    query = (
        select(PlanVersionRecord)
        .where(col(PlanVersionRecord.effective_from) <= at)
        .order_by(
            col(PlanVersionRecord.effective_from).desc(), col(PlanVersionRecord.version).desc()
        )
        .limit(1)
    )
    version = session.exec(query).first()
    if version is None:
        return domain.RatePlan(version=0, default_rate_bps=default_rate_bps)
    rates = session.exec(select(PlanRateRecord).where(PlanRateRecord.version == version.version))
    by_scope: dict[str, dict[str, domain.Rate]] = {"sku": {}, "category": {}}
    for rate in rates:
        by_scope[rate.scope][rate.key] = domain.Rate(rate.rate_bps, rate.fen_per_unit)
    return domain.RatePlan(
        version=version.version,
        default_rate_bps=version.default_rate_bps,
        by_category=by_scope["category"],
        by_sku=by_scope["sku"],
    )


def add_plan_version(session: Session, plan: domain.RatePlan, effective_from: datetime) -> None:
    session.add(
        PlanVersionRecord(
            version=plan.version,
            default_rate_bps=plan.default_rate_bps,
            effective_from=effective_from,
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


# ── orders and what arrived for them ──────────────────────────────────────────────────


def order(session: Session, order_id: str) -> OrderRecord | None:
    return session.get(OrderRecord, order_id)


def completion(session: Session, order_id: str) -> CompletionRecord | None:
    return session.get(CompletionRecord, order_id)


def refund_known(session: Session, order_id: str, refund_id: str) -> bool:
    query = select(RefundLineRecord.line_id).where(
        RefundLineRecord.order_id == order_id, RefundLineRecord.refund_id == refund_id
    )
    return session.exec(query.limit(1)).first() is not None


def refund_lines(session: Session, order_id: str) -> list[RefundLineRecord]:
    query = (
        select(RefundLineRecord)
        .where(RefundLineRecord.order_id == order_id)
        .order_by(col(RefundLineRecord.refunded_at), col(RefundLineRecord.refund_id))
    )
    return list(session.exec(query))


# ── qualification history ─────────────────────────────────────────────────────────────


def add_status_change(
    session: Session, distributor_id: str, status: domain.QualificationStatus, at: datetime,
    event_id: str,
) -> None:  # fmt: skip
    session.add(
        StatusChangeRecord(
            distributor_id=distributor_id, status=status, occurred_at=at, event_id=event_id
        )
    )


def status_history(session: Session, distributor_id: str) -> list[domain.StatusChange]:
    query = (
        select(StatusChangeRecord)
        .where(StatusChangeRecord.distributor_id == distributor_id)
        .order_by(col(StatusChangeRecord.id))
    )
    return [
        domain.StatusChange(row.status, row.occurred_at, row.id or 0)  # type: ignore[arg-type]
        for row in session.exec(query)
    ]


# ── commissions ───────────────────────────────────────────────────────────────────────


def to_domain(row: CommissionRecord) -> domain.Commission:
    values = {f.name: getattr(row, f.name) for f in dataclasses.fields(domain.Commission)}
    return domain.Commission(**values)


def save(session: Session, commission: domain.Commission, row: CommissionRecord | None) -> None:
    values = dataclasses.asdict(commission)
    if row is None:
        session.add(CommissionRecord(**values))
        return
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)


def commissions_of_order(session: Session, order_id: str) -> list[CommissionRecord]:
    query = (
        select(CommissionRecord)
        .where(CommissionRecord.order_id == order_id)
        .order_by(col(CommissionRecord.line_id))
    )
    return list(session.exec(query))


def commissions_of_distributor(
    session: Session, distributor_id: str, statuses: Iterable[domain.Status]
) -> list[CommissionRecord]:
    query = (
        select(CommissionRecord)
        .where(CommissionRecord.distributor_id == distributor_id)
        .where(col(CommissionRecord.status).in_(list(statuses)))
        .order_by(
            col(CommissionRecord.paid_at),
            col(CommissionRecord.order_id),
            col(CommissionRecord.line_id),
        )
    )
    return list(session.exec(query))


def due_for_settlement(session: Session, now: datetime) -> list[CommissionRecord]:
    query = (
        select(CommissionRecord)
        .where(CommissionRecord.status == "frozen")
        .where(col(CommissionRecord.settle_at) <= now)
        .order_by(
            col(CommissionRecord.settle_at),
            col(CommissionRecord.order_id),
            col(CommissionRecord.line_id),
        )
    )
    return list(session.exec(query))


def add_audit(
    session: Session,
    commission: domain.Commission,
    change: domain.Change,
    *,
    cause_id: str,
    event_id: str | None,
) -> None:
    session.add(
        AuditRecord(
            commission_id=commission.commission_id,
            cause_id=cause_id,
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
    )


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
