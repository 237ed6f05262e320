"""Consumes fx.attributions.v1 and fx.qualification.v1; settles on the clock.

Each handler: decode → domain → store + outbox. Completions and refunds are kept even when
their attribution has not arrived yet, and qualification transitions are kept per
distributor, so whichever arrives last finds the others and the outcome is the same.
"""

from __future__ import annotations

from collections.abc import Callable
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


def make_handlers(terms: domain.Terms) -> dict[str, Handler]:
    def on_attributed(uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.OrderAttributed)
        if store.order(uow.session, data.order_id) is not None:
            return  # attributed once: the first attribution stands
        uow.session.add(
            store.OrderRecord(
                order_id=data.order_id,
                distributor_id=data.distributor_id,
                buyer_id=data.buyer_id,
                basis=data.basis,
                paid_at=data.paid_at,
                event_id=event.id,
            )
        )
        plan = store.plan_at(uow.session, data.paid_at, terms.default_rate_bps)
        fate = domain.assess(data.paid_at, store.status_history(uow.session, data.distributor_id))
        completed = store.completion(uow.session, data.order_id)
        refunds = store.refund_lines(uow.session, data.order_id)
        for line in data.lines:
            commission, accrued = domain.Commission.accrue(
                distributor_id=data.distributor_id,
                order_id=data.order_id,
                line=domain.PaidLine(
                    line.line_id, line.sku, line.category, line.quantity, line.paid_amount_fen
                ),
                paid_at=data.paid_at,
                plan=plan,
                fate=fate,
                at=event.time,
            )
            changes = [accrued]
            if completed is not None:
                changes += commission.complete(completed.completed_at, terms.settlement_hold)
            for refund in refunds:
                if refund.line_id == line.line_id:
                    changes += commission.refund(
                        refund.refund_id, refund.refund_amount_fen, refund.refunded_at
                    )
            changes += commission.apply_fate(fate)
            _record(uow, commission, None, changes)

    def on_completed(uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.AttributedOrderCompleted)
        if store.completion(uow.session, data.order_id) is not None:
            return  # an order completes once
        uow.session.add(
            store.CompletionRecord(
                order_id=data.order_id,
                distributor_id=data.distributor_id,
                completed_at=event.time,
                event_id=event.id,
            )
        )
        _update_order(uow, data.order_id, lambda c: c.complete(event.time, terms.settlement_hold))

    def on_refunded(uow: UnitOfWork, event: Event) -> None:
        data = event.data
        assert isinstance(data, att.AttributedOrderRefunded)
        if store.refund_known(uow.session, data.order_id, data.refund_id):
            return  # the same refund told twice
        amounts = {line.line_id: line.refund_amount_fen for line in data.lines}
        for line_id, amount in amounts.items():
            uow.session.add(
                store.RefundLineRecord(
                    order_id=data.order_id,
                    refund_id=data.refund_id,
                    line_id=line_id,
                    refund_amount_fen=amount,
                    refunded_at=event.time,
                    event_id=event.id,
                )
            )

        def refund(commission: domain.Commission) -> list[domain.Change]:
            if commission.line_id not in amounts:
                return []
            return commission.refund(data.refund_id, amounts[commission.line_id], event.time)

        _update_order(uow, data.order_id, refund)

    def on_qualification(uow: UnitOfWork, event: Event) -> None:
        user_id: str = event.data.user_id  # type: ignore[attr-defined]
        status = QUALIFICATION_STATUS[event.type]
        store.add_status_change(uow.session, user_id, status, event.time, event.id)
        if status not in domain.DECISIVE:
            return
        history = store.status_history(uow.session, user_id)
        affected = store.commissions_of_distributor(uow.session, user_id, [*domain.OPEN, "settled"])
        for row in affected:
            commission = store.to_domain(row)
            changes = commission.apply_fate(domain.assess(commission.paid_at, history))
            _record(uow, commission, row, changes)

    return {
        att.ORDER_ATTRIBUTED: on_attributed,
        att.ATTRIBUTED_ORDER_COMPLETED: on_completed,
        att.ATTRIBUTED_ORDER_REFUNDED: on_refunded,
        **dict.fromkeys(QUALIFICATION_STATUS, on_qualification),
    }


def on_tick(uow: UnitOfWork, now: datetime) -> None:
    """Settle frozen commission whose after-sales hold has ended by `now`."""
    for row in store.due_for_settlement(uow.session, now):
        commission = store.to_domain(row)
        _record(uow, commission, row, commission.settle(now))


def _update_order(
    uow: UnitOfWork,
    order_id: str,
    apply: Callable[[domain.Commission], list[domain.Change]],
) -> None:
    for row in store.commissions_of_order(uow.session, order_id):
        commission = store.to_domain(row)
        _record(uow, commission, row, apply(commission))


def _record(
    uow: UnitOfWork,
    commission: domain.Commission,
    row: store.CommissionRecord | None,
    changes: list[domain.Change],
) -> None:
    store.save(uow.session, commission, row)  # also facts that change no amount (refunded_fen)
    for change in changes:
        published = _event_for(commission, change)
        event_id = None
        if published is not None:
            ce_type, model = published
            event = uow.publish(
                COMMISSIONS, ce_type, model, time=change.at, subject=commission.commission_id
            )
            event_id = event.id
        store.add_audit(uow.session, commission, change, cause_id=uow.cause_id, event_id=event_id)


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
