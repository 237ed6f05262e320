"""Reads of the store for the HTTP API (the consume path reads through
`referral_binding.store.repository`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_
from sqlmodel import Session, col, select

from fx_common.contracts.qualification import DISTRIBUTOR_QUALIFIED
from referral_binding.domain import Eligibility, EligibilityChange, VisitOutcome
from referral_binding.store.tables import RbBinding, RbEligibility, RbVisit


def eligibility(session: Session, user_id: str) -> Eligibility:
    rows = session.exec(select(RbEligibility).where(RbEligibility.user_id == user_id))
    return Eligibility(change_of(r.since, r.eligible, r.cause) for r in rows)


def change_of(since: datetime, eligible: bool, cause: str) -> EligibilityChange:
    return EligibilityChange(since, eligible, qualified=cause == DISTRIBUTOR_QUALIFIED)


def protected_binding(session: Session, customer_id: str, at: datetime) -> RbBinding | None:
    query = select(RbBinding).where(RbBinding.customer_id == customer_id, _protected_at(at))
    return session.exec(query).first()


def next_binding_start(session: Session, customer_id: str, after: datetime) -> datetime | None:
    """When the customer's first binding starting after `after` begins (event times may run
    ahead of a simulated clock)."""
    query = select(func.min(RbBinding.bound_at)).where(
        RbBinding.customer_id == customer_id, col(RbBinding.bound_at) > after
    )
    start: datetime | None = session.exec(query).one()
    return start


def customer_history(session: Session, customer_id: str) -> list[RbBinding]:
    query = (
        select(RbBinding)
        .where(RbBinding.customer_id == customer_id)
        .order_by(col(RbBinding.bound_at), col(RbBinding.binding_id))
    )
    return list(session.exec(query))


def _protected_at(at: datetime) -> ColumnElement[bool]:
    """SQL for `Binding.protected_at`: bound_at <= at < min(protected_until, released_at)."""
    return and_(
        col(RbBinding.bound_at) <= at,
        col(RbBinding.protected_until) > at,
        or_(col(RbBinding.released_at).is_(None), col(RbBinding.released_at) > at),
    )


def protected_customers(
    session: Session, distributor_id: str, at: datetime, limit: int, offset: int
) -> tuple[int, list[RbBinding]]:
    where = and_(col(RbBinding.distributor_id) == distributor_id, _protected_at(at))
    total = session.exec(select(func.count()).select_from(RbBinding).where(where)).one()
    query = (
        select(RbBinding)
        .where(where)
        .order_by(col(RbBinding.protected_until), col(RbBinding.customer_id))
        .limit(limit)
        .offset(offset)
    )
    return int(total), list(session.exec(query))


def visit_stats(session: Session, sharer_id: str) -> tuple[int, int, int]:
    """(visits, unique visitors, contested visits) of the sharer's shares, self-visits aside."""
    others = (RbVisit.sharer_id == sharer_id) & (RbVisit.outcome != VisitOutcome.SELF_VISIT.value)
    visits, visitors = session.exec(
        select(func.count(), func.count(func.distinct(RbVisit.visitor_id))).where(others)
    ).one()
    contested = session.exec(
        select(func.count()).where(
            RbVisit.sharer_id == sharer_id, RbVisit.outcome == VisitOutcome.CONTESTED.value
        )
    ).one()
    return int(visits), int(visitors), int(contested)


def bound_customer_count(session: Session, distributor_id: str, at: datetime) -> int:
    query = select(func.count(func.distinct(RbBinding.customer_id))).where(
        RbBinding.distributor_id == distributor_id, _protected_at(at)
    )
    return int(session.exec(query).one())
