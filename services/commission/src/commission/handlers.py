"""Consumes fx.attributions.v1 and fx.qualification.v1; settles on the clock.

Each handler: load (what its event declared, pre-loaded for the batch) → domain → store +
outbox. Completions and refunds are kept even when their attribution has not arrived yet, and
qualification transitions are kept per distributor, so whichever arrives last finds the
others and the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from commission import domain, store
from commission.domain import tiers
from fx_common.contracts import attributions as att
from fx_common.contracts import commissions as cm
from fx_common.contracts import qualification as q
from fx_common.contracts.base import ContractModel
from fx_common.envelope import Event
from fx_common.processing import On, UnitOfWork

Uow = UnitOfWork[store.Repository]
QualificationEvent = (
    q.DistributorApplied
    | q.AssessmentStarted
    | q.AssessmentProgressed
    | q.DistributorQualified
    | q.AssessmentFailed
    | q.DistributorRevoked
)

QUALIFICATION_STATUS: dict[type[QualificationEvent], domain.QualificationStatus] = {
    q.DistributorApplied: "applied",
    q.AssessmentStarted: "assessing",
    q.AssessmentProgressed: "assessing",
    q.DistributorQualified: "qualified",
    q.AssessmentFailed: "failed",
    q.DistributorRevoked: "revoked",
}
Keys = Mapping[str, Iterable[Any]]


def attributed_keys(event: Event, data: att.OrderAttributed) -> Keys:
    """What arrived for the order, its distributor's history and recruiter, the plan in force
    at payment."""
    return {
        "orders": [data.order_id],
        "distributors": [data.distributor_id],
        "recruits": [data.distributor_id],
        "paid_at": [data.paid_at],
    }


def order_keys(
    event: Event, data: att.AttributedOrderCompleted | att.AttributedOrderRefunded
) -> Keys:
    return {"orders": [data.order_id]}


def qualification_keys(event: Event, data: QualificationEvent) -> Keys:
    """The distributor's history; a decisive change also needs the commissions they earn or
    are the source of, and (second tier) their recruits' orders."""
    decisive = QUALIFICATION_STATUS[type(data)] in domain.DECISIVE
    them = [data.user_id] if decisive else []
    return {"distributors": [data.user_id], "reassessed": them, "recruiting": them}


def recruiter_keys(event: Event, data: att.RecruiterRecorded) -> Keys:
    """The recruit's recorded recruiter, and (second tier) every order of the recruit."""
    return {"recruits": [data.distributor_id], "orders_of": [data.distributor_id],
            "distributors": [data.distributor_id, data.recruiter_id]}  # fmt: skip


def tier1_qualification_keys(event: Event, data: QualificationEvent) -> Keys:
    """`FX_COMMISSION_TIERS=1`: no recruits' orders to load."""
    return {**qualification_keys(event, data), "recruiting": []}


def tier1_attributed_keys(event: Event, data: att.OrderAttributed) -> Keys:
    """`FX_COMMISSION_TIERS=1`: no recruiter to look up (no query on the hot path)."""
    return {**attributed_keys(event, data), "recruits": []}


def tier1_recruiter_keys(event: Event, data: att.RecruiterRecorded) -> Keys:
    """`FX_COMMISSION_TIERS=1`: the recruiter is only kept; no orders to load."""
    return {"recruits": [data.distributor_id]}


def make_handlers(terms: domain.Terms) -> list[On[Any]]:
    """The handlers under `terms`, with the contract models they handle and what they load."""
    handlers = CommissionHandlers(terms)
    two = terms.tiers == 2
    qualification = qualification_keys if two else tier1_qualification_keys
    attributed = attributed_keys if two else tier1_attributed_keys
    recruiter = recruiter_keys if two else tier1_recruiter_keys
    return [
        On((att.OrderAttributed,), handlers.on_attributed, keys=attributed),
        On((att.AttributedOrderCompleted,), handlers.on_completed, keys=order_keys),
        On((att.AttributedOrderRefunded,), handlers.on_refunded, keys=order_keys),
        On(tuple(QUALIFICATION_STATUS), handlers.on_qualification, keys=qualification),
        On((att.RecruiterRecorded,), handlers.on_recruiter, keys=recruiter),
    ]


