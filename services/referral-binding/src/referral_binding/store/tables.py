"""Tables of referral-binding (prefix `rb_`). Nothing is ever deleted: shares, visits,
eligibility changes, bindings (intervals), extensions and orders are kept so "who owned
customer X at time T, and why" stays answerable."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from fx_common.db import UtcDateTime
from referral_binding.domain import Binding, ReleaseReason


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
        return binding_of(self.model_dump())


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
    event_id: str | None = Field(
        default=None, max_length=128, description="The ce_id of its mall.order.paid."
    )
    lines: str | None = Field(
        default=None,
        sa_type=sa.Text,
        description="Its lines (JSON) while unattributed: a late visit may attribute it.",
    )


class RbFollowUp(SQLModel, table=True):
    """A completion or refund of an unattributed order, kept for a late visit that attributes
    the order (`referral_binding.late`)."""

    __tablename__ = "rb_follow_up"
    event_id: str = Field(primary_key=True, max_length=128)
    order_id: str = Field(index=True, max_length=128)
    ce_type: str = Field(max_length=64)
    occurred_at: datetime = _at()
    data: str = Field(sa_type=sa.Text)


class RbRecruiter(SQLModel, table=True):
    """A distributor's recruiter, recorded once (`fx.recruiter.recorded`): the distributor
    whose binding covered them as a customer when they applied."""

    __tablename__ = "rb_recruiter"
    distributor_id: str = Field(primary_key=True, max_length=128)
    recruiter_id: str = Field(index=True, max_length=128)
    binding_id: str = Field(max_length=128)
    applied_at: datetime = _at()
    event_id: str = Field(max_length=128, description="The ce_id of the application.")


TABLES: tuple[type[SQLModel], ...] = (
    RbShare,
    RbVisit,
    RbEligibility,
    RbBinding,
    RbExtension,
    RbOrder,
    RbFollowUp,
    RbRecruiter,
)


def binding_of(row: Mapping[str, Any]) -> Binding:
    reason = row["release_reason"]
    return Binding(**{**row, "release_reason": ReleaseReason(reason) if reason else None})


def new_share_row(share_id: str, sharer_id: str, seen_at: datetime) -> dict[str, Any]:
    """A share's first row: who shared it, first seen when; `mall.share.created` fills the rest."""
    return {
        "share_id": share_id,
        "sharer_id": sharer_id,
        "product_sku": None,
        "channel": None,
        "created_at": None,
        "first_seen_at": seen_at,
    }


def binding_row(binding: Binding) -> dict[str, Any]:
    """The row of `binding` (the inverse of `binding_of`)."""
    reason = binding.release_reason
    return {
        "binding_id": binding.binding_id,
        "customer_id": binding.customer_id,
        "distributor_id": binding.distributor_id,
        "share_id": binding.share_id,
        "order_id": binding.order_id,
        "bound_at": binding.bound_at,
        "protected_until": binding.protected_until,
        "released_at": binding.released_at,
        "release_reason": reason.value if reason is not None else None,
    }
