"""The second tier through the handlers (FX_COMMISSION_TIERS=2): whichever of the recruiter,
the recruit's orders and both qualification histories arrives last finds the others."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from commission.domain import Terms, commission_id_for
from fx_common.contracts import commissions as cm

if TYPE_CHECKING:
    from conftest import Harness

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
TIERS = Terms(
    default_rate_bps=1000, settlement_hold=timedelta(days=7), tiers=2, tier2_default_rate_bps=500
)  # as conftest's `tiers` fixture


def lines(h: Harness) -> dict[tuple[str, str, int], tuple[str, str, int]]:
    """(order, line, tier) -> (earner, status, amount_fen)."""
    return {
        (c.order_id, c.line_id, c.tier): (c.distributor_id, c.status, c.amount_fen)
        for c in h.commissions()
    }


def test_an_order_of_a_recruit_earns_the_qualified_recruiter_a_tier2_line(tiers: Harness) -> None:
    tiers.qualification("qualified", T0 - 5 * DAY, user="r-1")
    tiers.qualification("qualified", T0 - 2 * DAY, user="d-1")
    tiers.recruiter("d-1", "r-1", T0 - 3 * DAY)
    tiers.attribute("o-1", {"l-1": 10000, "l-2": 3999}, T0)
    assert lines(tiers) == {
        ("o-1", "l-1", 1): ("d-1", "pending", 1000),
        ("o-1", "l-2", 1): ("d-1", "pending", 399),
        ("o-1", "l-1", 2): ("r-1", "pending", 500),
        ("o-1", "l-2", 2): ("r-1", "pending", 199),
    }
    accrued = [e for e in tiers.published() if isinstance(e.data, cm.CommissionAccrued)]
    second = [e.data for e in accrued if e.data.tier == 2]
    assert [(d.distributor_id, d.source_distributor_id, d.amount_fen) for d in second] == [
        ("r-1", "d-1", 500), ("r-1", "d-1", 199),
    ]  # fmt: skip
    assert second[0].commission_id == commission_id_for("o-1", "l-1", 2)
    assert {e.data.tier for e in accrued} == {1, 2}


def test_tier2_lines_follow_escrow_hold_refunds_and_clawback(tiers: Harness) -> None:
    tiers.qualification("qualified", T0 - 5 * DAY, user="r-1")
    tiers.qualification("assessment_started", T0 - 2 * DAY, user="d-1")
    tiers.recruiter("d-1", "r-1", T0 - 3 * DAY)
    tiers.attribute("o-1", {"l-1": 10000}, T0)
    assert lines(tiers)[("o-1", "l-1", 2)] == ("r-1", "held", 500)
    tiers.complete("o-1", T0 + DAY)
    tiers.refund("o-1", "rf-1", {"l-1": 2000}, T0 + 2 * DAY)
    assert lines(tiers)[("o-1", "l-1", 2)] == ("r-1", "held", 400)
    tiers.qualification("qualified", T0 + 3 * DAY, user="d-1")
    tiers.tick(T0 + 9 * DAY)
    assert lines(tiers)[("o-1", "l-1", 2)] == ("r-1", "settled", 400)
    tiers.refund("o-1", "rf-2", {"l-1": 8000}, T0 + 10 * DAY)
    assert lines(tiers)[("o-1", "l-1", 1)] == ("d-1", "reversed", 0)
    assert lines(tiers)[("o-1", "l-1", 2)] == ("r-1", "reversed", 0)
    reversed_ = [e.data for e in tiers.published() if isinstance(e.data, cm.CommissionReversed)]
    assert sorted((d.tier, d.distributor_id, d.amount_fen) for d in reversed_) == [
        (1, "d-1", 800), (2, "r-1", 400),
    ]  # fmt: skip


def test_a_failed_recruit_voids_the_recruiters_line_too(tiers: Harness) -> None:
    tiers.qualification("qualified", T0 - 5 * DAY, user="r-1")
    tiers.qualification("assessment_started", T0 - 2 * DAY, user="d-1")
    tiers.recruiter("d-1", "r-1", T0 - 3 * DAY)
    tiers.attribute("o-1", {"l-1": 10000}, T0)
    tiers.qualification("assessment_failed", T0 + 3 * DAY, user="d-1")
    assert {k[2]: v[1] for k, v in lines(tiers).items()} == {1: "voided", 2: "voided"}


def test_a_recruiter_not_qualified_at_payment_earns_nothing_and_the_chain_stops(
    tiers: Harness,
) -> None:
    tiers.qualification("qualified", T0 - 9 * DAY, user="q-1")
    tiers.recruiter("r-1", "q-1", T0 - 8 * DAY)
    tiers.qualification("qualified", T0 + DAY, user="r-1")  # after the payment
    tiers.qualification("qualified", T0 - 2 * DAY, user="d-1")
    tiers.recruiter("d-1", "r-1", T0 - 3 * DAY)
    tiers.attribute("o-1", {"l-1": 10000}, T0)
    tiers.attribute("o-2", {"l-1": 10000}, T0 + 2 * DAY)
    assert lines(tiers) == {
        ("o-1", "l-1", 1): ("d-1", "pending", 1000),
        ("o-2", "l-1", 1): ("d-1", "pending", 1000),
        ("o-2", "l-1", 2): ("r-1", "pending", 500),
    }


def test_one_tier_configured_pays_no_second_tier(harness: Harness) -> None:
    harness.qualification("qualified", T0 - 5 * DAY, user="r-1")
    harness.recruiter("d-1", "r-1", T0 - 3 * DAY)
    harness.attribute("o-1", {"l-1": 10000}, T0)
    assert {c.tier for c in harness.commissions()} == {1}


SCENARIO: list[Callable[[Harness], Any]] = [
    lambda h: h.qualification("qualified", T0 - 5 * DAY, user="r-1"),
    lambda h: h.qualification("assessment_started", T0 - 2 * DAY, user="d-1"),
    lambda h: h.recruiter("d-1", "r-1", T0 - 3 * DAY),
    lambda h: h.attribute("o-1", {"l-1": 10000, "l-2": 5000}, T0),
    lambda h: h.refund("o-1", "rf-1", {"l-1": 3000}, T0 + DAY),
    lambda h: h.complete("o-1", T0 + 2 * DAY),
    lambda h: h.qualification("qualified", T0 + 3 * DAY, user="d-1"),
]


def test_whichever_arrives_last_the_tiers_end_the_same(
    make_harness: Callable[..., Harness],
) -> None:
    """Interleavings of the recruiter's and the recruit's qualification events, the recruiter
    record and the order's facts (each key keeps its own order: d-1's qualification events;
    the order's attribution, refund and completion), every 7th of the 420."""
    outcomes = set()
    valid = [
        order for order in itertools.permutations(range(len(SCENARIO)))
        if order.index(1) < order.index(6) and order.index(3) < order.index(4) < order.index(5)
    ]  # fmt: skip
    for order in valid[::7]:
        h = make_harness(TIERS)
        for index in order:
            SCENARIO[index](h)
        h.tick(T0 + 20 * DAY)
        outcomes.add(tuple(sorted(lines(h).items())))
        h.engine.dispose()
    [outcome] = outcomes
    assert dict(outcome)[("o-1", "l-1", 2)] == ("r-1", "settled", 350)
    assert dict(outcome)[("o-1", "l-2", 2)] == ("r-1", "settled", 250)
