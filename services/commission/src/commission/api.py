"""HTTP reads of the commission service: promotion orders, order detail, summary, and what a
product earns ("you earn ¥X"). The plan's edit endpoints belong to issue 5."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session

from commission import domain, store
from commission.settings import CommissionSettings
from fx_common.http import ApiError, Auth, Runtime, require_reader
from fx_common.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["commission"])


class CommissionOut(BaseModel):
    commission_id: str
    order_id: str
    line_id: str
    sku: str
    category: str | None
    quantity: int
    paid_amount_fen: int
    refunded_fen: int
    paid_at: datetime
    plan_version: int
    rate_basis: str
    rate_bps: int
    fen_per_unit: int | None
    accrued_fen: int
    amount_fen: int
    status: str
    settle_at: datetime | None
    settled_at: datetime | None
    settled_fen: int
    reversed_fen: int
    voided_fen: int
    void_reason: str | None


class CommissionPage(BaseModel):
    items: list[CommissionOut]
    page: int
    page_size: int
    total: int


class HistoryEntry(BaseModel):
    commission_id: str
    kind: str
    occurred_at: datetime
    status_before: str | None
    status_after: str
    amount_before: int
    amount_after: int
    plan_version: int
    reason: str | None
    refund_id: str | None
    cause_id: str
    event_id: str | None


class OrderDetail(BaseModel):
    order_id: str
    distributor_id: str
    buyer_id: str
    basis: str
    paid_at: datetime
    completed_at: datetime | None
    paid_amount_fen: int
    amount_fen: int
    lines: list[CommissionOut]
    history: list[HistoryEntry]


class StatusTotals(BaseModel):
    """Fen by state. settled is net of clawbacks; reversed is what was clawed back; voided
    what was cancelled."""

    held: int
    pending: int
    frozen: int
    settled: int
    reversed: int
    voided: int


class Summary(BaseModel):
    """Periods count commission by the payment time of its order, in the merchant's day."""

    distributor_id: str
    as_of: datetime
    today: StatusTotals
    this_month: StatusTotals
    all_time: StatusTotals


class ProductCommission(BaseModel):
    sku: str
    category: str | None
    price_fen: int
    amount_fen: int
    rate_bps: int
    fen_per_unit: int | None
    basis: str
    plan_version: int


def _settings(runtime: ServiceRuntime) -> CommissionSettings:
    settings = runtime.settings
    assert isinstance(settings, CommissionSettings)
    return settings


def _out(row: store.CommissionRecord) -> CommissionOut:
    return CommissionOut.model_validate(row, from_attributes=True)


@router.get("/distributors/{distributor_id}/commissions")
def list_commissions(
    distributor_id: str,
    who: Auth,
    runtime: Runtime,
    status: domain.Status | None = None,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CommissionPage:
    """The distributor's promotion orders, one entry per order line, newest first."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        rows, total = store.page_of_commissions(session, distributor_id, status, page, page_size)
        items = [_out(row) for row in rows]
    return CommissionPage(items=items, page=page, page_size=page_size, total=total)


@router.get("/distributors/{distributor_id}/orders/{order_id}")
def order_detail(distributor_id: str, order_id: str, who: Auth, runtime: Runtime) -> OrderDetail:
    """One promotion order: its lines with their commission, and every change applied."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        order = store.order(session, order_id)
        if order is None or order.distributor_id != distributor_id:
            raise ApiError(404, "not_found", f"no order {order_id} for {distributor_id}")
        rows = store.commissions_of_order(session, order_id)
        completed = store.completion(session, order_id)
        history = store.audit_of(session, [row.commission_id for row in rows])
        return OrderDetail(
            order_id=order.order_id,
            distributor_id=order.distributor_id,
            buyer_id=order.buyer_id,
            basis=order.basis,
            paid_at=order.paid_at,
            completed_at=completed.completed_at if completed is not None else None,
            paid_amount_fen=sum(row.paid_amount_fen for row in rows),
            amount_fen=sum(row.amount_fen for row in rows),
            lines=[_out(row) for row in rows],
            history=[HistoryEntry.model_validate(h, from_attributes=True) for h in history],
        )


@router.get("/distributors/{distributor_id}/summary")
def summary(distributor_id: str, who: Auth, runtime: Runtime) -> Summary:
    require_reader(who, distributor_id)
    now = runtime.clock.now()
    day, month = domain.period_starts(now, _settings(runtime).business_utc_offset)
    with Session(runtime.engine) as session:
        return Summary(
            distributor_id=distributor_id,
            as_of=now,
            today=StatusTotals(**store.totals_by_status(session, distributor_id, day)),
            this_month=StatusTotals(**store.totals_by_status(session, distributor_id, month)),
            all_time=StatusTotals(**store.totals_by_status(session, distributor_id)),
        )


@router.get("/products/{sku}/commission")
def product_commission(
    sku: str,
    who: Auth,
    runtime: Runtime,
    price_fen: Annotated[int, Query(ge=0)],
    category: str | None = None,
) -> ProductCommission:
    """What one unit at `price_fen` earns under the plan in force now."""
    with Session(runtime.engine) as session:
        plan = store.plan_at(session, runtime.clock.now(), _settings(runtime).default_rate_bps)
    quote = plan.quote(sku, category, 1, price_fen)
    return ProductCommission(
        sku=sku,
        category=category,
        price_fen=price_fen,
        amount_fen=quote.amount_fen,
        rate_bps=quote.rate_bps,
        fen_per_unit=quote.fen_per_unit,
        basis=quote.basis,
        plan_version=quote.plan_version,
    )