class CommissionHandlers:
    """Each handler reads the batch's repository (`uow.repo`, pre-loaded), calls the domain
    and stages the changes (`_record`)."""

    def __init__(self, terms: domain.Terms) -> None:
        self.terms = terms

    def on_attributed(self, uow: Uow, event: Event, data: att.OrderAttributed) -> None:
        batch = uow.repo
        if data.order_id in batch.attributed:
            return  # attributed once: the first attribution stands
        batch.add_order(
            data.order_id, data.distributor_id, data.buyer_id, data.basis, data.paid_at, event.id
        )
        plan = batch.plans.at(data.paid_at, *self._version0)
        fate = domain.assess(data.paid_at, batch.history[data.distributor_id])
        completed_at = batch.completed_at.get(data.order_id)
        refunds = batch.refund_lines(data.order_id)
        lines = []
        for line in data.lines:
            commission, changes = domain.accrue_line(
                distributor_id=data.distributor_id,
                order_id=data.order_id,
                line=domain.PaidLine(
                    line.line_id, line.sku, line.category, line.quantity, line.paid_amount_fen
                ),
                paid_at=data.paid_at,
                plan=plan,
                fate=fate,
                at=event.time,
                completed_at=completed_at,
                refunds=refunds,
                settlement_hold=self.terms.settlement_hold,
            )
            _record(uow, commission, changes)
            lines.append(commission)
        self._second_tier(uow, event, data.distributor_id, lines)

    def _second_tier(
        self, uow: Uow, event: Event, recruit: str, lines: list[domain.Commission]
    ) -> None:
        """`FX_COMMISSION_TIERS=2`: the recruit's recruiter's tier-2 line on each of `lines`
        (tier-1 lines of `recruit`) that has none yet and is due one."""
        batch = uow.repo
        recruiter = batch.recruiter_of.get(recruit)
        if self.terms.tiers != 2 or recruiter is None:
            return
        for tier1 in lines:
            known = domain.commission_id_for(tier1.order_id, tier1.line_id, 2)
            if known in batch.commissions:
                continue
            made = tiers.second_tier(
                recruiter_id=recruiter,
                tier1=tier1,
                recruit=batch.history[recruit],
                recruiter=batch.history[recruiter],
                plan=batch.plans.at(tier1.paid_at, *self._version0),
                at=event.time,
                completed_at=batch.completed_at.get(tier1.order_id),
                refunds=batch.refund_lines(tier1.order_id),
                settlement_hold=self.terms.settlement_hold,
            )
            if made is not None:
                _record(uow, *made)

    @property
    def _version0(self) -> tuple[int, int]:
        return self.terms.default_rate_bps, self.terms.tier2_default_rate_bps

    def on_completed(self, uow: Uow, event: Event, data: att.AttributedOrderCompleted) -> None:
        batch = uow.repo
        if data.order_id in batch.completed_at:
            return  # an order completes once
        batch.add_completion(data.order_id, data.distributor_id, event.time, event.id)
        hold = self.terms.settlement_hold
        _update_order(uow, data.order_id, lambda c: c.complete(event.time, hold))

    def on_refunded(self, uow: Uow, event: Event, data: att.AttributedOrderRefunded) -> None:
        batch = uow.repo
        if batch.refund_known(data.order_id, data.refund_id):
            return  # the same refund told twice
        amounts = {line.line_id: line.refund_amount_fen for line in data.lines}
        for line_id, amount in amounts.items():
            line = domain.RefundLine(data.refund_id, line_id, amount, event.time)
            batch.add_refund_line(data.order_id, line, event.id)

        def refund(commission: domain.Commission) -> list[domain.Change]:
            if commission.line_id not in amounts:
                return []
            return commission.refund(data.refund_id, amounts[commission.line_id], event.time)

        _update_order(uow, data.order_id, refund)

    def on_qualification(self, uow: Uow, event: Event, data: QualificationEvent) -> None:
        user_id, status = data.user_id, QUALIFICATION_STATUS[type(data)]
        batch = uow.repo
        batch.add_status_change(user_id, status, event.time, event.id)
        if status not in domain.DECISIVE:
            return
        for commission in batch.open_or_settled_of(user_id):
            fate = tiers.fate_of(commission, batch.history)
            _record(uow, commission, commission.apply_fate(fate))
        for recruit in batch.recruits_of.get(user_id, ()):
            self._second_tier(uow, event, recruit, batch.tier1_lines_of(recruit))

    def on_recruiter(self, uow: Uow, event: Event, data: att.RecruiterRecorded) -> None:
        """Keep the recruit's recruiter: the first recorded stands, never the recruit."""
        batch, recruit = uow.repo, data.distributor_id
        if recruit in batch.recruiter_of or data.recruiter_id == recruit:
            return
        batch.add_recruiter(recruit, data.recruiter_id, data.binding_id, data.applied_at, event.id)
        self._second_tier(uow, event, recruit, batch.tier1_lines_of(recruit))


def on_tick(uow: Uow, now: datetime) -> None:
    """Settle frozen commission whose after-sales hold has ended by `now`."""
    for commission in uow.repo.due_for_settlement(now):
        _record(uow, commission, commission.settle(now))


def _update_order(
    uow: Uow,
    order_id: str,
    apply: Callable[[domain.Commission], list[domain.Change]],
) -> None:
    for commission in uow.repo.commissions_of_order(order_id):
        _record(uow, commission, apply(commission))


def _record(uow: Uow, commission: domain.Commission, changes: list[domain.Change]) -> None:
    batch = uow.repo
    batch.save(commission)  # also facts that change no amount (refunded_fen)
    for change in changes:
        published = _event_for(commission, change)
        event_id = None
        if published is not None:
            event = uow.publish(published, time=change.at, subject=commission.commission_id)
            event_id = event.id
        batch.add_audit(commission, change, event_id)


def _event_for(c: domain.Commission, change: domain.Change) -> ContractModel | None:
    ids = {
        "tier": c.tier,
        "source_distributor_id": c.source_distributor_id,
        "commission_id": c.commission_id,
        "distributor_id": c.distributor_id,
        "order_id": c.order_id,
        "line_id": c.line_id,
        "plan_version": c.plan_version,
    }
    amount = change.reported_fen
    match change.kind:
        case "accrued":
            status = "pending" if change.status_after == "pending" else "held"
            return cm.CommissionAccrued(
                **ids, amount_fen=amount, rate_bps=c.rate_bps, status=status
            )
        case "released":
            return cm.CommissionReleased(**ids, amount_fen=amount)
        case "voided":
            return cm.CommissionVoided(**ids, amount_fen=amount, reason=change.reason)
        case "adjusted":
            return cm.CommissionAdjusted(**ids, amount_fen=amount, refund_id=change.refund_id)
        case "settled":
            return cm.CommissionSettled(**ids, amount_fen=amount)
        case "reversed":
            return cm.CommissionReversed(**ids, amount_fen=amount, refund_id=change.refund_id)
        case "frozen":
            return None
