"""Late visits (the share pipeline lagging the order pipeline): a visit processed after
unattributed orders of its visitor paid less than FX_LATE_VISIT_HORIZON after it binds as of
its time and attributes them — with the ids and bytes an event-time replay publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from fx_common.contracts.attributions import OrderAttributed
from fx_common.runtime import processor_for
from referral_binding.app import ReferralBindingSettings, spec_for
from referral_binding.domain import Binding, CustomerBindings, VisitOutcome
from referral_binding.handlers import binding_id_for
from referral_binding.late_visits import PaidOrder, may_bind_late

if TYPE_CHECKING:
    from conftest import Harness, HarnessFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


# --- the rule ------------------------------------------------------------------------------


def test_the_rule_binds_only_over_recent_unattributed_orders_and_nothing_later() -> None:
    visit, horizon = day(1), timedelta(hours=24)
    empty = CustomerBindings("c1", [])
    recent = PaidOrder("o1", visit + 2 * H, attributed=False)
    assert may_bind_late(visit, [recent], empty, horizon)
    assert may_bind_late(visit, [PaidOrder("o1", visit, attributed=False)], empty, horizon)
    assert not may_bind_late(visit, [], empty, horizon)
    assert not may_bind_late(visit, [recent], empty, timedelta(0))
    at_horizon = PaidOrder("o2", visit + horizon, attributed=False)
    assert not may_bind_late(visit, [recent, at_horizon], empty, horizon)
    attributed = PaidOrder("o3", visit + H, attributed=True)
    assert not may_bind_late(visit, [recent, attributed], empty, horizon)
    later = Binding("b", "c1", "d2", "s2", visit + H, visit + timedelta(days=10))
    assert not may_bind_late(visit, [recent], CustomerBindings("c1", [later]), horizon)


# --- on the consume path -------------------------------------------------------------------


def test_order_first_visit_second_binds_at_the_visit_and_attributes_the_order(
    rb: Harness,
) -> None:
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    rb.run(rb.paid("o1", "c1", day(1) + 3 * H, event_id="paid-o1"))
    assert rb.orders()["o1"].distributor_id is None
    rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"))

    [binding] = rb.bindings("c1")
    assert (binding.binding_id, binding.distributor_id) == (binding_id_for("v1"), "d1")
    assert binding.bound_at == day(1)
    assert binding.protected_until == day(1) + 3 * H + timedelta(days=10)  # the order extended it
    [visit] = rb.visits()
    assert (visit.outcome, visit.binding_id) == (VisitOutcome.BOUND, binding_id_for("v1"))
    order = rb.orders()["o1"]
    assert (order.distributor_id, order.basis, order.binding_id) == (
        "d1", "binding", binding_id_for("v1"),
    )  # fmt: skip
    assert order.lines is None
    [attributed] = rb.published("fx.order.attributed")
    assert isinstance(attributed.data, OrderAttributed)
    assert (attributed.data.distributor_id, attributed.data.basis) == ("d1", "binding")
    assert attributed.time == day(1) + 3 * H
    assert [line.paid_amount_fen for line in attributed.data.lines] == [12800, 3900]
    assert [e.type for e in rb.published()] == [
        "fx.binding.created", "fx.binding.extended", "fx.order.attributed",
    ]  # fmt: skip


def test_completions_and_refunds_kept_for_the_order_follow_its_late_attribution(
    rb: Harness,
) -> None:
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    rb.run(rb.paid("o1", "c1", day(1) + H))
    rb.run(rb.refunded("o1", "c1", "r1", day(1) + 2 * H), rb.completed("o1", "c1", day(1) + 5 * H))
    assert rb.published() == []
    rb.run(rb.visit("s1", "d1", "c1", day(1)))
    assert [(e.type, e.time) for e in rb.published() if e.type.startswith("fx.order.")] == [
        ("fx.order.attributed", day(1) + H),
        ("fx.order.refunded", day(1) + 2 * H),
        ("fx.order.completed", day(1) + 5 * H),
    ]
    assert {e.data.distributor_id for e in rb.published("fx.order.refunded")} == {"d1"}  # type: ignore[attr-defined]


def test_a_visit_more_than_the_horizon_before_the_order_stays_late(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    rb.run(rb.paid("o1", "c1", day(2)))
    rb.run(rb.visit("s1", "d1", "c1", day(1)))  # exactly 24 h before: not inside
    assert rb.bindings("c1") == []
    assert [v.outcome for v in rb.visits()] == [VisitOutcome.LATE]
    assert rb.orders()["o1"].distributor_id is None
    assert rb.published() == []


def test_an_attributed_order_is_never_moved(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    rb.run(rb.share("s1", "d1", day(0)), rb.share("s2", "d2", day(0)))
    rb.run(rb.paid("o1", "c1", day(1) + 2 * H))  # unattributed
    rb.run(rb.paid("o2", "c1", day(1) + 4 * H, share_id="s2"))  # d2's share link (binds d2)
    rb.run(rb.visit("s1", "d1", "c1", day(1)))
    assert [v.outcome for v in rb.visits()] == [VisitOutcome.LATE]
    orders = rb.orders()
    assert (orders["o1"].distributor_id, orders["o2"].distributor_id) == (None, "d2")
    assert [b.distributor_id for b in rb.bindings("c1")] == ["d2"]


def test_the_horizon_can_be_turned_off(new_harness: HarnessFactory) -> None:
    rb = new_harness()
    settings = ReferralBindingSettings(
        protection_period=rb.period, redis_url="", late_visit_horizon=timedelta(0)
    )
    rb.processor = processor_for(spec_for(settings), rb.engine)
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    rb.run(rb.paid("o1", "c1", day(1) + H))
    rb.run(rb.visit("s1", "d1", "c1", day(1)))
    assert [v.outcome for v in rb.visits()] == [VisitOutcome.LATE]


def test_the_live_late_visit_publishes_what_the_event_time_replay_publishes(
    new_harness: HarnessFactory,
) -> None:
    live, replay = new_harness("live"), new_harness("replay")
    setup = [live.started("d1", day(0)), live.share("s1", "d1", day(0))]
    paid = live.paid("o1", "c1", day(1) + 3 * H, event_id="paid-o1")
    second = live.paid("o2", "c1", day(1) + 6 * H, event_id="paid-o2")
    refund = live.refunded("o1", "c1", "r1", day(1) + 4 * H)
    visit = live.visit("s1", "d1", "c1", day(1), event_id="v1")
    live.run(*setup)
    live.run(paid, refund)
    live.run(second)
    live.run(visit)
    replay.run(*setup)
    for record in (visit, paid, refund, second):  # event-time order
        replay.run(record)
    assert live.outbox() == replay.outbox()
    assert len(live.published("fx.order.attributed")) == 2
    assert {o.order_id: o.distributor_id for o in live.orders().values()} == {
        "o1": "d1", "o2": "d1",
    }  # fmt: skip


def test_a_late_visit_in_the_same_batch_as_the_order_binds_too(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    rb.run(rb.paid("o1", "c1", day(1) + H), rb.visit("s1", "d1", "c1", day(1)))
    assert rb.orders()["o1"].distributor_id == "d1"
    assert [e.type for e in rb.published()][-1] == "fx.order.attributed"
