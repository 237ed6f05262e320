"""Event handlers: decode → domain → store + outbox, nothing else.

Consumes `fx.attributions.v1` (attributed orders count, refunds may un-count) and the clock
(closing windows). Publishes every domain event on `fx.qualification.v1` and keeps it in the
user's history. `record` is shared with the HTTP commands so both paths store and publish
the same way.

A batch reads its qualifications set-based (`prepare`, and the tick for the candidates it
fails), changes them in memory and writes them back once, as its transaction commits
(`store.Qualifications`): no SQL per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from fx_common.contracts import qualification as published
from fx_common.contracts.attributions import (
    AttributedOrderRefunded,
    OrderAttributed,
)
from fx_common.contracts.base import ContractModel
from fx_common.envelope import Event
from fx_common.processing import On, TickHandler, UnitOfWork
from qualification import store
from qualification.domain import (
    Applied,
    AssessmentFailed,
    AssessmentProgressed,
    AssessmentStarted,
    DomainEvent,
    Qualification,
    Qualified,
    Revoked,
)


def to_contract(event: DomainEvent) -> tuple[str, ContractModel]:
    """The `fx.qualification.v1` type and data of a domain event."""
    user_id = event.user_id
    match event:
        case Applied():
            return published.DISTRIBUTOR_APPLIED, published.DistributorApplied(user_id=user_id)
        case AssessmentStarted(deadline=deadline, required_orders=required):
            return published.ASSESSMENT_STARTED, published.AssessmentStarted(
                user_id=user_id, deadline=deadline, required_orders=required
            )
        case AssessmentProgressed(qualifying_orders=count, required_orders=required):
            return published.ASSESSMENT_PROGRESSED, published.AssessmentProgressed(
                user_id=user_id, qualifying_orders=count, required_orders=required
            )
        case Qualified(order_ids=order_ids, via=via, appointed_by=by, reason=reason):
            return published.DISTRIBUTOR_QUALIFIED, published.DistributorQualified(
                user_id=user_id,
                order_ids=list(order_ids),
                via=via.value if via is not None else None,
                appointed_by=by,
                reason=reason,
            )
        case AssessmentFailed(qualifying_orders=count):
            return published.ASSESSMENT_FAILED, published.AssessmentFailed(
                user_id=user_id, qualifying_orders=count
            )
        case Revoked(reason=reason):
            return published.DISTRIBUTOR_REVOKED, published.DistributorRevoked(
                user_id=user_id, reason=reason
            )
    raise TypeError(f"no contract for {type(event).__name__}")


Uow = UnitOfWork[store.Qualifications]


def record(
    uow: Uow, qualification: Qualification, events: list[DomainEvent], actor: str | None = None
) -> None:
    """Keep the aggregate for the write, add its new events to the history (with `actor`, who
    ran the command that caused them; None when the service did: orders, the clock) and stage
    them for publishing."""
    qualifications = uow.repo
    qualifications.save(qualification)
    for event in events:
        ce_type, data = to_contract(event)
        qualifications.append_history(
            qualification.user_id,
            ce_type,
            event.at,
            data.model_dump(mode="json", exclude_none=True),
            actor,
        )
        uow.publish(data, time=event.at, subject=qualification.user_id)


def attributed_keys(event: Event, data: OrderAttributed) -> Mapping[str, Iterable[str]]:
    """An attribution needs its distributor only while an assessment runs."""
    return {"assessing": [data.distributor_id]}


def refunded_keys(event: Event, data: AttributedOrderRefunded) -> Mapping[str, Iterable[str]]:
    return {"users": [data.distributor_id]}


def on_order_attributed(uow: Uow, event: Event, data: OrderAttributed) -> None:
    qualification = uow.repo.assessing(data.distributor_id)
    if qualification is None:
        return  # only a running assessment counts orders
    paid_fen = sum(line.paid_amount_fen for line in data.lines)
    events = qualification.order_attributed(
        data.order_id, data.paid_at, paid_fen, data.basis, at=event.time
    )
    # An attribution changes the aggregate only when the order counts, which is always an event.
    if events:
        record(uow, qualification, events)


def on_order_refunded(uow: Uow, event: Event, data: AttributedOrderRefunded) -> None:
    qualification = uow.repo.get(data.distributor_id)
    if qualification is None:
        return
    amount_fen = sum(line.refund_amount_fen for line in data.lines)
    events = qualification.order_refunded(data.order_id, data.refund_id, amount_fen, at=event.time)
    record(uow, qualification, events)


def tick_with_grace(grace: timedelta) -> TickHandler:
    """The sweeper, failing a candidate only once `grace` has passed after the deadline."""

    def tick(uow: UnitOfWork, now: datetime) -> None:
        on_tick(uow, now - grace)

    return tick


def on_tick(uow: UnitOfWork, now: datetime) -> None:
    """Fail every candidate whose window closed before `now`; each fails at its deadline, the
    earliest deadline first.

    The store lists the candidates written before this batch; the repository adds those this
    batch started (a replay applies commands and the clock in one batch). The store may still
    list a candidate this batch qualified or failed already (it is written at commit): its
    aggregate, as this batch left it, then has nothing left to expire.
    """
    qualifications: store.Qualifications = uow.repo
    listed = [*store.assessments_due(uow.session, now), *qualifications.assessing_due(now)]
    due = list(dict.fromkeys(listed))
    qualifications.read(due)
    found = [q for q in map(qualifications.get, due) if q is not None]
    for qualification in sorted(found, key=lambda q: (q.deadline or now, q.user_id)):
        record(uow, qualification, qualification.expire(now))


HANDLERS: tuple[On[OrderAttributed] | On[AttributedOrderRefunded], ...] = (
    On((OrderAttributed,), on_order_attributed, keys=attributed_keys),
    On((AttributedOrderRefunded,), on_order_refunded, keys=refunded_keys),
)
