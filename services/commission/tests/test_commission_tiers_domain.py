"""Unit tests of the second tier (domain/tiers.py): tier-2 rates, the recruiter's
qualification at payment, the joint fate, and (hypothesis) that the two tiers together never
pay more than the plan's tier-1 + tier-2 share of what the buyer kept."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from commission.domain import (
    VOID_FAILED,
    VOID_REVOKED,
    Commission,
    Fate,
    PaidLine,
    Rate,
    RatePlan,
    StatusChange,
    accrue_line,
    assess,
    commission_id_for,
)
from commission.domain.tiers import fate_of, recruiter_qualified, second_tier, tier2_fate
from fx_common.money import apply_bps

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOLD = timedelta(days=7)
PLAN = RatePlan(version=3, default_rate_bps=1000, tier2_default_rate_bps=300)
QUALIFIED_BEFORE = [StatusChange("qualified", T0 - DAY, 1)]
ASSESSING = [StatusChange("assessing", T0 - DAY, 1)]


def tier1(
    paid: int = 25800, recruit: list[StatusChange] | None = None, plan: RatePlan = PLAN
) -> Commission:
    line = PaidLine("l-1", "tea-oolong-250g", "oolong", 2, paid)
    fate = assess(T0, recruit if recruit is not None else ASSESSING)
    commission, _ = Commission.accrue(
        distributor_id="d-1", order_id="o-1", line=line, paid_at=T0, plan=plan, fate=fate, at=T0
    )
    return commission


def tier2(
    line: Commission,
    recruit: list[StatusChange] | None = None,
    recruiter: list[StatusChange] | None = None,
    plan: RatePlan = PLAN,
) -> Commission | None:
    made = second_tier(
        recruiter_id="r-1", tier1=line,
        recruit=recruit if recruit is not None else ASSESSING,
        recruiter=recruiter if recruiter is not None else QUALIFIED_BEFORE,
        plan=plan, at=T0, completed_at=None, refunds=[], settlement_hold=HOLD,
    )  # fmt: skip
    return None if made is None else made[0]


def test_tier2_rates_have_their_own_default_and_overrides() -> None:
    plan = RatePlan(
        version=1, default_rate_bps=1000, by_sku={"tea": Rate(rate_bps=2000)},
        tier2_default_rate_bps=300, tier2_by_category={"oolong": Rate(rate_bps=500)},
        tier2_by_sku={"cup": Rate(fen_per_unit=100)},
    )  # fmt: skip
    assert plan.quote("tea", "oolong", 1, 10000).amount_fen == 2000
    assert (
        plan.quote("tea", "oolong", 1, 10000, 2).amount_fen,
        plan.rate_for("tea", "oolong", 2)[1],
    ) == (500, "category")
    assert plan.quote("cup", None, 3, 10000, 2).amount_fen == 300
    assert plan.quote("pot", None, 1, 10000, 2).amount_fen == 300
    assert (
        RatePlan(version=0, default_rate_bps=1000).quote("pot", None, 1, 10000, 2).amount_fen == 0
    )


def test_tier2_gets_at_most_what_tier1_leaves_of_the_line() -> None:
    fixed = RatePlan(
        version=1, default_rate_bps=1000, by_sku={"cup": Rate(fen_per_unit=900)},
        tier2_default_rate_bps=300, tier2_by_sku={"pot": Rate(fen_per_unit=950)},
    )  # fmt: skip
    assert fixed.quote("cup", None, 1, 1000).amount_fen == 900
    capped = fixed.quote("cup", None, 1, 1000, 2)  # 3 % of 1000 = 30, 100 left: not capped
    assert (capped.amount_fen, capped.rate_bps) == (30, 300)
    assert fixed.quote("pot", None, 1, 1000).amount_fen == 100
    capped = fixed.quote("pot", None, 1, 1000, 2)  # 950 asked, 900 left
    assert (capped.amount_fen, capped.rate_bps, capped.fen_per_unit) == (900, 9000, 950)
    over = RatePlan(version=1, default_rate_bps=9000, tier2_default_rate_bps=2000)
    assert (over.quote("tea", None, 1, 1000, 2).amount_fen, over.quote("tea", None, 1, 0, 2)) == (
        100, over.quote("tea", None, 1, 0, 2),
    )  # fmt: skip


def test_a_plan_whose_two_percentages_exceed_a_line_is_named() -> None:
    assert RatePlan(version=1, default_rate_bps=9000, tier2_default_rate_bps=1000).excess() is None
    assert RatePlan(version=1, default_rate_bps=9000, tier2_default_rate_bps=1001).excess() == (
        "any line: tier 1 9000 bps + tier 2 1001 bps exceed 10000 bps"
    )
    by_category = RatePlan(
        version=1, default_rate_bps=1000, by_category={"tea": Rate(rate_bps=9500)},
        tier2_default_rate_bps=300, tier2_by_sku={"cup": Rate(rate_bps=700)},
    )  # fmt: skip
    assert str(by_category.excess()).startswith("SKU 'cup' in category 'tea': tier 1 9500")
    assert replace(by_category, tier2_by_sku={}).excess() is None  # 9500 + 300
    by_category = replace(by_category, tier2_by_sku={}, tier2_default_rate_bps=600)
    assert str(by_category.excess()).startswith("category 'tea': tier 1 9500 bps + tier 2 600")
    sku_beats = RatePlan(
        version=1, default_rate_bps=1000, by_category={"tea": Rate(rate_bps=9500)},
        by_sku={"cup": Rate(rate_bps=1000)}, tier2_by_category={"tea": Rate(rate_bps=500)},
    )  # fmt: skip
    assert sku_beats.excess() is None  # tea 9500 + 500; the cup's own 1000 + tea's 500
    fixed = RatePlan(version=1, default_rate_bps=9900, tier2_by_sku={"x": Rate(fen_per_unit=1)})
    assert fixed.excess() is None  # a fixed rule is capped per line instead


def test_tier_ids_differ_and_tier1_keeps_its_id() -> None:
    assert commission_id_for("o-1", "l-1", 1) == commission_id_for("o-1", "l-1")
    assert commission_id_for("o-1", "l-1", 2) != commission_id_for("o-1", "l-1")


def test_the_recruiter_must_be_qualified_at_payment() -> None:
    assert recruiter_qualified(T0, QUALIFIED_BEFORE)
    assert recruiter_qualified(T0, [StatusChange("qualified", T0, 1)])
    assert not recruiter_qualified(T0, [StatusChange("qualified", T0 + DAY, 1)])
    assert not recruiter_qualified(T0, ASSESSING)
    revoked = [*QUALIFIED_BEFORE, StatusChange("revoked", T0 - DAY / 2, 2)]
    assert not recruiter_qualified(T0, revoked)
    assert recruiter_qualified(T0, [*QUALIFIED_BEFORE, StatusChange("revoked", T0 + DAY, 2)])


def test_a_tier2_line_follows_the_recruits_escrow_and_is_the_recruiters() -> None:
    made = tier2(tier1())
    assert made is not None
    assert (made.tier, made.distributor_id, made.source_distributor_id) == (2, "r-1", "d-1")
    assert (made.status, made.amount_fen, made.rate_bps) == ("held", 774, 300)
    assert made.commission_id == commission_id_for("o-1", "l-1", 2)
    qualified = tier2(tier1(recruit=QUALIFIED_BEFORE), recruit=QUALIFIED_BEFORE)
    assert qualified is not None and qualified.status == "pending"


def test_no_tier2_line_without_a_qualified_recruiter_a_rate_or_from_a_tier2_line() -> None:
    assert tier2(tier1(), recruiter=ASSESSING) is None
    assert tier2(tier1(), recruiter=[StatusChange("qualified", T0 + DAY, 1)]) is None
    no_rate = RatePlan(version=0, default_rate_bps=1000)
    assert tier2(tier1(plan=no_rate), plan=no_rate) is None
    line = tier2(tier1())
    assert line is not None and tier2(line) is None  # a chain is not followed
    own = second_tier(
        recruiter_id="d-1", tier1=tier1(), recruit=ASSESSING, recruiter=QUALIFIED_BEFORE,
        plan=PLAN, at=T0, completed_at=None, refunds=[], settlement_hold=HOLD,
    )  # fmt: skip
    assert own is None


def test_the_joint_fate_voids_with_the_recruit_and_on_either_revocation() -> None:
    failed = [*ASSESSING, StatusChange("failed", T0 + DAY, 2)]
    assert tier2_fate(T0, failed, QUALIFIED_BEFORE) == Fate(failed_at=T0 + DAY)
    recruiter_revoked = [*QUALIFIED_BEFORE, StatusChange("revoked", T0 + 3 * DAY, 2)]
    recruit_revoked = [
        StatusChange("qualified", T0 + DAY, 2),
        StatusChange("revoked", T0 + 5 * DAY, 3),
    ]
    assert tier2_fate(T0, recruit_revoked, recruiter_revoked) == Fate(
        qualified_at=T0 + DAY, revoked_at=T0 + 3 * DAY
    )
    line = tier2(tier1())
    assert line is not None
    line.apply_fate(tier2_fate(T0, failed, QUALIFIED_BEFORE))
    assert (line.status, line.void_reason) == ("voided", VOID_FAILED)
    history = {"d-1": ASSESSING, "r-1": recruiter_revoked}
    line = tier2(tier1())
    assert line is not None
    line.apply_fate(fate_of(line, history))
    assert (line.status, line.void_reason) == ("voided", VOID_REVOKED)


# ── both tiers through a random life: never more than the plan's share of the net ───────

EVENTS = st.lists(
    st.one_of(
        st.tuples(st.just("complete"), st.just(0)),
        st.tuples(st.just("refund"), st.integers(1, 30000)),
        st.tuples(st.just("recruit"), st.sampled_from(["qualified", "failed", "revoked"])),
        st.tuples(st.just("recruiter"), st.just("revoked")),
        st.tuples(st.just("settle"), st.just(0)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    paid=st.integers(0, 30000),
    rates=st.tuples(st.integers(0, 10000), st.integers(1, 10000)),
    recruit_qualified=st.booleans(),
    events=EVENTS,
)
def test_the_tiers_never_pay_more_than_the_plans_share_of_the_net_amount(
    paid: int, rates: tuple[int, int], recruit_qualified: bool, events: list[tuple[str, object]]
) -> None:
    plan = RatePlan(version=1, default_rate_bps=rates[0], tier2_default_rate_bps=rates[1])
    recruit = list(QUALIFIED_BEFORE if recruit_qualified else ASSESSING)
    recruiter = list(QUALIFIED_BEFORE)
    line = PaidLine("l-1", "tea", None, 1, paid)
    first, _ = accrue_line(
        distributor_id="d-1", order_id="o-1", line=line, paid_at=T0, plan=plan,
        fate=assess(T0, recruit), at=T0, completed_at=None, refunds=[], settlement_hold=HOLD,
    )  # fmt: skip
    made = second_tier(
        recruiter_id="r-1", tier1=first, recruit=recruit, recruiter=recruiter, plan=plan,
        at=T0, completed_at=None, refunds=[], settlement_hold=HOLD,
    )  # fmt: skip
    lines = [first] + ([made[0]] if made is not None else [])
    now, refunded = T0, 0
    for step, (kind, value) in enumerate(events):
        now += DAY
        for c in lines:
            if kind == "complete":
                c.complete(now, HOLD)
            elif kind == "refund":
                c.refund(f"r-{step}", int(str(value)), now)
            elif kind == "settle":
                c.settle(now + HOLD)
        if kind == "refund":
            refunded = min(paid, refunded + int(str(value)))
        if kind in ("recruit", "recruiter"):
            history = recruit if kind == "recruit" else recruiter
            history.append(StatusChange(str(value), now, len(history) + 1))  # type: ignore[arg-type]
            for c in lines:
                c.apply_fate(fate_of(c, {"d-1": recruit, "r-1": recruiter}))
        if kind == "settle":
            now += HOLD
    net = paid - refunded
    share = apply_bps(net, rates[0]) + apply_bps(net, rates[1])
    paid_out = sum(c.settled_fen - c.reversed_fen for c in lines)
    assert 0 <= paid_out <= share
    assert paid_out <= net  # whatever the rates: never more than the buyer kept
    assert all(
        c.amount_fen <= apply_bps(net, plan.rate_for("tea", None, c.tier)[0].rate_bps or 0)
        for c in lines
    )
    if lines[0].status == "voided" and lines[0].void_reason == VOID_FAILED:
        assert all(c.status == "voided" for c in lines)
