"""The late-visit rule (DOMAIN §2, out-of-order input), as plain Python.

The share pipeline may lag the order pipeline: a buyer's order is processed before the visit
that brought them, finds no binding and stays unattributed. When that earlier-dated visit
arrives — or is reopened — and would have bound the buyer but for those orders, it binds as
of the visit time, and those orders are attributed then, as the event-time order would have
done, provided that:
- every order of the visitor paid at or after the visit is unattributed (an attributed order
  is never moved to another distributor) and was paid less than `horizon` after the visit;
- no binding of the visitor starts after the visit (nothing else was decided since).

Each order then extends the new binding and is attributed at its payment time by the usual
rules (§2.4: the bound distributor must be eligible at `paid_at`). Nothing here reads a clock
or touches a store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from referral_binding.domain import (
    DEFAULT_RULES,
    Attribution,
    BindingEvent,
    CustomerBindings,
    EligibilityOf,
    Rules,
    attribute,
)

DEFAULT_LATE_VISIT_HORIZON = timedelta(hours=24)


@dataclass(frozen=True)
class PaidOrder:
    """An order of the visitor as the store knows it."""

    order_id: str
    paid_at: datetime
    attributed: bool


@dataclass(frozen=True)
class LateAttribution:
    order: PaidOrder
    attribution: Attribution | None
    binding_id: str | None
    events: list[BindingEvent]
    """The extension (and any release) the order causes on the binding, in order."""


@dataclass(frozen=True)
class LateVisitResult:
    events: list[BindingEvent]
    """The binding's creation (after releasing what ended by the visit)."""
    orders: list[LateAttribution]


def may_bind_late(
    visited_at: datetime,
    later_orders: list[PaidOrder],
    customer: CustomerBindings,
    horizon: timedelta,
) -> bool:
    """Whether a visit found `late` only because of unattributed orders paid less than
    `horizon` after it (see the module's rule)."""
    if not later_orders or horizon <= timedelta(0):
        return False
    if any(b.bound_at > visited_at for b in customer.bindings):
        return False
    return all(
        not o.attributed and visited_at <= o.paid_at < visited_at + horizon for o in later_orders
    )


def bind_late(
    *,
    binding_id: str,
    share_id: str,
    sharer_id: str,
    visitor_id: str,
    visited_at: datetime,
    period: timedelta,
    later_orders: list[PaidOrder],
    customer: CustomerBindings,
    eligibility_of: EligibilityOf,
    rules: Rules = DEFAULT_RULES,
) -> LateVisitResult:
    """Bind at `visited_at`, then attribute and extend with each later order in `paid_at`
    order. The caller has checked `may_bind_late` and that the visit binds by §2.1."""
    sharer = eligibility_of(sharer_id)
    events: list[BindingEvent] = [*customer.expire_until(visited_at)]
    events += customer.bind(
        binding_id, sharer_id, share_id, visited_at, period, sharer, rules=rules
    )
    done: list[LateAttribution] = []
    for order in sorted(later_orders, key=lambda o: (o.paid_at, o.order_id)):
        protected = customer.protected_at(order.paid_at)
        if protected is None:  # released before the order (the sharer became ineligible)
            done.append(LateAttribution(order, None, None, []))
            continue
        distributor = eligibility_of(protected.distributor_id)
        attribution = attribute(
            buyer_id=visitor_id,
            paid_at=order.paid_at,
            buyer=eligibility_of(visitor_id),
            binding=protected,
            bound_distributor=distributor,
            share_sharer_id=None,
            sharer=None,
            rules=rules,
        )
        extended = customer.extend(
            protected, order.order_id, order.paid_at, period, distributor, rules
        )
        done.append(LateAttribution(order, attribution, protected.binding_id, extended))
    return LateVisitResult(events, done)
