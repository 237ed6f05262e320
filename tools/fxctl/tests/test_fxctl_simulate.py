"""The simulated mall: deterministic, contract-valid, and a plausible story."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from fx_common.envelope import encode, make_event
from fxctl.simulate import MallConfig, generate

START = datetime(2026, 3, 2, tzinfo=UTC)


def config(seed: int = 7, **changes: object) -> MallConfig:
    values: dict[str, object] = {
        "distributors": 4, "customers": 30, "orders": 60, "start": START, "seed": seed,
        "refund_ratio": 0.2,
    } | changes  # fmt: skip
    return MallConfig(**values)  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_story_ids_included() -> None:
    first, again = generate(config()), generate(config())
    assert first == again
    assert [encode(p.event()) for p in first] == [encode(p.event()) for p in again]
    assert generate(config(seed=8)) != first


def test_the_story_is_contract_valid_in_time_order_and_on_upstream_topics_only() -> None:
    story = generate(config())
    assert [p.at for p in story] == sorted(p.at for p in story)
    assert {p.topic for p in story} <= {"mall.shares.v1", "mall.orders.v1"}
    assert len({p.id for p in story}) == len(story)
    for planned in story:
        make_event(planned.type, planned.data, time=planned.at)  # raises if invalid


def test_the_story_has_shares_visits_orders_completions_and_some_refunds() -> None:
    story = generate(config())
    counts = Counter(p.type for p in story)
    assert counts["mall.order.paid"] == 60
    assert 4 <= counts["mall.share.created"] <= 12
    assert 0 < counts["mall.share.visited"] <= 30
    assert 0 < counts["mall.order.refunded"] < 60
    assert counts["mall.order.completed"] <= 60
    sharers = {p.data["sharer_id"] for p in story if p.type == "mall.share.created"}
    assert sharers == {f"sim7-d{n}" for n in range(1, 5)}
    for order in (p for p in story if p.type == "mall.order.paid"):
        assert 1 <= len(order.data["lines"]) <= 3
        assert all(line["sku"].startswith("tea") for line in order.data["lines"]) or any(
            line["category"] == "teaware" for line in order.data["lines"]
        )


def test_an_order_is_paid_before_it_completes_or_is_refunded() -> None:
    story = generate(config())
    paid_at = {p.data["order_id"]: p.at for p in story if p.type == "mall.order.paid"}
    for later in (p for p in story if p.type != "mall.order.paid" and "order_id" in p.data):
        assert later.at > paid_at[later.data["order_id"]]
    visits = {p.data["visitor_id"]: p.at for p in story if p.type == "mall.share.visited"}
    created = {p.data["share_id"]: p.at for p in story if p.type == "mall.share.created"}
    for visit in (p for p in story if p.type == "mall.share.visited"):
        assert visit.at > created[visit.data["share_id"]]
    for order in (p for p in story if p.type == "mall.order.paid"):
        if order.data["buyer_id"] in visits:
            assert order.at > visits[order.data["buyer_id"]]


def test_no_refunds_when_the_ratio_is_zero() -> None:
    assert not [p for p in generate(config(refund_ratio=0.0)) if p.type == "mall.order.refunded"]
