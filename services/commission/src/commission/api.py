"""HTTP of the commission service: promotion orders, order detail, a commission's audit
trail, summary, what a product earns ("you earn ¥X"), and the rate plan (ops edit it).

The plan's routes are in `commission.plan_api`. A commission uses the version in force when
its order was paid and records it; the product lookup uses the one in force now.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlmodel import Session

from commission import board, domain, store
from commission.plan_api import PlanOut, plan_out, plan_router, settings_of, version0
from commission.team_api import team_router
from fx_common.http import ApiError, Auth, MallReader, Runtime, errors, require_reader
from fx_common.http_fields import PathId
from fx_common.leaderboard_http import router_for

router = APIRouter(prefix="/v1", tags=["commission"])


def _d(text: str) -> Any:
    return Field(description=text)


STATUS_TEXT = (
    "held: accrued while the distributor is assessed (escrow); pending: payable once the "
    "order completes; frozen: completed, in the after-sales hold until settle_at; settled: "
    "withdrawable (it may since have been partly clawed back); reversed: settled, then fully "
    "clawed back; voided: cancelled before settlement (failed assessment, revocation, full "
    "refund)."
)


class CommissionOut(BaseModel):
    """One order line's commission. All money is integer fen."""

    commission_id: str
    order_id: str
    line_id: str
    sku: str
    category: str | None
    quantity: int
    paid_amount_fen: int = _d("What the buyer paid for the line.")
    refunded_fen: int = _d("Refunded so far for the line (never above paid_amount_fen).")
    paid_at: datetime
    plan_version: int = _d("The plan version in force when the order was paid.")
    rate_basis: str = _d("Which rule priced it: sku, category or default.")
    rate_bps: int = _d("Rate applied in bps (a fixed per-unit rule: its effective rate).")
    fen_per_unit: int | None = _d("The fixed per-unit rule, when that priced it.")
    accrued_fen: int = _d("What the line earned when it accrued, before any refund.")
    amount_fen: int = _d(
        "What it is worth now: accrued less refunds (pro rata) and clawbacks; 0 when voided."
    )
    status: domain.Status = _d(STATUS_TEXT)
    settle_at: datetime | None = _d("End of the after-sales hold (completion + hold).")
    settled_at: datetime | None
    settled_fen: int = _d("The amount when it settled (before later clawbacks).")
    reversed_fen: int = _d("Clawed back after settlement by refunds or a revocation.")
    voided_fen: int = _d("Cancelled before settlement (what it was worth when voided).")
    void_reason: str | None
    tier: domain.Tier = _d(
        "1: earned on the distributor's own attributed order; 2: the second tier, earned on "
        "an order of a distributor they recruited (FX_COMMISSION_TIERS=2)."
    )
    source_distributor_id: str | None = _d("Tier 2: the recruit whose order earned it.")


class CommissionPage(BaseModel):
    items: list[CommissionOut]
    page: int
    page_size: int
    total: int = _d("Lines matching, over all pages.")


class HistoryEntry(BaseModel):
    commission_id: str
    kind: str = _d("accrued, released, frozen, adjusted, settled, reversed or voided.")
    occurred_at: datetime
    status_before: str | None
    status_after: str
    amount_before: int = _d("amount_fen before the change (fen).")
    amount_after: int = _d("amount_fen after the change (fen).")
    plan_version: int
    reason: str | None
    refund_id: str | None
    cause_id: str = _d("The ce_id of the event (or command) that caused it.")
    event_id: str | None = _d("The ce_id of the fx.commission.* event it published.")


class OrderDetail(BaseModel):
    order_id: str
    distributor_id: str
    buyer_id: str
    basis: str = _d("Why the order is the distributor's: self, binding or share.")
    paid_at: datetime
    completed_at: datetime | None
    paid_amount_fen: int = _d("Sum of the lines' paid amounts (fen).")
    amount_fen: int = _d("Sum of the lines' current commission amounts (fen).")
    lines: list[CommissionOut]
    history: list[HistoryEntry]


class StatusTotals(BaseModel):
    """Fen by state, over the commissions of orders paid in the period."""

    held: int = _d("In escrow while the distributor is assessed.")
    pending: int = _d("Awaiting the order's completion.")
    frozen: int = _d("In the after-sales hold.")
    settled: int = _d("Settled, net of clawbacks (what was settled minus what was reversed).")
    reversed: int = _d("Clawed back after settlement.")
    voided: int = _d("Cancelled before settlement.")


class Summary(BaseModel):
    """Periods count commission by the payment time of its order, in the merchant's day."""

    distributor_id: str
    as_of: datetime = _d("The clock port's now.")
    today: StatusTotals
    this_month: StatusTotals
    all_time: StatusTotals


