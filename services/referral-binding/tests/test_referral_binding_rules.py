"""The configurable switches of DOMAIN §2: `bind_candidates` and `self_attribution`, in the
pure rules, through the handlers, and from the environment."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fx_common.runtime import processor_for
from referral_binding.app import ReferralBindingSettings, spec_for
from referral_binding.domain import (
    Basis,
    Binding,
    CustomerBindings,
    Eligibility,
    EligibilityChange,
    Rules,
    VisitOutcome,
    attribute,
    decide_visit,
    order_paid,
)

if TYPE_CHECKING:
    from conftest import HarnessFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD = timedelta(days=10)
STRICT = Rules(bind_candidates=False, self_attribution=False)
CANDIDATE = Eligibility([EligibilityChange(T0, True)])
DISTRIBUTOR = Eligibility(
    [EligibilityChange(T0, True), EligibilityChange(T0, True, qualified=True)]
)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def visit_outcome(sharer: Eligibility, rules: Rules) -> VisitOutcome:
    return decide_visit(
        sharer_id="d1",
        visitor_id="c1",
        visited_at=day(1),
        sharer=sharer,
        visitor=Eligibility(),
        customer=CustomerBindings("c1", []),
        rules=rules,
    ).outcome


def test_candidates_bind_unless_switched_off() -> None:
    assert visit_outcome(CANDIDATE, Rules()) is VisitOutcome.BOUND
    assert visit_outcome(CANDIDATE, STRICT) is VisitOutcome.SHARER_NOT_QUALIFIED
    assert visit_outcome(DISTRIBUTOR, STRICT) is VisitOutcome.BOUND


@given(st.permutations([(0, True, False), (0, True, True), (5, False, False)]))
def test_qualified_is_read_in_time_whatever_order_it_was_learnt_in(
    changes: list[tuple[int, bool, bool]],
) -> None:
    user = Eligibility(EligibilityChange(day(at), *flags) for at, *flags in changes)
    assert [user.qualified_at(day(n)) for n in (-1, 0, 4, 5)] == [False, True, True, False]


def test_self_attribution_can_be_switched_off() -> None:
    binding = Binding("b1", "c1", "d1", "s1", day(0), day(10))

    def attributed(rules: Rules, bound: Binding | None) -> tuple[str, Basis] | None:
        result = attribute(
            buyer_id="c1",
            paid_at=day(1),
            buyer=CANDIDATE,
            binding=bound,
            bound_distributor=DISTRIBUTOR,
            share_sharer_id=None,
            sharer=None,
            rules=rules,
        )
        return (result.distributor_id, result.basis) if result else None

    assert attributed(Rules(), binding) == ("c1", Basis.SELF)
    assert attributed(STRICT, binding) == ("d1", Basis.BINDING)
    assert attributed(STRICT, None) is None


def test_a_candidates_share_link_earns_the_order_but_binds_only_when_allowed() -> None:
    def result(rules: Rules) -> tuple[Basis | None, int]:
        outcome = order_paid(
            binding_id="b-o1",
            order_id="o1",
            buyer_id="c1",
            paid_at=day(1),
            share_id="s1",
            share_sharer_id="d1",
            period=PERIOD,
            customer=CustomerBindings("c1", []),
            eligibility_of={"c1": Eligibility(), "d1": CANDIDATE}.__getitem__,
            rules=rules,
        )
        basis = outcome.attribution.basis if outcome.attribution else None
        return basis, len(outcome.events)

    assert result(Rules()) == (Basis.SHARE_LINK, 1)
    assert result(STRICT) == (Basis.SHARE_LINK, 0)


def test_switches_through_the_handlers(new_harness: HarnessFactory) -> None:
    rb = new_harness()
    settings = ReferralBindingSettings(
        protection_period=PERIOD, bind_candidates=False, self_attribution=False, redis_url=""
    )
    rb.processor = processor_for(spec_for(settings), rb.engine)
    rb.run(rb.started("cand", day(0)), rb.started("dist", day(0)), rb.qualified("dist", day(0)))
    rb.run(rb.visit("s1", "cand", "c1", day(1)), rb.visit("s2", "dist", "c2", day(1)))
    rb.run(rb.paid("o1", "dist", day(2)))
    assert [(v.visitor_id, v.outcome) for v in rb.visits()] == [
        ("c1", VisitOutcome.SHARER_NOT_QUALIFIED),
        ("c2", VisitOutcome.BOUND),
    ]
    assert rb.published("fx.order.attributed") == [], "a distributor's own order: not self"


def test_a_candidates_refused_visit_binds_once_a_qualification_before_it_arrives(
    new_harness: HarnessFactory,
) -> None:
    rb = new_harness()
    settings = ReferralBindingSettings(
        protection_period=PERIOD, bind_candidates=False, redis_url=""
    )
    rb.processor = processor_for(spec_for(settings), rb.engine)
    rb.run(rb.started("cand", day(0)))
    rb.run(rb.visit("s1", "cand", "c1", day(2)))
    assert [v.outcome for v in rb.visits()] == [VisitOutcome.SHARER_NOT_QUALIFIED]
    rb.run(rb.qualified("cand", day(1)))
    assert [v.outcome for v in rb.visits()] == [VisitOutcome.BOUND]
    assert [(b.distributor_id, b.bound_at) for b in rb.bindings("c1")] == [("cand", day(2))]


@pytest.mark.parametrize(
    ("bind", "own"), list(itertools.product(["true", "false"], ["true", "false"]))
)
def test_switches_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, bind: str, own: str
) -> None:
    monkeypatch.setenv("FX_BIND_CANDIDATES", bind)
    monkeypatch.setenv("FX_SELF_ATTRIBUTION", own)
    rules = ReferralBindingSettings().rules()
    assert rules == Rules(bind_candidates=bind == "true", self_attribution=own == "true")


def test_switches_default_to_the_domain() -> None:
    assert ReferralBindingSettings().rules() == Rules()
