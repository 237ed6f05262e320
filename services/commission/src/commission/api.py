"""HTTP of the commission service: promotion orders, order detail, a commission's audit
trail, summary, what a product earns ("you earn ¥X"), and the rate plan (ops edit it).

Plan versions are never edited: each `PUT /v1/plan` creates the next version, in force from
its `effective_from` (now by default; never in the past). A commission uses the version in
force when its order was paid and records it; the product lookup uses the one in force now.
Version 0 is the configured default rate (`FX_DEFAULT_RATE_BPS`), in force until version 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from commission import domain, store
from commission.settings import CommissionSettings
from fx_common.contracts.base import Bps, Fen, StrictId
from fx_common.http import ApiError, Auth, Runtime, require_ops, require_reader
from fx_common.processing import UnitOfWork
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


class RateRule(BaseModel):
    """An override: a rate in bps of the line's paid amount, or a fixed fen per unit (capped
    at the line's paid amount). Exactly one of the two."""

    model_config = ConfigDict(extra="forbid")
    rate_bps: Bps | None = None
    fen_per_unit: Fen | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> RateRule:
        if (self.rate_bps is None) == (self.fen_per_unit is None):
            raise ValueError("give exactly one of rate_bps (0..10000) or fen_per_unit (fen >= 0)")
        return self


class PlanIn(BaseModel):
    """The whole next plan: what is not listed here has no override in the new version."""

    model_config = ConfigDict(extra="forbid")
    default_rate_bps: Bps
    categories: dict[StrictId, RateRule] = Field(default_factory=dict)
    skus: dict[StrictId, RateRule] = Field(default_factory=dict)
    effective_from: AwareDatetime | None = Field(
        default=None, description="When it takes effect: now (the clock port's) by default."
    )


class PlanOut(BaseModel):
    version: int
    default_rate_bps: int
    categories: dict[str, RateRule]
    skus: dict[str, RateRule]
    effective_from: datetime | None
    """None for version 0: the configured default rate, in force until version 1."""
    created_at: datetime | None
    created_by: str | None


class PlanVersions(BaseModel):
    in_force: int
    """The version in force now."""
    versions: list[PlanOut]


class InboxPosition(BaseModel):
    """Where a consumed event was read: enough to find the record on the topic."""

    ce_type: str
    topic: str
    partition: int
    offset: int


class AuditFact(BaseModel):
    kind: str
    event_id: str
    occurred_at: datetime
    status: str | None
    refund_id: str | None
    refund_amount_fen: int | None
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


def _settings(runtime: ServiceRuntime) -> CommissionSettings:
    settings = runtime.settings
    assert isinstance(settings, CommissionSettings)
    return settings


def _out(row: store.CommissionRecord) -> CommissionOut:
    return CommissionOut.model_validate(row, from_attributes=True)


def _plan_out(stored: store.StoredPlan) -> PlanOut:
    def rules(rates: Mapping[str, domain.Rate]) -> dict[str, RateRule]:
        return {
            key: RateRule(rate_bps=rate.rate_bps, fen_per_unit=rate.fen_per_unit)
            for key, rate in sorted(rates.items())
        }

    return PlanOut(
        version=stored.plan.version,
        default_rate_bps=stored.plan.default_rate_bps,
        categories=rules(stored.plan.by_category),
        skus=rules(stored.plan.by_sku),
        effective_from=stored.effective_from,
        created_at=stored.created_at,
        created_by=stored.created_by,
    )


def _versions(runtime: ServiceRuntime) -> tuple[list[store.StoredPlan], store.StoredPlan]:
    """Every plan version, and the one in force now (as an order paid now would use)."""
    default_rate_bps = _settings(runtime).default_rate_bps
    with Session(runtime.engine) as session:
        versions = store.plan_versions(session, default_rate_bps)
        in_force = store.plan_at(session, runtime.clock.now(), default_rate_bps).version
    return versions, next(v for v in versions if v.plan.version == in_force)


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


@router.get("/distributors/{distributor_id}/commissions/{commission_id}/audit")
def commission_audit(
    distributor_id: str, commission_id: str, who: Auth, runtime: Runtime
) -> CommissionAudit:
    """Every event and plan version that shaped the commission's amount."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        row = session.get(store.CommissionRecord, commission_id)
        if row is None or row.distributor_id != distributor_id:
            raise ApiError(404, "not_found", f"no commission {commission_id} for {distributor_id}")
        versions = store.plan_versions(session, _settings(runtime).default_rate_bps)
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
            plan=_plan_out(plan),
            facts=[AuditFact(**vars(fact), position=position(fact.event_id)) for fact in facts],
            changes=[
                AuditChange(
                    **HistoryEntry.model_validate(h, from_attributes=True).model_dump(),
                    cause=position(h.cause_id),
                )
                for h in history
            ],
        )


@router.get("/plan")
def current_plan(who: Auth, runtime: Runtime) -> PlanOut:
    """The plan version in force now (the clock port's now)."""
    return _plan_out(_versions(runtime)[1])


@router.get("/plan/versions")
def plan_history(who: Auth, runtime: Runtime) -> PlanVersions:
    """Every version, oldest first, including those scheduled to take effect later."""
    versions, in_force = _versions(runtime)
    return PlanVersions(in_force=in_force.plan.version, versions=[_plan_out(v) for v in versions])


@router.put("/plan")
def edit_plan(body: PlanIn, who: Auth, runtime: Runtime) -> PlanOut:
    """Ops: create the next plan version from the whole plan given (no version is edited)."""
    require_ops(who)
    now = runtime.clock.now()
    effective_from = body.effective_from or now

    def create(uow: UnitOfWork) -> store.StoredPlan:
        versions = store.plan_versions(uow.session, _settings(runtime).default_rate_bps)
        latest = versions[-1]
        refusal = domain.schedule_refusal(
            effective_from,
            now=now,
            latest_start=latest.effective_from,
            latest_paid_at=store.latest_paid_at(uow.session),
        )
        if refusal is not None:
            raise ApiError(422, "invalid_plan", refusal)
        plan = domain.RatePlan(
            version=latest.plan.version + 1,
            default_rate_bps=body.default_rate_bps,
            by_category={
                k: domain.Rate(r.rate_bps, r.fen_per_unit) for k, r in body.categories.items()
            },
            by_sku={k: domain.Rate(r.rate_bps, r.fen_per_unit) for k, r in body.skus.items()},
        )
        starts = effective_from.astimezone(UTC)
        store.add_plan_version(uow.session, plan, starts, created_at=now, created_by=who.sub)
        return store.StoredPlan(plan, starts, now, who.sub)

    try:
        created: store.StoredPlan = runtime.command(f"plan:{now.isoformat()}", create)
    except IntegrityError as exc:
        raise ApiError(
            409, "plan_changed", "another plan version was created at the same time; retry"
        ) from exc
    return _plan_out(created)
