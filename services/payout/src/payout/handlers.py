"""Consumed events: settled commission is credited, reversed commission is debited.

Other commission events (accrued, released, voided, adjusted) do not touch money that can be
withdrawn, so they are not handled (the processor counts them as ignored).

Consumed entries take no account lock: a credit only adds, and a clawback may drive the
balance negative by design (docs/domain.md §4.1); the withdrawal command takes the lock, and it
reads the committed ledger.
"""

from __future__ import annotations

from collections.abc import Sequence

from fx_common.contracts.commissions import (
    COMMISSION_REVERSED,
    COMMISSION_SETTLED,
    CommissionReversed,
    CommissionSettled,
)
from fx_common.envelope import Event
from fx_common.processing import Handler, Rejected, UnitOfWork
from payout import domain, store

CREDITED = "credited"  # commission id -> the event id that credited it


def prepare(uow: UnitOfWork, events: Sequence[Event]) -> None:
    """One query for the whole batch: which of its settled commissions were credited already."""
    settled = [e.data.commission_id for e in events if isinstance(e.data, CommissionSettled)]
    uow.cache[CREDITED] = store.settlements_of(uow.session, settled)


def on_commission_settled(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    assert isinstance(data, CommissionSettled)
    # The inbox already drops a redelivered event; a second settlement under another event id
    # is a producer fault that would pay the commission twice, so it goes to the DLQ.
    credited: dict[str, str] = uow.cache[CREDITED]
    earlier = credited.get(data.commission_id)
    if earlier is not None:
        raise Rejected(
            "duplicate_settlement",
            f"commission {data.commission_id} was already credited by event {earlier}",
        )
    credited[data.commission_id] = event.id
    store.stage_entry(
        uow,
        data.distributor_id,
        domain.credit(data.amount_fen),
        source_event_id=event.id,
        occurred_at=event.time,
        commission_id=data.commission_id,
    )


def on_commission_reversed(uow: UnitOfWork, event: Event) -> None:
    data = event.data
    assert isinstance(data, CommissionReversed)
    # A clawback is booked even when it drives the balance negative: the money was paid on a
    # refunded order, and withdrawals stay refused until new credits cover it.
    store.stage_entry(
        uow,
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
