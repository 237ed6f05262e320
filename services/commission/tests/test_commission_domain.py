"""Unit tests of the commission rules (domain.py): plan, qualification fate, lifecycle."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commission.domain import (
    VOID_FAILED,
    VOID_REFUNDED,
    VOID_REVOKED,
    Commission,
    Fate,
    PaidLine,
    Rate,
    RatePlan,
    RefundLine,
    StatusChange,
    accrue_line,
    assess,
    commission_id_for,
    period_starts,
)
from fx_common.money import apply_bps

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
HOLD = timedelta(days=7)
DAY = timedelta(days=1)
PLAN = RatePlan(version=0, default_rate_bps=1000)
QUALIFIED = Fate(qualified_at=T0 - DAY)


def accrue(
    paid: int = 25800, fate: Fate = QUALIFIED, plan: RatePlan = PLAN, quantity: int = 2
) -> Commission:
    line = PaidLine("l-1", "tea-oolong-250g", "oolong", quantity, paid)
    commission, _ = Commission.accrue(
        distributor_id="d-1", order_id="o-1", line=line, paid_at=T0, plan=plan, fate=fate, at=T0
    )
    return commission


def settled(paid: int = 25800) -> Commission:
    commission = accrue(paid)
    commission.complete(T0, HOLD)
    commission.settle(T0 + HOLD)
    assert commission.status == "settled"
    return commission


# ── rate plan ─────────────────────────────────────────────────────────────────────────


def test_default_rate_floors_per_line() -> None:
    quote = PLAN.quote("any", None, 1, 3999)
    assert (quote.amount_fen, quote.rate_bps, quote.basis, quote.plan_version) == (
        399, 1000, "default", 0,
    )  # fmt: skip


def test_sku_override_beats_category_which_beats_default() -> None:
    plan = RatePlan(
        version=3,
        default_rate_bps=1000,
        by_category={"oolong": Rate(rate_bps=1500), "cups": Rate(rate_bps=500)},
        by_sku={"tea-oolong-250g": Rate(rate_bps=2000)},
    )
    assert plan.quote("tea-oolong-250g", "oolong", 1, 10000).amount_fen == 2000
    assert plan.quote("tea-oolong-100g", "oolong", 1, 10000).amount_fen == 1500
    assert plan.quote("tea-oolong-100g", None, 1, 10000).amount_fen == 1000
    assert plan.quote("glass", "cups", 1, 10000).basis == "category"
    assert plan.quote("glass", "cups", 1, 10000).plan_version == 3


def test_fixed_per_unit_is_capped_at_the_paid_amount_and_reports_its_effective_rate() -> None:
    plan = RatePlan(version=1, default_rate_bps=1000, by_sku={"gift": Rate(fen_per_unit=300)})
    quote = plan.quote("gift", None, 3, 4000)
    assert (quote.amount_fen, quote.rate_bps, quote.fen_per_unit) == (900, 2250, 300)
    capped = plan.quote("gift", None, 3, 500)
    assert (capped.amount_fen, capped.rate_bps) == (500, 10000)
    free = plan.quote("gift", None, 1, 0)
    assert (free.amount_fen, free.rate_bps) == (0, 0)


def test_effective_rate_of_a_fixed_rule_is_floored() -> None:
    plan = RatePlan(version=1, default_rate_bps=0, by_category={"tea": Rate(fen_per_unit=1)})
    assert plan.quote("x", "tea", 1, 3).rate_bps == 3333


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"rate_bps": 100, "fen_per_unit": 1}, {"rate_bps": 10001}, {"rate_bps": -1},
     {"fen_per_unit": -1}],
)  # fmt: skip
def test_a_rate_is_exactly_one_valid_rule(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Rate(**kwargs)


def test_plan_validates_its_default_rate_and_version() -> None:
    with pytest.raises(ValueError):
        RatePlan(version=1, default_rate_bps=20000)
    with pytest.raises(ValueError):
        RatePlan(version=-1, default_rate_bps=1000)


def test_commission_id_is_deterministic_per_order_line() -> None:
    assert commission_id_for("o-1", "l-1") == commission_id_for("o-1", "l-1")
    assert commission_id_for("o-1", "l-1") != commission_id_for("o-1", "l-2")
    assert commission_id_for("o-1", "l-1") != commission_id_for("o-11", "-1")


# ── the qualification history decides ────────────────────────────────────────────────


def changes(*steps: tuple[str, datetime]) -> list[StatusChange]:
    return [StatusChange(status, at, seq) for seq, (status, at) in enumerate(steps)]  # type: ignore[arg-type]


def test_unknown_or_assessing_distributor_is_undecided() -> None:
    assert assess(T0, []) == Fate()
    assert assess(T0, changes(("applied", T0 - DAY), ("assessing", T0 - DAY))) == Fate()


def test_qualified_at_payment_earns_at_once() -> None:
    fate = assess(T0, changes(("assessing", T0 - 9 * DAY), ("qualified", T0 - DAY)))
    assert fate == Fate(qualified_at=T0 - DAY)


def test_the_order_that_qualifies_counts_as_qualified() -> None:
    assert assess(T0, changes(("qualified", T0))) == Fate(qualified_at=T0)


def test_first_decisive_transition_after_payment_decides() -> None:
    assert assess(T0, changes(("assessing", T0 - DAY), ("qualified", T0 + DAY))) == Fate(
        qualified_at=T0 + DAY
    )
    assert assess(T0, changes(("failed", T0 + DAY))) == Fate(failed_at=T0 + DAY)


def test_a_failure_before_payment_waits_for_the_next_attempt() -> None:
    history = changes(("failed", T0 - 9 * DAY), ("applied", T0 - 8 * DAY))
    assert assess(T0, history) == Fate()
    requalified = changes(
        ("failed", T0 - 9 * DAY), ("assessing", T0 - 8 * DAY), ("qualified", T0 + DAY)
    )
    assert assess(T0, requalified) == Fate(qualified_at=T0 + DAY)


def test_revocation_after_qualification_is_reported_with_its_time() -> None:
    history = changes(("qualified", T0 - DAY), ("revoked", T0 + 3 * DAY))
    assert assess(T0, history) == Fate(qualified_at=T0 - DAY, revoked_at=T0 + 3 * DAY)
    held_then = changes(("qualified", T0 + DAY), ("revoked", T0 + 3 * DAY))
    assert assess(T0, held_then) == Fate(qualified_at=T0 + DAY, revoked_at=T0 + 3 * DAY)


def test_revoked_before_payment_voids() -> None:
    history = changes(("qualified", T0 - 9 * DAY), ("revoked", T0 - DAY))
    assert assess(T0, history) == Fate(revoked_at=T0 - DAY)


def test_equal_times_are_ordered_by_arrival() -> None:
    history = changes(("qualified", T0 - DAY), ("revoked", T0 - DAY))
    assert assess(T0, history) == Fate(revoked_at=T0 - DAY)


def test_arrival_order_of_the_history_does_not_matter_when_times_differ() -> None:
    history = changes(("revoked", T0 + 3 * DAY), ("qualified", T0 + DAY))
    assert assess(T0, history) == Fate(qualified_at=T0 + DAY, revoked_at=T0 + 3 * DAY)


# ── accrual ───────────────────────────────────────────────────────────────────────────


def test_accrues_held_while_undecided_and_pending_once_qualified() -> None:
    line = PaidLine("l-1", "tea", None, 1, 25800)
    held, change = Commission.accrue(
        distributor_id="d-1", order_id="o-1", line=line, paid_at=T0, plan=PLAN, fate=Fate(),
        at=T0,
    )  # fmt: skip
    assert (held.status, held.amount_fen, held.accrued_fen) == ("held", 2580, 2580)
    assert (change.kind, change.status_after, change.reported_fen) == ("accrued", "held", 2580)
    assert accrue().status == "pending"
    assert held.commission_id == commission_id_for("o-1", "l-1")


def test_accrual_snapshots_the_plan() -> None:
    plan = RatePlan(
        version=4, default_rate_bps=1000, by_category={"oolong": Rate(fen_per_unit=700)}
    )
    commission = accrue(plan=plan)
    assert (commission.plan_version, commission.rate_basis, commission.fen_per_unit) == (
        4, "category", 700,
    )  # fmt: skip
    assert (commission.amount_fen, commission.rate_bps) == (1400, 542)


# ── release, void, revoke ─────────────────────────────────────────────────────────────


def test_qualification_releases_held_commission() -> None:
    commission = accrue(fate=Fate())
    [change] = commission.apply_fate(Fate(qualified_at=T0 + DAY))
    assert (change.kind, change.status_before, change.status_after) == (
        "released",
        "held",
        "pending",
    )
    assert (change.at, change.reported_fen) == (T0 + DAY, 2580)
    assert commission.apply_fate(Fate(qualified_at=T0 + DAY)) == []


def test_release_of_a_completed_order_freezes_it_with_its_settle_at() -> None:
    commission = accrue(fate=Fate())
    [frozen] = commission.complete(T0 + DAY, HOLD)
    assert (frozen.kind, commission.status, commission.settle_at) == (
        "frozen",
        "held",
        T0 + DAY + HOLD,
    )
    assert commission.settle(T0 + 30 * DAY) == []
    [released] = commission.apply_fate(Fate(qualified_at=T0 + 20 * DAY))
    assert released.status_after == "frozen"
    [settled] = commission.settle(T0 + 20 * DAY)
    assert settled.at == T0 + DAY + HOLD


def test_failure_voids_held_commission() -> None:
    commission = accrue(fate=Fate())
    [change] = commission.apply_fate(Fate(failed_at=T0 + DAY))
    assert (change.kind, change.reported_fen, change.reason) == ("voided", 2580, VOID_FAILED)
    assert (commission.status, commission.amount_fen, commission.voided_fen) == ("voided", 0, 2580)
    assert commission.apply_fate(Fate(qualified_at=T0 + 2 * DAY)) == []
    assert commission.refund("r-1", 100, T0) == []
    assert commission.complete(T0, HOLD) == []


def test_revocation_voids_pending_and_frozen_commission_not_settled_by_then() -> None:
    pending = accrue()
    [change] = pending.apply_fate(Fate(qualified_at=T0, revoked_at=T0 + DAY))
    assert (change.kind, change.reason, change.at) == ("voided", VOID_REVOKED, T0 + DAY)
    frozen = accrue()
    frozen.complete(T0, HOLD)
    [change] = frozen.apply_fate(Fate(qualified_at=T0, revoked_at=T0 + HOLD - DAY))
    assert frozen.status == "voided"


def test_revocation_keeps_commission_that_settles_by_then() -> None:
    frozen = accrue()
    frozen.complete(T0, HOLD)
    assert frozen.apply_fate(Fate(qualified_at=T0, revoked_at=T0 + HOLD)) == []
    assert frozen.settle(T0 + HOLD)[0].kind == "settled"
    assert frozen.apply_fate(Fate(qualified_at=T0, revoked_at=T0 + HOLD)) == []


def test_revocation_arriving_after_a_later_settlement_claws_it_back() -> None:
    commission = settled()
    [change] = commission.apply_fate(Fate(qualified_at=T0, revoked_at=T0 + DAY))
    assert (change.kind, change.reported_fen, change.reason) == ("reversed", 2580, VOID_REVOKED)
    assert (commission.status, commission.amount_fen, commission.reversed_fen) == (
        "reversed",
        0,
        2580,
    )


def test_revoked_before_payment_voids_held_commission() -> None:
    commission = accrue(fate=Fate())
    [change] = commission.apply_fate(Fate(revoked_at=T0 - DAY))
    assert change.reason == VOID_REVOKED
    assert change.at == T0  # never before the order itself


# ── completion and settlement ─────────────────────────────────────────────────────────


def test_completion_freezes_pending_commission_until_the_hold_ends() -> None:
    commission = accrue()
    [change] = commission.complete(T0 + DAY, HOLD)
    assert (change.kind, commission.status, commission.settle_at) == (
        "frozen",
        "frozen",
        T0 + DAY + HOLD,
    )
    assert commission.complete(T0 + 2 * DAY, HOLD) == []
    assert commission.settle(T0 + DAY + HOLD - timedelta(seconds=1)) == []
    [settled_change] = commission.settle(T0 + 30 * DAY)
    assert (settled_change.at, settled_change.reported_fen) == (T0 + DAY + HOLD, 2580)
    assert (commission.settled_at, commission.settled_fen) == (T0 + DAY + HOLD, 2580)
    assert commission.settle(T0 + 31 * DAY) == []


def test_pending_commission_without_completion_never_settles() -> None:
    commission = accrue()
    assert commission.settle(T0 + 365 * DAY) == []


# ── refunds ───────────────────────────────────────────────────────────────────────────


def test_partial_refund_before_settlement_reduces_pro_rata() -> None:
    commission = accrue(paid=25800)
    [change] = commission.refund("r-1", 12900, T0 + DAY)
    assert (change.kind, change.amount_before, change.amount_after) == ("adjusted", 2580, 1290)
    assert (change.refund_id, commission.status, commission.refunded_fen) == (
        "r-1",
        "pending",
        12900,
    )


def test_refunds_compute_from_the_cumulative_refunded_amount() -> None:
    one = accrue(paid=1000, quantity=1)
    one.refund("r-1", 333, T0)
    one.refund("r-2", 333, T0)
    whole = accrue(paid=1000, quantity=1)
    whole.refund("r-1", 666, T0)
    assert one.amount_fen == whole.amount_fen == 100 * 334 // 1000


def test_remaining_commission_is_floored_so_any_refund_costs_at_least_a_fen() -> None:
    commission = accrue(paid=25800)
    [change] = commission.refund("r-1", 1, T0)
    assert change.amount_after == 2579  # floor(2580 × 25799 / 25800)
    assert commission.refund("r-2", 0, T0) == []


def test_full_refund_before_settlement_voids() -> None:
    commission = accrue(fate=Fate())
    [change] = commission.refund("r-1", 30000, T0 + DAY)
    assert (change.kind, change.reason, change.reported_fen) == ("voided", VOID_REFUNDED, 2580)
    assert commission.refunded_fen == 25800


def test_refund_after_settlement_claws_back_the_refunded_share() -> None:
    commission = settled(paid=25800)
    [change] = commission.refund("r-2", 6450, T0 + 9 * DAY)
    assert (change.kind, change.reported_fen, change.refund_id) == ("reversed", 645, "r-2")
    assert (commission.status, commission.amount_fen) == ("settled", 1935)
    [last] = commission.refund("r-3", 19350, T0 + 10 * DAY)
    assert (last.reported_fen, commission.status, commission.amount_fen) == (1935, "reversed", 0)
    assert commission.settled_fen - commission.reversed_fen == 0
    assert commission.refund("r-4", 1, T0 + 11 * DAY) == []


def test_a_fully_refunded_settled_line_ends_reversed_even_with_nothing_to_claw_back() -> None:
    commission = accrue(paid=5)  # 10 % of 5 fen floors to 0
    commission.complete(T0, HOLD)
    commission.settle(T0 + HOLD)
    [change] = commission.refund("r-1", 5, T0 + 9 * DAY)
    assert (change.kind, change.reported_fen, commission.status) == ("reversed", 0, "reversed")


def test_zero_paid_line_earns_nothing_and_refunds_change_nothing() -> None:
    commission = accrue(paid=0)
    assert commission.amount_fen == 0
    assert commission.refund("r-1", 0, T0) == []
    assert commission.status == "pending"


def test_changes_never_predate_the_order() -> None:
    commission = accrue(fate=Fate())
    [change] = commission.refund("r-1", 100, T0 - DAY)
    assert change.at == T0


# ── summary periods ───────────────────────────────────────────────────────────────────


def test_period_starts_follow_the_merchant_day() -> None:
    offset = timedelta(hours=8)
    now = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 01:30 on 2 March in China
    day, month = period_starts(now, offset)
    assert day == datetime(2026, 3, 1, 16, tzinfo=UTC)
    assert month == datetime(2026, 2, 28, 16, tzinfo=UTC)
    assert period_starts(now, timedelta(0)) == (
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC),
    )  # fmt: skip


# ── an attribution arriving after its order's completion and refunds ──────────────────


def test_accrue_line_applies_earlier_facts_as_if_they_came_after() -> None:
    line = PaidLine("l-1", "tea-oolong-250g", "oolong", 2, 25800)
    refunds = [
        RefundLine("r-1", "l-1", 5000, T0 + DAY),
        RefundLine("r-2", "l-other", 9000, T0 + DAY),
    ]
    late, changes = accrue_line(
        distributor_id="d-1", order_id="o-1", line=line, paid_at=T0, plan=PLAN,
        fate=QUALIFIED, at=T0 + 2 * DAY, completed_at=T0 + DAY, refunds=refunds,
        settlement_hold=HOLD,
    )  # fmt: skip
    in_order = accrue()
    in_order.complete(T0 + DAY, HOLD)
    in_order.refund("r-1", 5000, T0 + DAY)
    assert (late.status, late.amount_fen, late.settle_at) == (
        in_order.status, in_order.amount_fen, in_order.settle_at,
    )  # fmt: skip
    assert late.status == "frozen" and late.amount_fen == apply_bps(25800 - 5000, 1000)
    assert [c.kind for c in changes] == ["accrued", "frozen", "adjusted"]
