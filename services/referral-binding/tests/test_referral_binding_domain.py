"""The rules of DOMAIN §2 on plain objects: eligibility in time, binding intervals, visits,
attribution, extension, release — and hypothesis runs of the rules in any processing order."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from referral_binding.domain import (
    Basis,
    Binding,
    BindingCreated,
    BindingExtended,
    BindingReleased,
    CustomerBindings,
    Eligibility,
    EligibilityChange,
    EligibilityOf,
    OrderResult,
    ReleaseReason,
    VisitOutcome,
    attribute,
    decide_visit,
    distributor_changed,
    expire,
    expire_all,
    order_paid,
    release_if_ineligible,
    visit,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
P = timedelta(days=10)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def history(*changes: tuple[float, bool]) -> Eligibility:
    return Eligibility(EligibilityChange(day(at), eligible) for at, eligible in changes)


NOBODY = Eligibility()
ALWAYS = history((-1000, True))


def binding(
    bound: float = 1,
    until: float = 11,
    distributor: str = "d1",
    released: float | None = None,
    binding_id: str = "b1",
) -> Binding:
    return Binding(
        binding_id=binding_id,
        customer_id="c1",
        distributor_id=distributor,
        share_id="s1",
        bound_at=day(bound),
        protected_until=day(until),
        released_at=day(released) if released is not None else None,
        release_reason=ReleaseReason.EXPIRED if released is not None else None,
    )


def eligibility_of(**users: Eligibility) -> EligibilityOf:
    return lambda user_id: users.get(user_id, NOBODY)


# --- eligibility ----------------------------------------------------------------------------


def test_nobody_is_eligible_without_history() -> None:
    assert not NOBODY.at(day(0))
    assert NOBODY.first_ineligible_moment(day(0), day(1)) == day(0)


def test_eligibility_holds_from_its_start_until_the_next_change() -> None:
    user = history((1, True), (5, False), (8, True))
    assert [user.at(day(n)) for n in (0.5, 1, 4.9, 5, 7, 8, 100)] == [
        False, True, True, False, False, True, True,
    ]  # fmt: skip


def test_simultaneous_changes_resolve_to_ineligible_in_any_order() -> None:
    for changes in ([(1, True), (1, False)], [(1, False), (1, True)]):
        assert not history(*changes).at(day(1))


def test_first_ineligible_moment_inside_a_window() -> None:
    user = history((1, True), (5, False), (8, True))
    assert user.first_ineligible_moment(day(2), day(9)) == day(5)
    assert user.first_ineligible_moment(day(2), day(5)) is None
    assert user.first_ineligible_moment(day(6), day(9)) == day(6)
    assert user.first_ineligible_moment(day(8), day(20)) is None
    assert user.first_ineligible_moment(day(3), day(3)) is None


moments = st.integers(min_value=0, max_value=40).map(lambda n: day(n / 2))
changes = st.lists(st.tuples(moments, st.booleans()), max_size=8)


@given(changes, st.randoms(use_true_random=False), moments)
def test_eligibility_does_not_depend_on_the_order_changes_were_learnt(
    items: list[tuple[datetime, bool]], rnd: random.Random, moment: datetime
) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    a = Eligibility(EligibilityChange(*c) for c in items)
    b = Eligibility(EligibilityChange(*c) for c in shuffled)
    assert a.at(moment) == b.at(moment)


@given(changes, moments, moments)
def test_first_ineligible_moment_is_the_earliest_ineligible_instant(
    items: list[tuple[datetime, bool]], start: datetime, end: datetime
) -> None:
    user = Eligibility(EligibilityChange(*c) for c in items)
    found = user.first_ineligible_moment(start, end)
    probes = sorted({start, *(c.since for c in user.changes if start <= c.since < end)})
    probes = [p for p in probes if p < end]
    expected = next((p for p in probes if not user.at(p)), None)
    assert found == expected


# --- binding intervals ----------------------------------------------------------------------


def test_protected_from_bound_at_until_the_end_exclusive() -> None:
    b = binding(bound=1, until=11)
    assert [b.protected_at(day(n)) for n in (0.9, 1, 10.9, 11)] == [False, True, True, False]


def test_release_ends_protection_early() -> None:
    b = binding(bound=1, until=11, released=4)
    assert b.protection_ends == day(4)
    assert b.protected_at(day(3.9)) and not b.protected_at(day(4))


def test_settle_releases_at_the_failure_inside_the_protection() -> None:
    released = release_if_ineligible(binding(), history((0, True), (4, False)))
    assert released is not None
    assert (released.binding.released_at, released.binding.release_reason) == (
        day(4),
        ReleaseReason.DISTRIBUTOR_INELIGIBLE,
    )


def test_settle_releases_at_the_start_when_ineligible_from_the_start() -> None:
    released = release_if_ineligible(binding(bound=5), history((0, True), (3, False)))
    assert released is not None and released.binding.released_at == day(5)


def test_settle_leaves_eligible_released_and_expired_bindings_alone() -> None:
    assert release_if_ineligible(binding(), ALWAYS) is None
    assert release_if_ineligible(binding(released=3), history((0, True), (2, False))) is None
    assert release_if_ineligible(binding(until=11), history((0, True), (11, False))) is None


def test_expire_at_the_protection_end() -> None:
    assert expire(binding(until=11), day(10.9)) is None
    released = expire(binding(until=11), day(30))
    assert released is not None
    assert (released.binding.released_at, released.binding.release_reason) == (
        day(11),
        ReleaseReason.EXPIRED,
    )
    assert expire(binding(until=11, released=5), day(30)) is None
    assert [r.binding.binding_id for r in expire_all(
        [binding(until=11), binding(until=20, binding_id="b2")], day(15)
    )] == ["b1"]  # fmt: skip


def test_distributor_changed_releases_only_the_affected_bindings() -> None:
    bindings = [binding(bound=1, until=11), binding(bound=12, until=22, binding_id="b2")]
    released = distributor_changed(bindings, history((0, True), (11.5, False)))
    assert [(r.binding.binding_id, r.binding.released_at) for r in released] == [("b2", day(12))]


# --- visits ---------------------------------------------------------------------------------


def decide(
    sharer: str = "d1",
    visitor: str = "c1",
    at: float = 1,
    sharer_history: Eligibility = ALWAYS,
    visitor_history: Eligibility = NOBODY,
    customer: CustomerBindings | None = None,
) -> VisitOutcome:
    return decide_visit(
        sharer_id=sharer,
        visitor_id=visitor,
        visited_at=day(at),
        sharer=sharer_history,
        visitor=visitor_history,
        customer=customer or CustomerBindings("c1", []),
    ).outcome


def test_visit_outcomes() -> None:
    assert decide() is VisitOutcome.BOUND
    assert decide(visitor="d1") is VisitOutcome.SELF_VISIT
    assert decide(visitor_history=ALWAYS) is VisitOutcome.VISITOR_IS_DISTRIBUTOR
    assert decide(sharer_history=history((0, True), (1, False))) is VisitOutcome.SHARER_INELIGIBLE
    assert decide(sharer_history=history((2, True))) is VisitOutcome.SHARER_INELIGIBLE
    bound = CustomerBindings("c1", [binding(bound=0, until=10)])
    assert decide(customer=bound) is VisitOutcome.ALREADY_BOUND
    assert decide(sharer="d2", customer=bound) is VisitOutcome.CONTESTED
    assert decide(sharer="d2", at=10, customer=bound) is VisitOutcome.BOUND
    later = CustomerBindings("c1", [binding(bound=5, until=15)])
    assert decide(at=2, customer=later) is VisitOutcome.LATE
    paid_later = CustomerBindings("c1", [], latest_order_paid_at=day(3))
    assert decide(at=2, customer=paid_later) is VisitOutcome.LATE
    assert decide(at=3, customer=paid_later) is VisitOutcome.LATE
    assert decide(at=3.1, customer=paid_later) is VisitOutcome.BOUND


def test_contested_visit_names_who_protects() -> None:
    current = binding(bound=0, until=10)
    decision = decide_visit(
        sharer_id="d2",
        visitor_id="c1",
        visited_at=day(1),
        sharer=ALWAYS,
        visitor=NOBODY,
        customer=CustomerBindings("c1", [current]),
    )
    assert decision.protected_by == current


def test_binding_visit_expires_the_previous_binding_first() -> None:
    customer = CustomerBindings("c1", [binding(bound=0, until=10)])
    result = visit(
        binding_id="b2",
        share_id="s2",
        sharer_id="d2",
        visitor_id="c1",
        visited_at=day(12),
        period=P,
        customer=customer,
        eligibility_of=eligibility_of(d1=ALWAYS, d2=ALWAYS),
    )
    assert [type(e) for e in result.events] == [BindingReleased, BindingCreated]
    assert result.events[0].binding.released_at == day(10)
    created = result.events[1].binding
    assert (created.distributor_id, created.bound_at, created.protected_until) == (
        "d2",
        day(12),
        day(22),
    )


def test_visit_that_does_not_bind_changes_nothing() -> None:
    customer = CustomerBindings("c1", [binding(bound=0, until=10)])
    result = visit(
        binding_id="b2",
        share_id="s2",
        sharer_id="d2",
        visitor_id="c1",
        visited_at=day(5),
        period=P,
        customer=customer,
        eligibility_of=eligibility_of(d1=ALWAYS, d2=ALWAYS),
    )
    assert result.decision.outcome is VisitOutcome.CONTESTED and result.events == []


# --- attribution ----------------------------------------------------------------------------


def attribution(
    buyer: Eligibility = NOBODY,
    bound: Binding | None = None,
    bound_history: Eligibility | None = None,
    sharer: str | None = None,
    sharer_history: Eligibility | None = None,
) -> tuple[str, Basis] | None:
    result = attribute(
        buyer_id="c1",
        paid_at=day(5),
        buyer=buyer,
        binding=bound,
        bound_distributor=bound_history,
        share_sharer_id=sharer,
        sharer=sharer_history,
    )
    return (result.distributor_id, result.basis) if result else None


def test_attribution_order_self_binding_share_link_none() -> None:
    b = binding()
    assert attribution(ALWAYS, b, ALWAYS, "d2", ALWAYS) == ("c1", Basis.SELF)
    assert attribution(NOBODY, b, ALWAYS, "d2", ALWAYS) == ("d1", Basis.BINDING)
    assert attribution(NOBODY, None, None, "d2", ALWAYS) == ("d2", Basis.SHARE_LINK)
    assert attribution(NOBODY, None, None, None, None) is None


def test_attribution_never_names_someone_ineligible_at_paid_at() -> None:
    failed = history((0, True), (5, False))
    assert attribution(failed) is None
    assert attribution(NOBODY, binding(), failed) is None
    assert attribution(NOBODY, binding(), failed, "d2", ALWAYS) == ("d2", Basis.SHARE_LINK)
    assert attribution(NOBODY, None, None, "d2", failed) is None
    assert attribution(history((0, True), (5.1, False))) == ("c1", Basis.SELF)


def pay(
    customer: CustomerBindings,
    at: float,
    share_sharer: str | None = None,
    order_id: str = "o1",
    **users: Eligibility,
) -> OrderResult:
    return order_paid(
        binding_id=f"b-{order_id}",
        order_id=order_id,
        buyer_id=customer.customer_id,
        paid_at=day(at),
        share_id="s9" if share_sharer else None,
        share_sharer_id=share_sharer,
        period=P,
        customer=customer,
        eligibility_of=eligibility_of(**users),
    )


def test_paid_order_extends_to_the_later_of_both_ends() -> None:
    customer = CustomerBindings("c1", [binding(bound=1, until=11)])
    result = pay(customer, 4, d1=ALWAYS)
    [extended] = result.events
    assert isinstance(extended, BindingExtended)
    assert (extended.binding.protected_until, extended.order_id) == (day(14), "o1")
    assert result.binding_id == "b1"
    long = CustomerBindings("c1", [binding(bound=1, until=30)])
    [same] = pay(long, 4, d1=ALWAYS).events
    assert same.binding.protected_until == day(30)


def test_own_order_of_a_bound_candidate_is_self_attributed_and_still_extends() -> None:
    customer = CustomerBindings("c1", [binding(bound=1, until=11)])
    result = pay(customer, 4, d1=ALWAYS, c1=history((2, True)))
    assert result.attribution is not None and result.attribution.basis is Basis.SELF
    assert customer.bindings[0].protected_until == day(14)


def test_share_link_order_binds_the_buyer() -> None:
    customer = CustomerBindings("c1", [])
    result = pay(customer, 4, share_sharer="d2", d2=ALWAYS)
    [created] = result.events
    assert isinstance(created, BindingCreated)
    assert (created.binding.distributor_id, created.binding.order_id) == ("d2", "o1")
    assert created.binding.protected_until == day(14)


def test_share_link_after_expiry_releases_the_old_binding_first() -> None:
    customer = CustomerBindings("c1", [binding(bound=0, until=3)])
    events = pay(customer, 4, share_sharer="d2", d2=ALWAYS, d1=ALWAYS).events
    assert [type(e) for e in events] == [BindingReleased, BindingCreated]


def test_share_link_order_does_not_bind_when_a_later_binding_exists() -> None:
    customer = CustomerBindings("c1", [binding(bound=6, until=16, distributor="d1")])
    result = pay(customer, 4, share_sharer="d2", d1=ALWAYS, d2=ALWAYS)
    assert result.attribution is not None and result.attribution.basis is Basis.SHARE_LINK
    assert result.events == [] and result.binding_id is None


def test_extension_into_a_known_failure_releases_at_the_failure() -> None:
    customer = CustomerBindings("c1", [binding(bound=1, until=11)])
    events = pay(customer, 4, d1=history((0, True), (12, False))).events
    assert [type(e) for e in events] == [BindingExtended, BindingReleased]
    assert events[1].binding.released_at == day(12)


def test_an_order_never_shortens_protection_or_touches_another_customer() -> None:
    customer = CustomerBindings("c1", [binding(bound=1, until=11)])
    before = list(customer.bindings)
    pay(customer, 12, d1=ALWAYS)
    assert customer.bindings == before


# --- hypothesis: the rules in any processing order ------------------------------------------

USERS = ("d1", "d2", "c1")


@dataclass(frozen=True)
class Visit:
    sharer: str
    at: datetime


@dataclass(frozen=True)
class Order:
    share_sharer: str | None
    at: datetime


@dataclass(frozen=True)
class Change:
    user: str
    at: datetime
    eligible: bool


@dataclass(frozen=True)
class Tick:
    now: datetime


operations = st.one_of(
    st.builds(Visit, st.sampled_from(USERS), moments),
    st.builds(Order, st.sampled_from((None, "d1", "d2")), moments),
    st.builds(Change, st.sampled_from(USERS), moments, st.booleans()),
    st.builds(Tick, moments),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(operations, max_size=25))
def test_rules_hold_whatever_order_events_are_learnt_in(
    ops: list[Visit | Order | Change | Tick],
) -> None:
    """Events learnt in any order (times are random, not sorted), for one customer `c1`,
    except that each user's eligibility changes arrive in time order, as their topic
    guarantees:

    - at most one protected binding at any time, at most one unreleased binding;
    - no protection covers a moment its distributor is known ineligible (bar expired ones);
    - every order paid inside a protection extends it to at least paid_at + period;
    - an attribution only names a user eligible at paid_at, as known when it was decided.
    """
    # The distributors start eligible, so that bindings are common and failures matter.
    learnt = {"d1": [EligibilityChange(day(-1), True)], "d2": [EligibilityChange(day(-1), True)]}
    learnt["c1"] = []

    def known(user_id: str) -> Eligibility:
        return Eligibility(learnt.get(user_id, []))

    def updated(bindings: list[Binding], changed: list[BindingReleased]) -> list[Binding]:
        by_id = {r.binding.binding_id: r.binding for r in changed}
        return [by_id.get(b.binding_id, b) for b in bindings]

    customer = CustomerBindings("c1", [])
    latest_paid: datetime | None = None
    for n, op in enumerate(ops):
        customer = CustomerBindings("c1", customer.bindings, latest_paid)
        match op:
            case Visit(sharer, at):
                visit(
                    binding_id=f"v{n}", share_id=f"s-{sharer}", sharer_id=sharer,
                    visitor_id="c1", visited_at=at, period=P, customer=customer,
                    eligibility_of=known,
                )  # fmt: skip
            case Order(sharer, at):
                protected = customer.protected_at(at)
                result = order_paid(
                    binding_id=f"o{n}", order_id=f"o{n}", buyer_id="c1", paid_at=at,
                    share_id=f"s-{sharer}" if sharer else None, share_sharer_id=sharer,
                    period=P, customer=customer, eligibility_of=known,
                )  # fmt: skip
                latest_paid = max(latest_paid or at, at)
                if result.attribution is not None:
                    assert known(result.attribution.distributor_id).at(at)
                if protected is not None:
                    [now] = [b for b in customer.bindings if b.binding_id == protected.binding_id]
                    assert now.protected_until >= at + P
                    assert result.binding_id == protected.binding_id
            case Change(user, at, eligible):
                # One user's changes come in order (fx.qualification.v1 is keyed by user).
                since = max([at, *(c.since for c in learnt[user])])
                learnt[user].append(EligibilityChange(since, eligible))
                theirs = [b for b in customer.bindings if b.distributor_id == user]
                released = distributor_changed(theirs, known(user))
                customer.bindings = updated(customer.bindings, released)
            case Tick(now):
                customer.bindings = updated(customer.bindings, expire_all(customer.bindings, now))
        assert_disjoint(customer.bindings)
        for b in customer.bindings:
            if b.release_reason is not ReleaseReason.EXPIRED:  # an expiry is never taken back
                ineligible = known(b.distributor_id).first_ineligible_moment(
                    b.bound_at, b.protection_ends
                )
                assert ineligible is None, b
        assert sum(1 for b in customer.bindings if not b.released) <= 1


def assert_disjoint(bindings: list[Binding]) -> None:
    live = sorted((b for b in bindings if b.bound_at < b.protection_ends), key=lambda b: b.bound_at)
    for earlier, later in itertools.pairwise(live):
        assert earlier.protection_ends <= later.bound_at, (earlier, later)


def test_disjointness_check_catches_overlaps() -> None:
    with pytest.raises(AssertionError):
        assert_disjoint([binding(bound=1, until=11), replace(binding(bound=5), binding_id="b2")])
