"""Counting rules interacting: random streams of attributions, refunds and clock moves.

The oracle states the rule plainly: while assessing, the count is the number of distinct
orders attributed so far that were paid inside the window (own orders only if they count)
and were not fully refunded inside the window; reaching the requirement qualifies for good.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import event, given, settings
from hypothesis import strategies as st

from qualification.domain import (
    AssessmentFailed,
    AssessmentProgressed,
    Basis,
    DomainEvent,
    Policy,
    Qualification,
    Qualified,
    Status,
)

CONFIRMED_AT = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = timedelta(days=30)
DEADLINE = CONFIRMED_AT + WINDOW


@dataclass(frozen=True)
class Order:
    order_id: str
    paid_at: datetime
    paid_fen: int
    basis: Basis


@dataclass(frozen=True)
class Attribute:
    order: Order


@dataclass(frozen=True)
class RefundOp:
    order: Order
    refund_id: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True)
class Tick:
    now: datetime


Op = Attribute | RefundOp | Tick

# Hours around the window, so orders and refunds land before, inside and after it.
moments = st.integers(min_value=-48, max_value=30 * 24 + 48).map(
    lambda h: CONFIRMED_AT + timedelta(hours=h)
)
bases: st.SearchStrategy[Basis] = st.sampled_from(["self", "binding", "share_link"])


@st.composite
def streams(draw: st.DrawFn) -> tuple[Policy, list[Op]]:
    policy = Policy(
        required_orders=draw(st.integers(1, 5)),
        assessment_window=WINDOW,
        counts_own_orders=draw(st.booleans()),
        reapply_cooldown=timedelta(0),
    )
    orders = [
        Order(f"o-{i}", draw(moments), draw(st.integers(0, 5_000)), draw(bases))
        for i in range(draw(st.integers(1, 8)))
    ]
    refund = st.builds(
        RefundOp,
        st.sampled_from(orders),
        st.sampled_from(["r-1", "r-2", "r-3"]),
        st.integers(0, 5_000),
        moments,
    )
    op = st.one_of(st.builds(Attribute, st.sampled_from(orders)), refund, st.builds(Tick, moments))
    return policy, draw(st.lists(op, max_size=30))


def assessing(policy: Policy) -> Qualification:
    q = Qualification("u1")
    q.apply(CONFIRMED_AT - timedelta(hours=1), policy)
    q.confirm_contact(CONFIRMED_AT, policy)
    return q


def run(q: Qualification, op: Op) -> list[DomainEvent]:
    if isinstance(op, Attribute):
        o = op.order
        return q.order_attributed(o.order_id, o.paid_at, o.paid_fen, o.basis, at=o.paid_at)
    if isinstance(op, RefundOp):
        return q.order_refunded(op.order.order_id, op.refund_id, op.amount_fen, op.at)
    return q.expire(op.now)


class Oracle:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.status = Status.ASSESSING
        self.counted: set[str] = set()
        self.uncounted: set[str] = set()
        self.refunds: dict[str, dict[str, int]] = {}

    @property
    def count(self) -> int:
        return len(self.counted - self.uncounted)

    def step(self, op: Op) -> None:
        if isinstance(op, Tick):
            if self.status is Status.ASSESSING and op.now > DEADLINE:
                self.status = Status.FAILED
        elif isinstance(op, Attribute):
            o = op.order
            eligible = (o.basis != "self" or self.policy.counts_own_orders) and (
                CONFIRMED_AT <= o.paid_at <= DEADLINE
            )
            if self.status is Status.ASSESSING and eligible and o.order_id not in self.counted:
                self.counted.add(o.order_id)
                if self.count >= self.policy.required_orders:
                    self.status = Status.QUALIFIED
        elif op.order.order_id in self.counted:
            booked = self.refunds.setdefault(op.order.order_id, {})
            if op.refund_id in booked:
                return  # the same refund again
            booked[op.refund_id] = op.amount_fen
            fully = sum(booked.values()) >= op.order.paid_fen
            if self.status is Status.ASSESSING and fully and op.at <= DEADLINE:
                self.uncounted.add(op.order.order_id)


@given(streams())
@settings(max_examples=300)
def test_count_and_status_follow_the_rule(stream: tuple[Policy, list[Op]]) -> None:
    policy, ops = stream
    q, oracle = assessing(policy), Oracle(policy)
    for op in ops:
        before = q.status
        events = run(q, op)
        oracle.step(op)
        assert q.status is oracle.status
        if before is Status.ASSESSING:
            assert q.qualifying_orders == oracle.count
        if before is not Status.ASSESSING:
            assert events == [], "only a running assessment reacts to events and the clock"
        for happened in events:
            if isinstance(happened, AssessmentProgressed):
                assert happened.required_orders == policy.required_orders
            if isinstance(happened, Qualified):
                assert len(happened.order_ids) == policy.required_orders
                assert set(happened.order_ids) <= oracle.counted
            if isinstance(happened, AssessmentFailed):
                assert happened.at == DEADLINE
                assert happened.qualifying_orders < policy.required_orders
        if isinstance(op, Attribute) and op.order.paid_at > DEADLINE:
            assert not any(isinstance(e, AssessmentProgressed) for e in events)
    event(f"ends {q.status}")


@given(streams())
@settings(max_examples=200)
def test_qualified_is_never_undone(stream: tuple[Policy, list[Op]]) -> None:
    policy, ops = stream
    q = assessing(policy)
    qualified = False
    for op in ops:
        run(q, op)
        qualified = qualified or q.status is Status.QUALIFIED
        if qualified:
            assert q.status is Status.QUALIFIED
            assert q.qualifying_orders == policy.required_orders


@given(streams())
@settings(max_examples=200)
def test_redelivered_inputs_change_nothing(stream: tuple[Policy, list[Op]]) -> None:
    policy, ops = stream
    once, twice = assessing(policy), assessing(policy)
    for op in ops:
        first = run(once, op)
        assert run(twice, op) == first
        assert run(twice, op) == [], "the same order or refund again is a no-op"
    assert once == twice
