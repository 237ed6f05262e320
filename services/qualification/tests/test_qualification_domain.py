"""The qualification state machine: every state × every input, then the rules one by one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from qualification.domain import (
    Applied,
    AssessmentFailed,
    AssessmentProgressed,
    AssessmentStarted,
    DomainEvent,
    Policy,
    Qualification,
    Qualified,
    Revoked,
    Status,
    TransitionRefused,
)

APPLIED_AT = datetime(2026, 1, 1, 9, tzinfo=UTC)
CONFIRMED_AT = APPLIED_AT + timedelta(hours=1)
DEADLINE = CONFIRMED_AT + timedelta(days=30)
IN_WINDOW = CONFIRMED_AT + timedelta(days=1)
PAID_FEN = 10_000
POLICY = Policy(
    required_orders=3,
    assessment_window=timedelta(days=30),
    counts_own_orders=True,
    reapply_cooldown=timedelta(0),
)
WITH_COOLDOWN = Policy(3, timedelta(days=30), True, timedelta(days=30))


def counted(q: Qualification, order_id: str, paid_at: datetime = IN_WINDOW) -> list[DomainEvent]:
    return q.order_attributed(order_id, paid_at, PAID_FEN, "binding", at=paid_at)


def in_state(status: Status) -> Qualification:
    """A user of `u1` in `status`; an assessing user already has one counted order, `o-1`."""
    q = Qualification("u1")
    if status is Status.NONE:
        return q
    q.apply(APPLIED_AT, POLICY)
    if status is Status.APPLIED:
        return q
    q.confirm_contact(CONFIRMED_AT, POLICY)
    counted(q, "o-1")
    if status is Status.ASSESSING:
        return q
    if status is Status.FAILED:
        q.expire(DEADLINE + timedelta(seconds=1))
        return q
    counted(q, "o-2")
    counted(q, "o-3")
    if status is Status.REVOKED:
        q.revoke(DEADLINE, "fake orders")
    return q


Input = Callable[[Qualification], list[DomainEvent]]
LATER = DEADLINE + timedelta(days=10)
AFTER_DEADLINE = DEADLINE + timedelta(seconds=1)

INPUTS: dict[str, Input] = {
    "apply": lambda q: q.apply(LATER, POLICY),
    "apply_in_cooldown": lambda q: q.apply(LATER, WITH_COOLDOWN),
    "confirm_contact": lambda q: q.confirm_contact(LATER, POLICY),
    "order_in_window": lambda q: counted(q, "o-new"),
    "own_order_in_window": lambda q: q.order_attributed(
        "o-own", IN_WINDOW, PAID_FEN, "self", at=IN_WINDOW
    ),
    "order_paid_after_deadline": lambda q: counted(q, "o-late", AFTER_DEADLINE),
    "order_paid_before_confirmation": lambda q: counted(
        q, "o-early", CONFIRMED_AT - timedelta(seconds=1)
    ),
    "order_again": lambda q: counted(q, "o-1"),
    "full_refund_in_window": lambda q: q.order_refunded("o-1", "r-1", PAID_FEN, IN_WINDOW),
    "partial_refund_in_window": lambda q: q.order_refunded("o-1", "r-1", PAID_FEN - 1, IN_WINDOW),
    "full_refund_after_deadline": lambda q: q.order_refunded(
        "o-1", "r-1", PAID_FEN, AFTER_DEADLINE
    ),
    "expire_at_deadline": lambda q: q.expire(DEADLINE),
    "expire_after_deadline": lambda q: q.expire(AFTER_DEADLINE),
    "revoke": lambda q: q.revoke(LATER, "fake orders"),
}

N, AP, AS, Q, F, R = (
    Status.NONE,
    Status.APPLIED,
    Status.ASSESSING,
    Status.QUALIFIED,
    Status.FAILED,
    Status.REVOKED,
)
Outcome = tuple[Status, list[type[DomainEvent]]] | str
UNCHANGED: list[type[DomainEvent]] = []
PROGRESSED: list[type[DomainEvent]] = [AssessmentProgressed]
EVENT_INPUTS = [
    "order_in_window",
    "own_order_in_window",
    "order_paid_after_deadline",
    "order_paid_before_confirmation",
    "order_again",
    "full_refund_in_window",
    "partial_refund_in_window",
    "full_refund_after_deadline",
    "expire_at_deadline",
    "expire_after_deadline",
]


def ignores_events(status: Status) -> dict[str, Outcome]:
    return dict.fromkeys(EVENT_INPUTS, (status, UNCHANGED))


# An outcome is (the state after, the events in order) or the code of the refusal.
TABLE: dict[Status, dict[str, Outcome]] = {
    N: {
        **ignores_events(N),
        "apply": (AP, [Applied]),
        "apply_in_cooldown": (AP, [Applied]),
        "confirm_contact": "no_application",
        "revoke": "not_qualified",
    },
    AP: {
        **ignores_events(AP),
        "apply": (AP, UNCHANGED),
        "apply_in_cooldown": (AP, UNCHANGED),
        "confirm_contact": (AS, [AssessmentStarted]),
        "revoke": "not_qualified",
    },
    AS: {
        "apply": "already_assessing",
        "apply_in_cooldown": "already_assessing",
        "confirm_contact": (AS, UNCHANGED),
        "order_in_window": (AS, PROGRESSED),
        "own_order_in_window": (AS, PROGRESSED),
        "order_paid_after_deadline": (AS, UNCHANGED),
        "order_paid_before_confirmation": (AS, UNCHANGED),
        "order_again": (AS, UNCHANGED),
        "full_refund_in_window": (AS, PROGRESSED),
        "partial_refund_in_window": (AS, UNCHANGED),
        "full_refund_after_deadline": (AS, UNCHANGED),
        "expire_at_deadline": (AS, UNCHANGED),
        "expire_after_deadline": (F, [AssessmentFailed]),
        "revoke": "not_qualified",
    },
    Q: {
        **ignores_events(Q),
        "apply": "already_qualified",
        "apply_in_cooldown": "already_qualified",
        "confirm_contact": (Q, UNCHANGED),
        "revoke": (R, [Revoked]),
    },
    F: {
        **ignores_events(F),
        "apply": (AP, [Applied]),
        "apply_in_cooldown": "reapply_cooldown",
        "confirm_contact": "no_application",
        "revoke": "not_qualified",
    },
    R: {
        **ignores_events(R),
        "apply": "revoked",
        "apply_in_cooldown": "revoked",
        "confirm_contact": "revoked",
        "revoke": (R, UNCHANGED),
    },
}


def test_the_table_covers_every_state_and_input() -> None:
    assert set(TABLE) == set(Status)
    for row in TABLE.values():
        assert set(row) == set(INPUTS)


@pytest.mark.parametrize(
    ("status", "input_name"), [(s, i) for s in TABLE for i in INPUTS], ids=lambda v: str(v)
)
def test_state_machine(status: Status, input_name: str) -> None:
    q = in_state(status)
    expected = TABLE[status][input_name]
    if isinstance(expected, str):
        before = repr(q)
        with pytest.raises(TransitionRefused) as refused:
            INPUTS[input_name](q)
        assert refused.value.code == expected
        assert refused.value.message
        assert repr(q) == before, "a refused command changes nothing"
        return
    events = INPUTS[input_name](q)
    assert q.status is expected[0]
    assert [type(e) for e in events] == expected[1]
    assert all(e.user_id == "u1" for e in events)


def test_confirmation_starts_the_window_with_the_terms_of_the_day() -> None:
    q = in_state(Status.APPLIED)
    strict = Policy(5, timedelta(days=7), False, timedelta(0))
    assert q.confirm_contact(CONFIRMED_AT, strict) == [
        AssessmentStarted("u1", CONFIRMED_AT, CONFIRMED_AT + timedelta(days=7), 5)
    ]
    assert (q.deadline, q.required_orders, q.counts_own_orders) == (
        CONFIRMED_AT + timedelta(days=7),
        5,
        False,
    )


def test_the_count_reaching_the_requirement_qualifies_at_that_moment() -> None:
    q = in_state(Status.ASSESSING)
    assert counted(q, "o-2") == [AssessmentProgressed("u1", IN_WINDOW, 2, 3)]
    third_paid = IN_WINDOW - timedelta(hours=2)
    assert counted(q, "o-3", third_paid) == [
        AssessmentProgressed("u1", third_paid, 3, 3),
        Qualified("u1", third_paid, ("o-3", "o-1", "o-2")),
    ]
    assert q.status is Status.QUALIFIED and q.qualified_at == third_paid


def test_the_window_includes_both_ends() -> None:
    q = in_state(Status.ASSESSING)
    assert counted(q, "at-confirmation", CONFIRMED_AT)
    assert counted(q, "at-deadline", DEADLINE)
    assert q.status is Status.QUALIFIED


def test_own_orders_do_not_count_when_the_merchant_says_so() -> None:
    q = in_state(Status.APPLIED)
    q.confirm_contact(CONFIRMED_AT, Policy(3, timedelta(days=30), False, timedelta(0)))
    assert q.order_attributed("o-own", IN_WINDOW, PAID_FEN, "self", at=IN_WINDOW) == []
    assert q.order_attributed("o-link", IN_WINDOW, PAID_FEN, "share_link", at=IN_WINDOW)
    assert q.qualifying_orders == 1


def test_an_order_paid_after_the_deadline_never_counts_even_before_the_tick() -> None:
    q = in_state(Status.ASSESSING)
    counted(q, "o-2")
    assert counted(q, "o-late", AFTER_DEADLINE) == []
    assert q.status is Status.ASSESSING
    assert q.expire(AFTER_DEADLINE) == [AssessmentFailed("u1", DEADLINE, 2)]


def test_failure_happens_at_the_deadline_whenever_the_clock_notices() -> None:
    q = in_state(Status.ASSESSING)
    assert q.expire(DEADLINE + timedelta(days=3)) == [AssessmentFailed("u1", DEADLINE, 1)]
    assert q.failed_at == DEADLINE


def test_refunds_add_up_per_order_and_a_redelivered_refund_is_ignored() -> None:
    q = in_state(Status.ASSESSING)
    assert q.order_refunded("o-1", "r-1", PAID_FEN // 2, IN_WINDOW) == []
    assert q.order_refunded("o-1", "r-1", PAID_FEN // 2, IN_WINDOW) == []
    assert q.orders["o-1"].refunded_fen == PAID_FEN // 2
    assert q.order_refunded("o-1", "r-2", PAID_FEN - PAID_FEN // 2, IN_WINDOW) == [
        AssessmentProgressed("u1", IN_WINDOW, 0, 3)
    ]
    assert q.orders["o-1"].uncounted_at == IN_WINDOW
    assert q.order_refunded("o-1", "r-3", 1, IN_WINDOW) == []


def test_an_uncounted_order_delivered_again_does_not_count_again() -> None:
    q = in_state(Status.ASSESSING)
    q.order_refunded("o-1", "r-1", PAID_FEN, IN_WINDOW)
    assert counted(q, "o-1") == []
    assert q.qualifying_orders == 0


def test_qualification_is_permanent_refunds_after_it_change_nothing() -> None:
    q = in_state(Status.QUALIFIED)
    for order_id in ("o-1", "o-2", "o-3"):
        assert q.order_refunded(order_id, f"r-{order_id}", PAID_FEN, IN_WINDOW) == []
    assert q.status is Status.QUALIFIED and q.qualifying_orders == 3
    assert q.orders["o-1"].fully_refunded, "the refund is still booked"


def test_a_failed_user_applies_again_and_starts_from_zero() -> None:
    q = in_state(Status.FAILED)
    assert q.apply(DEADLINE + timedelta(days=30), WITH_COOLDOWN) == [
        Applied("u1", DEADLINE + timedelta(days=30))
    ]
    assert (q.attempt, q.deadline, q.confirmed_at, q.qualifying_orders) == (2, None, None, 0)
    second = DEADLINE + timedelta(days=31)
    q.confirm_contact(second, POLICY)
    assert q.deadline == second + timedelta(days=30)
    assert q.order_refunded("o-1", "r-1", PAID_FEN, second) == [], "o-1 was the first attempt's"
    assert counted(q, "o-1", second + timedelta(days=1)) == [], "counted once per order id"
    assert counted(q, "o-9", second + timedelta(days=1)) == [
        AssessmentProgressed("u1", second + timedelta(days=1), 1, 3)
    ]


def test_cooldown_runs_from_the_failure() -> None:
    q = in_state(Status.FAILED)
    with pytest.raises(TransitionRefused, match="may apply again from"):
        q.apply(DEADLINE + timedelta(days=30) - timedelta(seconds=1), WITH_COOLDOWN)
    assert q.apply(DEADLINE + timedelta(days=30), WITH_COOLDOWN)


def test_revocation_keeps_the_reason_and_time() -> None:
    q = in_state(Status.QUALIFIED)
    assert q.revoke(LATER, "fake orders") == [Revoked("u1", LATER, "fake orders")]
    assert (q.revoked_at, q.revoke_reason) == (LATER, "fake orders")
    assert q.revoke(LATER + timedelta(days=1), "again") == []
    assert q.revoke_reason == "fake orders"


def test_applying_again_while_pending_keeps_the_first_application() -> None:
    q = Qualification("u1")
    q.apply(APPLIED_AT, POLICY, wechat_id="wx-1")
    assert q.apply(APPLIED_AT + timedelta(hours=1), POLICY, wechat_id="wx-2") == []
    assert (q.applied_at, q.wechat_id, q.attempt) == (APPLIED_AT, "wx-1", 1)


@pytest.mark.parametrize(
    ("now", "days_left"),
    [
        (CONFIRMED_AT, 30),
        (DEADLINE - timedelta(days=11), 11),
        (DEADLINE - timedelta(days=10, microseconds=1), 11),
        (DEADLINE - timedelta(days=1), 1),
        (DEADLINE - timedelta(microseconds=1), 1),
        (DEADLINE, 0),
        (DEADLINE + timedelta(days=3), 0),  # the sweeper has not run yet
    ],
)
def test_days_left_round_up_and_stop_at_zero(now: datetime, days_left: int) -> None:
    assert in_state(Status.ASSESSING).days_left(now) == days_left


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.ASSESSING])
def test_days_left_only_while_assessing(status: Status) -> None:
    assert in_state(status).days_left(CONFIRMED_AT) is None


@pytest.mark.parametrize("status", list(Status))
def test_the_discount_is_given_only_while_qualified(status: Status) -> None:
    expected = 500 if status is Status.QUALIFIED else 0
    assert in_state(status).discount_bps(500) == expected
