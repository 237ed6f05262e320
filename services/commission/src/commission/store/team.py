"""The team page's reads (docs/domain.md §5): a recruiter's recruits, each with their
qualification status as commission knows it, their attributed orders and the tier-2
commission they brought the recruiter, by state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import func
from sqlmodel import Session, col, select

from commission import domain
from commission.store.tables import (
    CommissionRecord,
    OrderRecord,
    RecruiterRecord,
    StatusChangeRecord,
)
from fx_common.repository import table_of


@dataclass
class Recruit:
    recruit: RecruiterRecord
    status: str | None = None
    orders: int = 0
    tier2: dict[str, int] = field(default_factory=lambda: dict.fromkeys(domain.STATUSES, 0))


def page_of_recruits(
    session: Session, recruiter_id: str, page: int, page_size: int
) -> tuple[list[Recruit], int]:
    """The recruiter's recruits, latest application first, with their figures."""
    where = RecruiterRecord.recruiter_id == recruiter_id
    total = session.exec(select(func.count()).select_from(RecruiterRecord).where(where)).one()
    query = (
        select(RecruiterRecord)
        .where(where)
        .order_by(col(RecruiterRecord.applied_at).desc(), col(RecruiterRecord.distributor_id))
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    recruits = {row.distributor_id: Recruit(row) for row in session.exec(query)}
    _figures(session, recruiter_id, recruits)
    return list(recruits.values()), int(total)


def _figures(session: Session, recruiter_id: str, recruits: dict[str, Recruit]) -> None:
    ids: Sequence[str] = list(recruits)
    if not ids:
        return
    changes = (
        select(StatusChangeRecord.distributor_id, StatusChangeRecord.status)
        .where(col(StatusChangeRecord.distributor_id).in_(ids))
        .order_by(col(StatusChangeRecord.occurred_at), col(StatusChangeRecord.id))
    )
    for recruit, status in session.exec(changes):
        recruits[recruit].status = status  # the latest wins
    orders = (
        select(OrderRecord.distributor_id, func.count())
        .where(col(OrderRecord.distributor_id).in_(ids))
        .group_by(col(OrderRecord.distributor_id))
    )
    for recruit, count in session.exec(orders):
        recruits[recruit].orders = int(count)
    commission = table_of(CommissionRecord)
    tier2 = (
        sa.select(
            commission.c.source_distributor_id,
            commission.c.status,
            func.sum(commission.c.amount_fen),
            func.sum(commission.c.reversed_fen),
            func.sum(commission.c.voided_fen),
        )
        .where(
            commission.c.distributor_id == recruiter_id,
            commission.c.tier == 2,
            commission.c.source_distributor_id.in_(ids),
        )
        .group_by(commission.c.source_distributor_id, commission.c.status)
    )
    for recruit, status, amount, reversed_fen, voided in session.connection().execute(tier2):
        if recruit is None:
            continue
        totals = recruits[recruit].tier2
        totals["settled" if status == "reversed" else status] += int(amount or 0)
        totals["reversed"] += int(reversed_fen or 0)
        totals["voided"] += int(voided or 0)
