"""Tables of referral-binding (prefix `rb_`) and the queries it needs.

Nothing is ever deleted: shares, visits, eligibility changes, bindings (intervals),
extensions and orders are kept so "who owned customer X at time T, and why" stays
answerable. No function here commits: the unit of work owns the transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Dialect, Index, and_, func, or_
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, col, select

from referral_binding.domain import (
    Basis,
    Binding,
    Eligibility,
    EligibilityChange,
    ReleaseReason,
    VisitOutcome,
)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which keeps no offset) and Postgres alike.

    Values are stored as naive UTC on SQLite so that comparisons in SQL order correctly.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times must be timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _at(**kwargs: Any) -> Any:
    return Field(sa_type=UtcDateTime, **kwargs)


class RbShare(SQLModel, table=True):
    """share → sharer, from `mall.share.created` or (until that arrives) from a visit."""

    __tablename__ = "rb_share"
    share_id: str = Field(primary_key=True, max_length=128)
    sharer_id: str = Field(index=True, max_length=128)
    product_sku: str | None = Field(default=None, max_length=128)
    channel: str | None = Field(default=None, max_length=128)
    created_at: datetime | None = _at(default=None)
    first_seen_at: datetime = _at()


class RbVisit(SQLModel, table=True):
    """Every visit and what it did (`contested` ones are the disputes record of §2.2)."""

    __tablename__ = "rb_visit"
    __table_args__ = (Index("ix_rb_visit_sharer_outcome", "sharer_id", "outcome"),)
    event_id: str = Field(primary_key=True, max_length=128)
    share_id: str = Field(max_length=128)
    sharer_id: str = Field(max_length=128)
    visitor_id: str = Field(index=True, max_length=128)
    visited_at: datetime = _at()
    outcome: str = Field(max_length=32)
    binding_id: str | None = Field(default=None, max_length=128)
    protected_by: str | None = Field(
        default=None, max_length=128, description="Distributor whose protection covered the visit."
    )


class RbEligibility(SQLModel, table=True):
    """One change of a user's eligibility, from `fx.qualification.v1`, at its event time."""

    __tablename__ = "rb_eligibility"
    event_id: str = Field(primary_key=True, max_length=128)
    user_id: str = Field(index=True, max_length=128)
    since: datetime = _at()
    eligible: bool
    cause: str = Field(max_length=128, description="The qualification event type.")


class RbBinding(SQLModel, table=True):
    """A binding interval; released, never deleted."""

    __tablename__ = "rb_binding"
    __table_args__ = (
        Index("ix_rb_binding_customer", "customer_id", "bound_at"),
        Index("ix_rb_binding_distributor", "distributor_id", "released_at"),
        Index("ix_rb_binding_open", "released_at", "protected_until"),
    )
    binding_id: str = Field(primary_key=True, max_length=128)
    customer_id: str = Field(max_length=128)
    distributor_id: str = Field(max_length=128)
    share_id: str = Field(max_length=128)
    order_id: str | None = Field(default=None, max_length=128)
    bound_at: datetime = _at()
    protected_until: datetime = _at()
    released_at: datetime | None = _at(default=None)
    release_reason: str | None = Field(default=None, max_length=32)

    def to_domain(self) -> Binding:
        reason = ReleaseReason(self.release_reason) if self.release_reason else None
        return Binding(
            binding_id=self.binding_id,
            customer_id=self.customer_id,
            distributor_id=self.distributor_id,
            share_id=self.share_id,
            order_id=self.order_id,
            bound_at=self.bound_at,
            protected_until=self.protected_until,
            released_at=self.released_at,
            release_reason=reason,
        )


class RbExtension(SQLModel, table=True):
    """A paid order that extended a binding (the history behind `protected_until`)."""

    __tablename__ = "rb_extension"
    order_id: str = Field(primary_key=True, max_length=128)
    binding_id: str = Field(index=True, max_length=128)
    extended_at: datetime = _at()
    protected_until: datetime = _at()


class RbOrder(SQLModel, table=True):
    """Every paid order and its attribution (`distributor_id` is null when unattributed)."""

    __tablename__ = "rb_order"
    __table_args__ = (Index("ix_rb_order_buyer", "buyer_id", "paid_at"),)
    order_id: str = Field(primary_key=True, max_length=128)
    buyer_id: str = Field(max_length=128)
    paid_at: datetime = _at()
    share_id: str | None = Field(default=None, max_length=128)
    distributor_id: str | None = Field(default=None, index=True, max_length=128)
    basis: str | None = Field(default=None, max_length=32)
    binding_id: str | None = Field(
        default=None, max_length=128, description="The buyer's binding it extended or created."
    )


TABLES: tuple[type[SQLModel], ...] = (
    RbShare,
    RbVisit,
    RbEligibility,
    RbBinding,
    RbExtension,
    RbOrder,
)


