"""Reads of the store for the API and operators (the consume path reads through
`commission.store.repository`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from commission import domain
from commission.store.tables import (
    AuditRecord,
    CommissionRecord,
    CompletionRecord,
    OrderRecord,
    RefundLineRecord,
    StatusChangeRecord,
)
from fx_common import db
from fx_common.repository import chunks


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


def latest_paid_at(session: Session) -> datetime | None:
    paid_at: datetime | None = session.exec(select(func.max(OrderRecord.paid_at))).one()
    return paid_at


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
    for chunk in chunks(set(event_ids)):
        query = select(db.InboxRecord).where(col(db.InboxRecord.ce_id).in_(chunk))
        positions.update({row.ce_id: row for row in session.exec(query)})
    return positions
