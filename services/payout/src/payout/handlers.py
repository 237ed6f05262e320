"""Consumed events: settled commission is credited, reversed commission is debited.

Other commission events (accrued, released, voided, adjusted) do not touch money that can be
withdrawn, so they are not handled (the processor counts them as ignored).

Consumed entries take no account lock: a credit only adds, and a clawback may drive the
balance negative by design (docs/domain.md §4.1); the withdrawal command takes the lock, and it
reads the committed ledger.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fx_common.contracts.commissions import CommissionReversed, CommissionSettled
from fx_common.envelope import Event
from fx_common.processing import On, Rejected, UnitOfWork
from payout import domain, store

Uow = UnitOfWork[store.Repository]


def settled_keys(event: Event, data: CommissionSettled) -> Mapping[str, Iterable[str]]:
    """A settlement needs to know whether its commission was credited already."""
    return {"settled": [data.commission_id]}


def on_commission_settled(uow: Uow, event: Event, data: CommissionSettled) -> None:
    # The inbox already drops a redelivered event; a second settlement under another event id
    # is a producer fault that would pay the commission twice, so it goes to the DLQ.
    credited = uow.repo.credited
    earlier = credited.get(data.commission_id)
    if earlier is not None:
        raise Rejected(
            "duplicate_settlement",
            f"commission {data.commission_id} was already credited by event {earlier}",
        )
    credited[data.commission_id] = event.id
    uow.repo.stage_entry(
        data.distributor_id,
        domain.credit(data.amount_fen),
        source_event_id=event.id,
        occurred_at=event.time,
        commission_id=data.commission_id,
    )


def on_commission_reversed(uow: Uow, event: Event, data: CommissionReversed) -> None:
    # A clawback is booked even when it drives the balance negative: the money was paid on a
    # refunded order, and withdrawals stay refused until new credits cover it.
    uow.repo.stage_entry(
        data.distributor_id,
        domain.debit(data.amount_fen),
        source_event_id=event.id,
        occurred_at=event.time,
        commission_id=data.commission_id,
    )


HANDLERS: tuple[On[CommissionSettled] | On[CommissionReversed], ...] = (
    On((CommissionSettled,), on_commission_settled, keys=settled_keys),
    On((CommissionReversed,), on_commission_reversed),
)