class ProductCommission(BaseModel):
    """What one unit earns a distributor under the plan in force now ("you earn ¥X")."""

    sku: str
    category: str | None
    price_fen: int = _d("The unit price asked about (fen).")
    amount_fen: int = _d("Commission on one unit at that price (fen, floored).")
    rate_bps: int = _d("Rate applied in bps (a fixed per-unit rule: its effective rate).")
    fen_per_unit: int | None
    basis: str = _d("Which rule priced it: sku, category or default.")
    plan_version: int


class InboxPosition(BaseModel):
    """Where a consumed event was read: enough to find the record on the topic."""

    ce_type: str
    topic: str
    partition: int
    offset: int


class AuditFact(BaseModel):
    kind: str = _d("attributed, completed, refunded or qualification.")
    event_id: str
    occurred_at: datetime
    status: str | None = _d(
        "For a qualification fact: the distributor's status it reported (assessing, "
        "qualified, failed, revoked)."
    )
    refund_id: str | None
    refund_amount_fen: int | None = _d("For a refund: what was refunded on this line (fen).")
    position: InboxPosition | None


class AuditChange(HistoryEntry):
    cause: InboxPosition | None
    """The consumed event that caused it; None for the system clock's sweeper."""


class CommissionAudit(BaseModel):
    """Everything that shaped one commission's amount: the plan version and rule it used, the
    consumed events about its order line and its distributor, and every change applied."""

    commission: CommissionOut
    plan: PlanOut
    facts: list[AuditFact]
    changes: list[AuditChange]


def _out(row: store.CommissionRecord) -> CommissionOut:
    return CommissionOut.model_validate(row, from_attributes=True)


@router.get("/distributors/{distributor_id}/commissions")
def list_commissions(
    distributor_id: PathId,
    who: Auth,
    runtime: Runtime,
    status: domain.Status | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
) -> CommissionPage:
    """The distributor's promotion orders, one entry per order line, newest first."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        rows, total = store.page_of_commissions(session, distributor_id, status, page, page_size)
        items = [_out(row) for row in rows]
    return CommissionPage(items=items, page=page, page_size=page_size, total=total)


@router.get("/distributors/{distributor_id}/orders/{order_id}", responses=errors(404))
def order_detail(
    distributor_id: PathId, order_id: PathId, who: Auth, runtime: Runtime
) -> OrderDetail:
    """One promotion order: its lines with their commission, and every change applied."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        order = store.order(session, order_id)
        if order is None or order.distributor_id != distributor_id:
            raise ApiError(404, "not_found", f"no order {order_id} for {distributor_id}")
        rows = [
            row
            for row in store.commissions_of_order(session, order_id)
            if row.distributor_id == distributor_id
        ]  # fmt: skip (the recruiter's tier-2 lines are theirs, not the distributor's)
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
def summary(distributor_id: PathId, who: Auth, runtime: Runtime) -> Summary:
    require_reader(who, distributor_id)
    now = runtime.clock.now()
    day, month = domain.period_starts(now, settings_of(runtime).business_utc_offset)
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
    sku: PathId,
    who: MallReader,
    runtime: Runtime,
    price_fen: Annotated[int, Query(ge=0, le=1_000_000_000_000)],
    category: str | None = None,
) -> ProductCommission:
    """What one unit at `price_fen` earns under the plan in force now."""
    with Session(runtime.engine) as session:
        plan = store.plan_at(session, runtime.clock.now(), *version0(runtime))
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


@router.get(
    "/distributors/{distributor_id}/commissions/{commission_id}/audit", responses=errors(404)
)
def commission_audit(
    distributor_id: PathId, commission_id: PathId, who: Auth, runtime: Runtime
) -> CommissionAudit:
    """Every event and plan version that shaped the commission's amount."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        row = session.get(store.CommissionRecord, commission_id)
        if row is None or row.distributor_id != distributor_id:
            raise ApiError(404, "not_found", f"no commission {commission_id} for {distributor_id}")
        versions = store.plan_versions(session, *version0(runtime))
        plan = next(v for v in versions if v.plan.version == row.plan_version)
        facts = store.facts_of(session, row)
        history = store.audit_of(session, [commission_id])
        positions = store.inbox_positions(
            session, [f.event_id for f in facts] + [h.cause_id for h in history]
        )

        def position(event_id: str) -> InboxPosition | None:
            found = positions.get(event_id)
            return None if found is None else InboxPosition.model_validate(found.model_dump())

        return CommissionAudit(
            commission=_out(row),
            plan=plan_out(plan),
            facts=[AuditFact(**vars(fact), position=position(fact.event_id)) for fact in facts],
            changes=[
                AuditChange(
                    **HistoryEntry.model_validate(h, from_attributes=True).model_dump(),
                    cause=position(h.cause_id),
                )
                for h in history
            ],
        )


router.include_router(plan_router)
router.include_router(router_for(board.BOARD))
router.include_router(team_router)
