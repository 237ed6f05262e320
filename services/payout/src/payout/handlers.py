"""Consumed events: settled commission is credited, reversed commission is debited.

Other commission events (accrued, released, voided, adjusted) do not touch money that can be
withdrawn, so they are not handled (the processor counts them as ignored).
"""

from __future__ import annotations

from fx_common.contracts.commissions import (
    COMMISSION_REVERSED,
    COMMISSION_SETTLED,
    CommissionReversed,
    CommissionSettled,
)
from fx_common.envelope import Event
from fx_common.processing import Handler, Rejected, UnitOfWork
from payout import domain, store


def on_commission_settled(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    assert isinstance(data, CommissionSettled)
    store.lock_account(uow.session, data.distributor_id, event.time)
    # The inbox already drops a redelivered event; a second settlement under another event id
    # is a producer fault that would pay the commission twice, so it goes to the DLQ.
    earlier = store.settlement_of(uow.session, data.commission_id)
    if earlier is not None:
        raise Rejected(
            "duplicate_settlement",
            f"commission {data.commission_id} was already credited by event {earlier}",
        )
    store.append_entry(
        uow.session,
        data.distributor_id,
        domain.credit(data.amount_fen),
        source_event_id=event.id,
        occurred_at=event.time,
        commission_id=data.commission_id,
    )


def on_commission_reversed(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    assert isinstance(data, CommissionReversed)
    store.lock_account(uow.session, data.distributor_id, event.time)
    # A clawback is booked even when it drives the balance negative: the money was paid on a
    # refunded order, and withdrawals stay refused until new credits cover it.
    store.append_entry(
        uow.session,
        data.distributor_id,
        domain.debit(data.amount_fen),
        source_event_id=event.id,
        occurred_at=event.time,
        commission_id=data.commission_id,
    )


HANDLERS: dict[str, Handler] = {
    COMMISSION_SETTLED: on_commission_settled,
    COMMISSION_REVERSED: on_commission_reversed,
}
