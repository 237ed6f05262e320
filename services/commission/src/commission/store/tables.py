"""Commission tables (prefixed `cm_`). Rows are never deleted: orders, commissions, early
completions and refunds, qualification transitions, plan versions and the audit trail are all
history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from fx_common.db import UtcDateTime


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
        Index("ix_cm_commission_source", "source_distributor_id", "status"),
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
    tier: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    """1: the attributed distributor's; 2: their recruiter's (FX_COMMISSION_TIERS=2)."""
    source_distributor_id: str | None = Field(default=None, max_length=128)
    """Tier 2: the recruit whose attributed order earned it."""


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
    tier2_default_rate_bps: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    effective_from: datetime = _utc(index=True)
    created_at: datetime | None = _utc(nullable=True)
    created_by: str | None = Field(default=None, max_length=128)
    """The ops user who created it over HTTP."""


class PlanRateRecord(SQLModel, table=True):
    """An override of a plan version: for a `sku` or a `category`, or (the second tier's)
    a `tier2_sku` or a `tier2_category`."""

    __tablename__ = "cm_plan_rate"
    version: int = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=16)
    key: str = Field(primary_key=True, max_length=128)
    rate_bps: int | None = None
    fen_per_unit: int | None = None


class RecruiterRecord(SQLModel, table=True):
    """A distributor's recruiter (from fx.recruiter.recorded), kept once: the first stands."""

    __tablename__ = "cm_recruiter"
    distributor_id: str = Field(primary_key=True, max_length=128)
    recruiter_id: str = Field(index=True, max_length=128)
    binding_id: str = Field(max_length=128)
    applied_at: datetime = _utc()
    event_id: str = Field(max_length=128)


TABLES: tuple[type[SQLModel], ...] = (
    OrderRecord,
    CommissionRecord,
    AuditRecord,
    CompletionRecord,
    RefundLineRecord,
    StatusChangeRecord,
    PlanVersionRecord,
    PlanRateRecord,
    RecruiterRecord,
)
