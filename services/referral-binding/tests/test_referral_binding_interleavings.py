"""Hypothesis: a random story (qualifications, shares, visits, orders, completions, refunds,
clock ticks) delivered as Kafka would — each key's records in order, the topics and keys
interleaved arbitrarily — through the real handlers and store.

Checked after every record: an attribution names only a user eligible at `paid_at` (as
known when it was decided), and a `binding` attribution rests on a binding protected then.
Checked at the end: a customer's protections never overlap; no protection covers a moment
its distributor was ineligible (unless it had already expired when that was learnt); every
order paid inside a protection extended it; the same records in other batch sizes into an
empty store publish exactly the same events.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fx_common.contracts.attributions import OrderAttributed
from referral_binding.domain import Basis, Binding, ReleaseReason

if TYPE_CHECKING:
    from conftest import Harness, Record

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD = timedelta(days=10)  # the harness's default
DISTRIBUTORS = ("d1", "d2")
CUSTOMERS = ("c1", "c2")
SHARES = {"s1": "d1", "s2": "d2", "s3": "c1"}


@dataclass(frozen=True)
class Step:
    """One thing that happens, `gap_hours` after the previous one."""

    kind: str
    user: str
    share: str | None
    gap_hours: int


KINDS = [
    *("started", "qualified", "failed", "revoked"),
    *("visit", "visit", "paid", "paid", "completed", "refunded", "tick"),
]
steps = st.builds(
    Step,
    kind=st.sampled_from(KINDS),
    user=st.sampled_from(DISTRIBUTORS + CUSTOMERS),
    share=st.sampled_from([None, *SHARES]),
    # Coarse gaps, so instants coincide and protection ends meet other events.
    gap_hours=st.sampled_from([0, 0, 6, 24, 72, 240]),
)


def story(rb: Harness, plan: list[Step]) -> list[tuple[str, Record]]:
    """The records of the plan, in true time order, each with its partition key."""
    at = T0
    out: list[tuple[str, Record]] = []
    paid: list[tuple[str, str]] = []
    for shared, sharer in SHARES.items():
        out.append((f"share:{sharer}", rb.share(shared, sharer, at)))
    # The distributors start assessing, so that bindings are common and failures matter.
    out += [(f"qual:{user}", rb.started(user, at)) for user in DISTRIBUTORS]
    for n, step in enumerate(plan):
        at += timedelta(hours=step.gap_hours)
        user = step.user
        match step.kind:
            case "started" | "qualified" | "failed" | "revoked":
                build: Callable[[str, datetime], Record] = getattr(rb, step.kind)
                out.append((f"qual:{user}", build(user, at)))
            case "visit":
                shared = step.share or "s1"
                sharer = SHARES[shared]
                out.append((f"visit:{user}", rb.visit(shared, sharer, user, at)))
            case "paid":
                order_id = f"o{n}"
                paid.append((order_id, user))
                out.append((f"order:{user}", rb.paid(order_id, user, at, share_id=step.share)))
            case "completed" | "refunded" if paid:
                order_id, buyer = paid[n % len(paid)]
                follow = (
                    rb.completed(order_id, buyer, at)
                    if step.kind == "completed"
                    else rb.refunded(order_id, buyer, f"r{n}", at)
                )
                out.append((f"order:{buyer}", follow))
            case "tick":
                out.append(("clock", rb.tick(at)))
    return out


def interleave(keyed: list[tuple[str, Record]], choices: list[int]) -> list[Record]:
    """Merge the per-key streams in the order `choices` picks them (each stream stays in order)."""
    streams: dict[str, list[Record]] = {}
    for key, item in keyed:
        streams.setdefault(key, []).append(item)
    merged: list[Record] = []
    pick = iter(choices)
    while streams:
        keys = sorted(streams)
        key = keys[next(pick, 0) % len(keys)]
        merged.append(streams[key].pop(0))
        if not streams[key]:
            del streams[key]
    return merged


def check_decision(rb: Harness, before: int) -> None:
    """The attributions the last record published were right when they were decided."""
    new = rb.published()[before:]
    for event in new:
        if not isinstance(event.data, OrderAttributed):
            continue
        attributed, paid_at = event.data, event.data.paid_at
        assert rb.eligibility(attributed.distributor_id).at(paid_at), attributed
        if attributed.basis == Basis.BINDING.value:
            order = rb.orders()[attributed.order_id]
            [binding] = [b for b in rb.bindings() if b.binding_id == order.binding_id]
            assert binding.distributor_id == attributed.distributor_id
            assert binding.protected_at(paid_at)


def check_final(rb: Harness) -> None:
    bindings = rb.bindings()
    for customer in {b.customer_id for b in bindings}:
        live = sorted(
            (b for b in bindings if b.customer_id == customer and b.bound_at < b.protection_ends),
            key=lambda b: b.bound_at,
        )
        for earlier, later in itertools.pairwise(live):
            assert earlier.protection_ends <= later.bound_at, (earlier, later)
    for binding in bindings:
        if binding.release_reason is not ReleaseReason.EXPIRED:  # an expiry is never taken back
            distributor = rb.eligibility(binding.distributor_id)
            ends = binding.protection_ends
            assert distributor.first_ineligible_moment(binding.bound_at, ends) is None, binding
    for order in rb.orders().values():
        covering: list[Binding] = [
            b for b in bindings if b.customer_id == order.buyer_id and b.protected_at(order.paid_at)
        ]
        for binding in covering:
            assert binding.protected_until >= order.paid_at + PERIOD, (order, binding)
            assert order.binding_id == binding.binding_id, (order, binding)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    plan=st.lists(steps, min_size=1, max_size=22),
    choices=st.lists(st.integers(min_value=0, max_value=50), max_size=40),
    batch_sizes=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=10),
)
def test_invariants_hold_in_any_delivery_order(
    new_harness: Callable[..., Harness],
    plan: list[Step],
    choices: list[int],
    batch_sizes: list[int],
) -> None:
    first, again = new_harness(None), new_harness(None)
    try:
        records = interleave(story(first, plan), choices)
        for item in records:
            before = len(first.published())
            outcome = first.run(item)
            assert outcome.dead_lettered == 0
            check_decision(first, before)
        check_final(first)

        start, sizes = 0, iter(batch_sizes * len(records))
        while start < len(records):
            size = next(sizes)
            again.run(*records[start : start + size])
            start += size
        assert again.outbox() == first.outbox()
    finally:
        first.close()
        again.close()