# --- shares ---------------------------------------------------------------------------------


def record_share(
    session: Session,
    share_id: str,
    sharer_id: str,
    seen_at: datetime,
    *,
    created: bool,
    product_sku: str | None = None,
    channel: str | None = None,
) -> None:
    """Remember a share; `mall.share.created` is authoritative over what a visit said."""
    share = session.get(RbShare, share_id)
    if share is None:
        share = RbShare(share_id=share_id, sharer_id=sharer_id, first_seen_at=seen_at)
    if created:
        share.sharer_id, share.created_at = sharer_id, seen_at
        share.product_sku, share.channel = product_sku, channel
    share.first_seen_at = min(share.first_seen_at, seen_at)
    session.add(share)


def sharer_of(session: Session, share_id: str) -> str | None:
    share = session.get(RbShare, share_id)
    return share.sharer_id if share is not None else None


# --- eligibility ----------------------------------------------------------------------------


def add_eligibility(
    session: Session, event_id: str, user_id: str, since: datetime, eligible: bool, cause: str
) -> None:
    session.add(
        RbEligibility(
            event_id=event_id, user_id=user_id, since=since, eligible=eligible, cause=cause
        )
    )


def eligibility(session: Session, user_id: str) -> Eligibility:
    rows = session.exec(select(RbEligibility).where(RbEligibility.user_id == user_id))
    return Eligibility(EligibilityChange(r.since, r.eligible) for r in rows)


# --- bindings -------------------------------------------------------------------------------


def bindings_of_customer(session: Session, customer_id: str) -> list[Binding]:
    query = (
        select(RbBinding)
        .where(RbBinding.customer_id == customer_id)
        .order_by(col(RbBinding.bound_at), col(RbBinding.binding_id))
    )
    return [row.to_domain() for row in session.exec(query)]


def open_bindings_of_distributor(session: Session, distributor_id: str) -> list[Binding]:
    query = (
        select(RbBinding)
        .where(RbBinding.distributor_id == distributor_id, col(RbBinding.released_at).is_(None))
        .order_by(col(RbBinding.bound_at), col(RbBinding.binding_id))
    )
    return [row.to_domain() for row in session.exec(query)]


def open_bindings_ended_by(session: Session, now: datetime) -> list[Binding]:
    query = (
        select(RbBinding)
        .where(col(RbBinding.released_at).is_(None), RbBinding.protected_until <= now)
        .order_by(col(RbBinding.protected_until), col(RbBinding.binding_id))
    )
    return [row.to_domain() for row in session.exec(query)]


def save_binding(session: Session, binding: Binding) -> None:
    row = session.get(RbBinding, binding.binding_id) or RbBinding(
        binding_id=binding.binding_id,
        customer_id=binding.customer_id,
        distributor_id=binding.distributor_id,
        share_id=binding.share_id,
        order_id=binding.order_id,
        bound_at=binding.bound_at,
        protected_until=binding.protected_until,
    )
    row.protected_until = binding.protected_until
    row.released_at = binding.released_at
    row.release_reason = binding.release_reason.value if binding.release_reason else None
    session.add(row)


def add_extension(
    session: Session, order_id: str, binding_id: str, extended_at: datetime, until: datetime
) -> None:
    session.add(
        RbExtension(
            order_id=order_id, binding_id=binding_id, extended_at=extended_at, protected_until=until
        )
    )


def protected_binding(session: Session, customer_id: str, at: datetime) -> RbBinding | None:
    query = select(RbBinding).where(RbBinding.customer_id == customer_id, _protected_at(at))
    return session.exec(query).first()


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


# --- visits and orders ----------------------------------------------------------------------


def add_visit(
    session: Session,
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
    session.add(
        RbVisit(
            event_id=event_id,
            share_id=share_id,
            sharer_id=sharer_id,
            visitor_id=visitor_id,
            visited_at=visited_at,
            outcome=outcome.value,
            binding_id=binding_id,
            protected_by=protected_by,
        )
    )


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


def get_order(session: Session, order_id: str) -> RbOrder | None:
    return session.get(RbOrder, order_id)


def latest_order_paid_at(session: Session, buyer_id: str) -> datetime | None:
    query = select(func.max(RbOrder.paid_at)).where(RbOrder.buyer_id == buyer_id)
    latest: datetime | None = session.exec(query).one()
    return latest


def add_order(
    session: Session,
    *,
    order_id: str,
    buyer_id: str,
    paid_at: datetime,
    share_id: str | None,
    distributor_id: str | None,
    basis: Basis | None,
    binding_id: str | None,
) -> None:
    session.add(
        RbOrder(
            order_id=order_id,
            buyer_id=buyer_id,
            paid_at=paid_at,
            share_id=share_id,
            distributor_id=distributor_id,
            basis=basis.value if basis else None,
            binding_id=binding_id,
        )
    )
