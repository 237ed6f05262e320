"""Tables of the qualification service (prefix `qf_`) and the queries it needs.

A `Qualification` aggregate is stored as one row per user, one row per qualifying order and
one row per refund of such an order; `qf_history` keeps every event published for the user,
so the whole way to (or out of) distributor status stays queryable. Nothing is deleted.
Store functions never commit: the unit of work owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, func
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, select

from qualification.domain import Qualification, QualifyingOrder, Refund, Status


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite stores no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: every time in this service is timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class QualificationRow(SQLModel, table=True):
    __tablename__ = "qf_qualification"
    __table_args__ = (Index("ix_qf_qualification_due", "status", "deadline"),)
    user_id: str = Field(primary_key=True, max_length=128)
    status: str = Field(max_length=16)
    attempt: int
    wechat_id: str | None = Field(default=None, max_length=128)
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    deadline: datetime | None = Field(default=None, sa_type=UtcDateTime)
    required_orders: int | None = None
    counts_own_orders: bool | None = None
    qualified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoke_reason: str | None = Field(default=None, max_length=1000)


class QualifyingOrderRow(SQLModel, table=True):
    __tablename__ = "qf_order"
    user_id: str = Field(primary_key=True, max_length=128)
    order_id: str = Field(primary_key=True, max_length=128)
    attempt: int
    paid_at: datetime = Field(sa_type=UtcDateTime)
    paid_fen: int
    counted_at: datetime = Field(sa_type=UtcDateTime)
    uncounted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RefundRow(SQLModel, table=True):
    __tablename__ = "qf_refund"
    user_id: str = Field(primary_key=True, max_length=128)
    order_id: str = Field(primary_key=True, max_length=128)
    refund_id: str = Field(primary_key=True, max_length=128)
    amount_fen: int
    refunded_at: datetime = Field(sa_type=UtcDateTime)


class HistoryRow(SQLModel, table=True):
    __tablename__ = "qf_history"
    user_id: str = Field(primary_key=True, max_length=128)
    seq: int = Field(primary_key=True)
    ce_type: str = Field(max_length=128)
    at: datetime = Field(sa_type=UtcDateTime)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))


TABLES: tuple[type[SQLModel], ...] = (QualificationRow, QualifyingOrderRow, RefundRow, HistoryRow)


def load(session: Session, user_id: str, *, for_update: bool = True) -> Qualification | None:
    """The user's qualification; for a change, its row stays locked until the transaction
    ends (where the database supports it), so concurrent commands and batches serialise."""
    query = select(QualificationRow).where(QualificationRow.user_id == user_id)
    row = session.exec(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        return None
    refunds: dict[str, dict[str, Refund]] = {}
    for refund in session.exec(select(RefundRow).where(RefundRow.user_id == user_id)):
        refunds.setdefault(refund.order_id, {})[refund.refund_id] = Refund(
            refund.refund_id, refund.amount_fen, refund.refunded_at
        )
    orders = {
        order.order_id: QualifyingOrder(
            order_id=order.order_id,
            attempt=order.attempt,
            paid_at=order.paid_at,
            paid_fen=order.paid_fen,
            counted_at=order.counted_at,
            refunds=refunds.get(order.order_id, {}),
            uncounted_at=order.uncounted_at,
        )
        for order in session.exec(
            select(QualifyingOrderRow).where(QualifyingOrderRow.user_id == user_id)
        )
    }
    return Qualification(
        user_id=row.user_id,
        status=Status(row.status),
        attempt=row.attempt,
        wechat_id=row.wechat_id,
        applied_at=row.applied_at,
        confirmed_at=row.confirmed_at,
        deadline=row.deadline,
        required_orders=row.required_orders,
        counts_own_orders=row.counts_own_orders,
        qualified_at=row.qualified_at,
        failed_at=row.failed_at,
        revoked_at=row.revoked_at,
        revoke_reason=row.revoke_reason,
        orders=orders,
    )


def save(session: Session, qualification: Qualification) -> None:
    q = qualification
    session.merge(
        QualificationRow(
            user_id=q.user_id,
            status=q.status.value,
            attempt=q.attempt,
            wechat_id=q.wechat_id,
            applied_at=q.applied_at,
            confirmed_at=q.confirmed_at,
            deadline=q.deadline,
            required_orders=q.required_orders,
            counts_own_orders=q.counts_own_orders,
            qualified_at=q.qualified_at,
            failed_at=q.failed_at,
            revoked_at=q.revoked_at,
            revoke_reason=q.revoke_reason,
        )
    )
    for order in q.orders.values():
        session.merge(
            QualifyingOrderRow(
                user_id=q.user_id,
                order_id=order.order_id,
                attempt=order.attempt,
                paid_at=order.paid_at,
                paid_fen=order.paid_fen,
                counted_at=order.counted_at,
                uncounted_at=order.uncounted_at,
            )
        )
        for refund in order.refunds.values():
            session.merge(
                RefundRow(
                    user_id=q.user_id,
                    order_id=order.order_id,
                    refund_id=refund.refund_id,
                    amount_fen=refund.amount_fen,
                    refunded_at=refund.refunded_at,
                )
            )


def assessments_due(session: Session, now: datetime) -> list[str]:
    """Users still assessing whose window closed before `now`, earliest deadline first."""
    query = (
        select(QualificationRow.user_id)
        .where(QualificationRow.status == Status.ASSESSING.value)
        .where(col(QualificationRow.deadline) < now)
        .order_by(col(QualificationRow.deadline), col(QualificationRow.user_id))
    )
    return list(session.exec(query))


def history_length(session: Session, user_id: str) -> int:
    query = select(func.count()).select_from(HistoryRow).where(HistoryRow.user_id == user_id)
    return int(session.exec(query).one())


def append_history(
    session: Session, user_id: str, seq: int, ce_type: str, at: datetime, data: dict[str, Any]
) -> None:
    session.add(HistoryRow(user_id=user_id, seq=seq, ce_type=ce_type, at=at, data=data))


def history(session: Session, user_id: str) -> list[HistoryRow]:
    query = select(HistoryRow).where(HistoryRow.user_id == user_id).order_by(col(HistoryRow.seq))
    return list(session.exec(query))
