"""Consumes fx.attributions.v1 and fx.qualification.v1; settles on the clock.

Each handler: decode → domain → store + outbox. Completions and refunds are kept even when
their attribution has not arrived yet, and qualification transitions are kept per
distributor, so whichever arrives last finds the others and the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from commission import domain, store
from fx_common.contracts import attributions as att
from fx_common.contracts import commissions as cm
from fx_common.contracts import qualification as q
from fx_common.contracts.base import ContractModel
from fx_common.contracts.topics import COMMISSIONS
from fx_common.envelope import Event
from fx_common.processing import Handler, UnitOfWork

QUALIFICATION_STATUS: dict[str, domain.QualificationStatus] = {
    q.DISTRIBUTOR_APPLIED: "applied",
    q.ASSESSMENT_STARTED: "assessing",
    q.ASSESSMENT_PROGRESSED: "assessing",
    q.DISTRIBUTOR_QUALIFIED: "qualified",
    q.ASSESSMENT_FAILED: "failed",
    q.DISTRIBUTOR_REVOKED: "revoked",
}


def prepare(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """Load, in a few queries, what the batch's handlers will look up (`store.Repository`)."""
    orders: set[str] = set()
    distributors: set[str] = set()
    reassessed: set[str] = set()
    paid_at: list[datetime] = []
    for event in events:
        data = event.data
        if isinstance(data, att.OrderAttributed):
            orders.add(data.order_id)
            distributors.add(data.distributor_id)
            paid_at.append(data.paid_at)
        elif isinstance(data, att.AttributedOrderCompleted | att.AttributedOrderRefunded):
            orders.add(data.order_id)
        elif event.type in QUALIFICATION_STATUS:
            user_id: str = data.user_id  # type: ignore[attr-defined]
            distributors.add(user_id)
            if QUALIFICATION_STATUS[event.type] in domain.DECISIVE:
                reassessed.add(user_id)
    store.repository_of(uow).load(
        orders=orders, distributors=distributors, reassessed=reassessed, paid_at=paid_at
    )


def make_handlers(terms: domain.Terms) -> dict[str, Handler]:
    """The handlers under `terms`, by event type."""
    handlers = CommissionHandlers(terms)
    return {
        att.ORDER_ATTRIBUTED: handlers.on_attributed,
        att.ATTRIBUTED_ORDER_COMPLETED: handlers.on_completed,
        att.ATTRIBUTED_ORDER_REFUNDED: handlers.on_refunded,
        **dict.fromkeys(QUALIFICATION_STATUS, handlers.on_qualification),
    }


class CommissionHandlers:
    """Each handler loads from the batch `prepare` loaded, calls the domain and stages the
    changes (`_record`)."""

    def __init__(self, terms: domain.Terms) -> None:
        self.terms = terms

    def on_attributed(self, uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.OrderAttributed)
        batch = store.repository_of(uow)
        if data.order_id in batch.attributed:
            return  # attributed once: the first attribution stands
        batch.add_order(
            data.order_id, data.distributor_id, data.buyer_id, data.basis, data.paid_at, event.id
        )
        plan = batch.plans.at(data.paid_at, self.terms.default_rate_bps)
        fate = domain.assess(data.paid_at, batch.history[data.distributor_id])
        completed_at = batch.completed_at.get(data.order_id)
        refunds = batch.refund_lines(data.order_id)
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

    def on_completed(self, uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.AttributedOrderCompleted)
        batch = store.repository_of(uow)
        if data.order_id in batch.completed_at:
            return  # an order completes once
        batch.add_completion(data.order_id, data.distributor_id, event.time, event.id)
        hold = self.terms.settlement_hold
        _update_order(uow, data.order_id, lambda c: c.complete(event.time, hold))

    def on_refunded(self, uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.AttributedOrderRefunded)
        batch = store.repository_of(uow)
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

    def on_qualification(self, uow: UnitOfWork, event: Event) -> None:
        user_id: str = event.data.user_id  # type: ignore[attr-defined]
        status = QUALIFICATION_STATUS[event.type]
        batch = store.repository_of(uow)
        batch.add_status_change(user_id, status, event.time, event.id)
        if status not in domain.DECISIVE:
            return
        history = batch.history[user_id]
        for commission in batch.open_or_settled_of(user_id):
            fate = domain.assess(commission.paid_at, history)
            _record(uow, commission, commission.apply_fate(fate))


def on_tick(uow: UnitOfWork, now: datetime) -> None:
    """Settle frozen commission whose after-sales hold has ended by `now`."""
    for commission in store.repository_of(uow).due_for_settlement(now):
        _record(uow, commission, commission.settle(now))


def _update_order(
    uow: UnitOfWork,
    order_id: str,
    apply: Callable[[domain.Commission], list[domain.Change]],
) -> None:
    for commission in store.repository_of(uow).commissions_of_order(order_id):
        _record(uow, commission, apply(commission))


def _record(uow: UnitOfWork, commission: domain.Commission, changes: list[domain.Change]) -> None:
    batch = store.repository_of(uow)
    batch.save(commission)  # also facts that change no amount (refunded_fen)
    for change in changes:
        published = _event_for(commission, change)
        event_id = None
        if published is not None:
            ce_type, model = published
            event = uow.publish(
                COMMISSIONS, ce_type, model, time=change.at, subject=commission.commission_id
            )
            event_id = event.id
        batch.add_audit(commission, change, event_id)


def _event_for(c: domain.Commission, change: domain.Change) -> tuple[str, ContractModel] | None:
    ids = {
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
            return cm.COMMISSION_ACCRUED, cm.CommissionAccrued(
                **ids, amount_fen=amount, rate_bps=c.rate_bps, status=status
            )
        case "released":
            return cm.COMMISSION_RELEASED, cm.CommissionReleased(**ids, amount_fen=amount)
        case "voided":
            return cm.COMMISSION_VOIDED, cm.CommissionVoided(
                **ids, amount_fen=amount, reason=change.reason
            )
        case "adjusted":
            return cm.COMMISSION_ADJUSTED, cm.CommissionAdjusted(
                **ids, amount_fen=amount, refund_id=change.refund_id
            )
        case "settled":
            return cm.COMMISSION_SETTLED, cm.CommissionSettled(**ids, amount_fen=amount)
        case "reversed":
            return cm.COMMISSION_REVERSED, cm.CommissionReversed(
                **ids, amount_fen=amount, refund_id=change.refund_id
            )
        case "frozen":
            return None
