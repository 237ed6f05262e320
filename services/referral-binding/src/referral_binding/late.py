"""Late visits on the consume path: load the visitor's later orders, apply
`late_visits.bind_late`, record the bindings and attributions, and publish what the
event-time order would have published — with the same ids.

Determinism: each late attribution (and the order's extension before it) is published as
caused by the order's own `mall.order.paid` event, and each completion or refund kept for
the order (`RbFollowUp`) as caused by its own event, so a replay in event-time order (visit
first) yields the same event ids and bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from fx_common.contracts import attributions, mall_orders
from fx_common.contracts.mall_orders import OrderLine
from fx_common.envelope import Event
from fx_common.processing import UnitOfWork
from referral_binding import domain, store
from referral_binding.late_visits import PaidOrder, bind_late, may_bind_late

_FOLLOW_UPS = store.RbFollowUp.__table__  # type: ignore[attr-defined]

Uow = UnitOfWork[store.Repository]
Record = Callable[[Uow, Sequence[domain.BindingEvent]], None]


def lines_json(data: mall_orders.OrderPaid) -> str:
    """What an unattributed order keeps of its lines, for a late attribution."""
    return json.dumps([line.model_dump(mode="json", exclude_none=True) for line in data.lines])


def keep_follow_up(uow: Uow, event: Event, order_id: str) -> None:
    """A completion or refund of a paid, unattributed order: kept for a late visit (written
    now, not staged, so a late visit later in the same batch finds it)."""
    row = {
        "event_id": event.id,
        "order_id": order_id,
        "ce_type": event.type,
        "occurred_at": event.time,
        "data": event.data.model_dump_json(),
    }
    uow.session.connection().execute(insert(_FOLLOW_UPS), row)


def try_bind_late(
    uow: Uow,
    *,
    binding_id: str,
    share_id: str,
    sharer_id: str,
    visitor_id: str,
    visited_at: datetime,
    period: timedelta,
    horizon: timedelta,
    rules: domain.Rules,
    record: Record,
) -> bool:
    """Apply the late-visit rule to a visit decided `late`; True when it bound."""
    batch = uow.repo
    rows = batch.orders_since(visitor_id, visited_at)
    later = [PaidOrder(r["order_id"], r["paid_at"], r["distributor_id"] is not None) for r in rows]
    customer = batch.customer(visitor_id)
    if not may_bind_late(visited_at, later, customer, horizon):
        return False
    result = bind_late(
        binding_id=binding_id,
        share_id=share_id,
        sharer_id=sharer_id,
        visitor_id=visitor_id,
        visited_at=visited_at,
        period=period,
        later_orders=later,
        customer=customer,
        eligibility_of=batch.eligibility_of,
        rules=rules,
    )
    record(uow, result.events)
    by_id = {r["order_id"]: r for r in rows}
    for late in result.orders:
        row = by_id[late.order.order_id]
        with uow.on_behalf_of(row["event_id"] or row["order_id"]):
            record(uow, late.events)
            if late.attribution is not None:
                _attribute(uow, row, late.attribution, late.binding_id)
    return True


def _attribute(
    uow: Uow, row: dict[str, Any], attribution: domain.Attribution, binding_id: str | None
) -> None:
    batch = uow.repo
    lines = [OrderLine.model_validate(line) for line in json.loads(row["lines"] or "[]")]
    batch.attribute_order(
        {
            **row,
            "distributor_id": attribution.distributor_id,
            "basis": attribution.basis.value,
            "binding_id": binding_id,
            "lines": None,
        }
    )
    attributed = attributions.OrderAttributed(
        order_id=row["order_id"],
        buyer_id=row["buyer_id"],
        distributor_id=attribution.distributor_id,
        basis=attribution.basis.value,
        paid_at=row["paid_at"],
        lines=lines,
    )
    uow.publish(attributed, time=row["paid_at"])
    query = (
        select(_FOLLOW_UPS)
        .where(_FOLLOW_UPS.c.order_id == row["order_id"])
        .order_by(_FOLLOW_UPS.c.occurred_at, _FOLLOW_UPS.c.event_id)
    )
    for follow_up in uow.session.connection().execute(query).mappings().all():
        with uow.on_behalf_of(follow_up["event_id"]):
            _publish_follow_up(uow, follow_up, attribution.distributor_id)


def _publish_follow_up(uow: Uow, follow_up: Any, distributor_id: str) -> None:
    order_id, at = follow_up["order_id"], follow_up["occurred_at"]
    if follow_up["ce_type"] == mall_orders.ORDER_COMPLETED:
        completed = attributions.AttributedOrderCompleted(
            order_id=order_id, distributor_id=distributor_id
        )
        uow.publish(completed, time=at)
        return
    refund = mall_orders.OrderRefunded.model_validate_json(follow_up["data"])
    refunded = attributions.AttributedOrderRefunded(
        order_id=order_id, distributor_id=distributor_id, refund_id=refund.refund_id,
        lines=refund.lines,
    )  # fmt: skip
    uow.publish(refunded, time=at)
