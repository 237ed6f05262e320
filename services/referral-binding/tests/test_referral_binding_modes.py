"""Binding modes (FX_BINDING_MODE, docs/domain.md §2.6) on plain objects: `permanent` never
lapses, `overwrite` lets the latest eligible visit re-bind; in every mode the bindings stay
disjoint intervals, so "who owned customer X at time T" has one answer (hypothesis)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from referral_binding.binding_modes import PERMANENT_UNTIL, BindingMode
from referral_binding.domain import (
    DEFAULT_RULES,
    BindingCreated,
    BindingEvent,
    BindingReleased,
    CustomerBindings,
    Eligibility,
    EligibilityChange,
    EligibilityOf,
    ReleaseReason,
    Rules,
    VisitOutcome,
    order_paid,
    visit,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
P = timedelta(days=10)
PERMANENT = Rules(binding_mode=BindingMode.PERMANENT)
OVERWRITE = Rules(binding_mode=BindingMode.OVERWRITE)
ALWAYS = Eligibility([EligibilityChange(T0 - timedelta(days=1000), True, qualified=True)])


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def everyone_eligible_but(
    *customers: str, revoked: dict[str, float] | None = None
) -> EligibilityOf:
    def of(user_id: str) -> Eligibility:
        if user_id in customers:
            return Eligibility()
        changes = [EligibilityChange(T0 - timedelta(days=1000), True, qualified=True)]
        if revoked and user_id in revoked:
            changes.append(EligibilityChange(day(revoked[user_id]), False))
        return Eligibility(changes)

    return of


def share_visit(
    customer: CustomerBindings,
    sharer: str,
    at: float,
    rules: Rules,
    binding_id: str | None = None,
    eligibility_of: EligibilityOf | None = None,
) -> tuple[VisitOutcome, list[BindingEvent]]:
    result = visit(
        binding_id=binding_id or f"b-{sharer}-{at}",
        share_id=f"s-{sharer}",
        sharer_id=sharer,
        visitor_id=customer.customer_id,
        visited_at=day(at),
        period=P,
        customer=customer,
        eligibility_of=eligibility_of or everyone_eligible_but(customer.customer_id),
        rules=rules,
    )
    return result.decision.outcome, result.events


def pay(
    customer: CustomerBindings, order_id: str, at: float, rules: Rules
) -> tuple[str | None, list[BindingEvent]]:
    result = order_paid(
        binding_id=f"b-{order_id}",
        order_id=order_id,
        buyer_id=customer.customer_id,
        paid_at=day(at),
        share_id=None,
        share_sharer_id=None,
        period=P,
        customer=customer,
        eligibility_of=everyone_eligible_but(customer.customer_id),
        rules=rules,
    )
    customer.latest_order_paid_at = max(customer.latest_order_paid_at or day(at), day(at))
    who = result.attribution.distributor_id if result.attribution else None
    return who, result.events


def test_the_default_is_the_seeds_protection() -> None:
    assert DEFAULT_RULES.binding_mode is BindingMode.PROTECTION
    assert DEFAULT_RULES.protection_end(day(1), P) == day(11)


def test_permanent_binding_never_lapses_and_has_nothing_to_extend() -> None:
    c1 = CustomerBindings("c1", [])
    outcome, events = share_visit(c1, "d1", 1, PERMANENT)
    assert outcome is VisitOutcome.BOUND
    assert [type(e) for e in events] == [BindingCreated]
    assert events[0].binding.protected_until == PERMANENT_UNTIL
    assert c1.expire_until(day(10_000)) == []
    who, extended = pay(c1, "o-1", 5_000, PERMANENT)
    assert (who, extended) == ("d1", [])
    outcome, events = share_visit(c1, "d2", 6_000, PERMANENT)
    assert (outcome, events) == (VisitOutcome.CONTESTED, [])
    assert c1.protected_at(day(20_000)) is not None


def test_a_permanent_binding_still_ends_when_its_distributor_is_revoked() -> None:
    c1 = CustomerBindings("c1", [])
    of = everyone_eligible_but("c1", revoked={"d1": 30})
    outcome, events = share_visit(c1, "d1", 1, PERMANENT, eligibility_of=of)
    assert [type(e) for e in events] == [BindingCreated, BindingReleased]
    released = events[1].binding
    assert (released.released_at, released.release_reason) == (
        day(30),
        ReleaseReason.DISTRIBUTOR_INELIGIBLE,
    )
    outcome, events = share_visit(c1, "d2", 31, PERMANENT, eligibility_of=of)
    assert outcome is VisitOutcome.BOUND


def test_overwrite_the_latest_eligible_visit_rebinds() -> None:
    c1 = CustomerBindings("c1", [])
    share_visit(c1, "d1", 1, OVERWRITE, binding_id="b1")
    outcome, events = share_visit(c1, "d2", 3, OVERWRITE, binding_id="b2")
    assert outcome is VisitOutcome.BOUND
    assert [type(e) for e in events] == [BindingReleased, BindingCreated]
    first, second = events[0].binding, events[1].binding
    assert (first.binding_id, first.released_at, first.release_reason) == (
        "b1",
        day(3),
        ReleaseReason.OVERWRITTEN,
    )
    assert (second.distributor_id, second.bound_at, second.protected_until) == (
        "d2",
        day(3),
        day(13),
    )
    # Intervals: d1 owned [1, 3), d2 from 3.
    assert c1.protected_at(day(2.9)).distributor_id == "d1"  # type: ignore[union-attr]
    assert c1.protected_at(day(3)).distributor_id == "d2"  # type: ignore[union-attr]
    # The same distributor's visit changes nothing; d1 may take the customer back.
    assert share_visit(c1, "d2", 4, OVERWRITE) == (VisitOutcome.ALREADY_BOUND, [])
    outcome, events = share_visit(c1, "d1", 5, OVERWRITE, binding_id="b3")
    assert outcome is VisitOutcome.BOUND and events[1].binding.binding_id == "b3"


def test_overwrite_never_rewrites_what_was_decided_after_the_visit() -> None:
    c1 = CustomerBindings("c1", [])
    share_visit(c1, "d1", 1, OVERWRITE)
    assert pay(c1, "o-1", 4, OVERWRITE)[0] == "d1"
    # A visit of d2 dated before that order, learnt after it: it stays contested.
    assert share_visit(c1, "d2", 3, OVERWRITE) == (VisitOutcome.CONTESTED, [])
    assert share_visit(c1, "d2", 5, OVERWRITE)[0] is VisitOutcome.BOUND


def test_overwrite_needs_an_eligible_sharer_and_bindings_still_expire() -> None:
    c1 = CustomerBindings("c1", [])
    share_visit(c1, "d1", 1, OVERWRITE)
    of = everyone_eligible_but("c1", "d2")
    assert share_visit(c1, "d2", 2, OVERWRITE, eligibility_of=of) == (
        VisitOutcome.SHARER_INELIGIBLE,
        [],
    )
    [expired] = c1.expire_until(day(12))
    assert expired.binding.release_reason is ReleaseReason.EXPIRED


VISITS = st.lists(
    st.tuples(
        st.sampled_from(["visit", "order"]),
        st.sampled_from(["d1", "d2", "d3"]),
        st.integers(min_value=0, max_value=60),
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(list(BindingMode)), steps=VISITS)
def test_in_every_mode_a_customer_has_one_owner_at_a_time(
    mode: BindingMode, steps: list[tuple[str, str, int]]
) -> None:
    """Visits and orders in event-time order: the protections never overlap; an order is
    attributed to whoever's binding protects its payment time; `permanent` never expires or
    extends; in `overwrite` an eligible visit always ends up owning the customer; in the
    others a visit never takes a protected customer away."""
    rules = Rules(binding_mode=mode)
    c1 = CustomerBindings("c1", [])
    for n, (kind, sharer, at) in enumerate(sorted(steps, key=lambda s: (s[2], s[0]))):
        moment = at + n / 1000  # distinct instants, in order
        before = c1.protected_at(day(moment))
        if kind == "order":
            who, events = pay(c1, f"o-{n}", moment, rules)
            assert who == (before.distributor_id if before else None)
            if mode is BindingMode.PERMANENT:
                assert events == []
            continue
        outcome, events = share_visit(c1, sharer, moment, rules, binding_id=f"b-{n}")
        owner = c1.protected_at(day(moment))
        assert owner is not None
        if mode is BindingMode.OVERWRITE or before is None:
            assert owner.distributor_id == sharer
        else:
            assert owner == before and events == []
        if outcome is VisitOutcome.BOUND and before is not None:
            assert mode is BindingMode.OVERWRITE and before.distributor_id != sharer
    bindings = sorted(c1.bindings, key=lambda b: b.bound_at)
    for earlier, later in itertools.pairwise(bindings):
        assert earlier.protection_ends <= later.bound_at
    reasons = {b.release_reason for b in c1.bindings}
    if mode is BindingMode.PERMANENT:
        assert reasons <= {None} and len(bindings) <= 1
    if mode is not BindingMode.OVERWRITE:
        assert ReleaseReason.OVERWRITTEN not in reasons
