"""Handlers through the BatchProcessor on SQLite: what is stored and what is published."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fx_common.contracts.attributions import (
    AttributedOrderCompleted,
    AttributedOrderRefunded,
    OrderAttributed,
)
from fx_common.contracts.bindings import BindingCreated, BindingExtended, BindingReleased
from fx_common.envelope import Event
from referral_binding.domain import ReleaseReason, VisitOutcome
from referral_binding.handlers import binding_id_for

if TYPE_CHECKING:
    from conftest import Harness, HarnessFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD = timedelta(days=10)  # the harness's default


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def data(events: list[Event]) -> list[Any]:
    return [e.data for e in events]


def test_visit_binds_the_visitor_to_an_eligible_sharer(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.share("s1", "d1", day(0)))
    outcome = rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"))
    assert (outcome.applied, outcome.dead_lettered) == (1, 0)
    [created] = rb.published("fx.binding.created")
    assert isinstance(created.data, BindingCreated)
    assert created.data.binding_id == binding_id_for("v1")
    assert (created.data.customer_id, created.data.distributor_id) == ("c1", "d1")
    assert created.data.protected_until == day(1) + PERIOD
    assert created.time == day(1)
    [binding] = rb.bindings("c1")
    assert binding.protected_at(day(1)) and not binding.protected_at(day(11))


def test_visit_of_an_unknown_share_uses_the_visits_sharer_and_records_the_share(
    rb: Harness,
) -> None:
    rb.run(rb.started("d1", day(0)))
    rb.run(rb.visit("s-new", "d1", "c1", day(1)))
    assert [b.distributor_id for b in rb.bindings("c1")] == ["d1"]
    rb.run(rb.paid("o1", "c2", day(2), share_id="s-new"))
    [attributed] = data(rb.published("fx.order.attributed"))
    assert (attributed.distributor_id, attributed.basis) == ("d1", "share_link")


def test_ignored_visits_are_recorded_with_their_outcome_and_publish_nothing(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    outcome = rb.run(
        rb.visit("s1", "d1", "d1", day(1)),  # the sharer itself
        rb.visit("s1", "d1", "d2", day(1)),  # another candidate
        rb.visit("s9", "x9", "c1", day(1)),  # a sharer who is nobody
    )
    assert (outcome.applied, outcome.dead_lettered) == (3, 0)
    assert rb.published() == []
    assert [v.outcome for v in rb.visits()] == [
        VisitOutcome.SELF_VISIT,
        VisitOutcome.VISITOR_IS_DISTRIBUTOR,
        VisitOutcome.SHARER_INELIGIBLE,
    ]


def test_contested_visit_does_not_rebind_and_is_recorded(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    rb.run(rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.visit("s2", "d2", "c1", day(2)), rb.visit("s1", "d1", "c1", day(3)))
    assert [b.distributor_id for b in rb.bindings("c1")] == ["d1"]
    contested, again = rb.visits()[1:]
    assert (contested.outcome, contested.protected_by) == (VisitOutcome.CONTESTED, "d1")
    assert (again.outcome, again.protected_by) == (VisitOutcome.ALREADY_BOUND, "d1")


def test_paid_orders_extend_and_are_attributed_by_binding(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.paid("o1", "c1", day(5)), rb.paid("o2", "c1", day(12)))
    extended = data(rb.published("fx.binding.extended"))
    assert [(e.order_id, e.protected_until) for e in extended] == [
        ("o1", day(15)),
        ("o2", day(22)),
    ]
    assert all(isinstance(e, BindingExtended) for e in extended)
    attributed = rb.published("fx.order.attributed")
    assert [(e.data.order_id, e.data.basis, e.data.distributor_id) for e in attributed] == [  # type: ignore[attr-defined]
        ("o1", "binding", "d1"),
        ("o2", "binding", "d1"),
    ]
    first = attributed[0]
    assert isinstance(first.data, OrderAttributed)
    assert first.time == day(5) and first.data.paid_at == day(5)
    assert [line.line_id for line in first.data.lines] == ["l1", "l2"]
    assert first.data.lines[0].paid_amount_fen == 12800


def test_attribution_prefers_self_then_binding_then_share_link(rb: Harness) -> None:
    rb.run(
        rb.started("d1", day(0)),
        rb.started("d2", day(0)),
        rb.share("s2", "d2", day(0)),
        rb.visit("s1", "d1", "c1", day(1)),
    )
    rb.run(
        rb.paid("own", "d1", day(2), share_id="s2"),
        rb.paid("bound", "c1", day(2), share_id="s2"),
        rb.paid("linked", "c2", day(2), share_id="s2"),
        rb.paid("nobody", "c3", day(2)),
        rb.paid("unknown-share", "c4", day(2), share_id="s-unknown"),
    )
    attributed = {e.order_id: (e.basis, e.distributor_id) for e in data(rb.published())
                  if isinstance(e, OrderAttributed)}  # fmt: skip
    assert attributed == {
        "own": ("self", "d1"),
        "bound": ("binding", "d1"),
        "linked": ("share_link", "d2"),
    }
    orders = rb.orders()
    assert orders["nobody"].distributor_id is None and orders["unknown-share"].basis is None


def test_share_link_order_binds_the_buyer(rb: Harness) -> None:
    rb.run(rb.started("d2", day(0)), rb.share("s2", "d2", day(0)))
    rb.run(rb.paid("o1", "c2", day(3), share_id="s2", event_id="pay-1"))
    [created] = data(rb.published("fx.binding.created"))
    assert (created.binding_id, created.order_id) == (binding_id_for("pay-1"), "o1")
    assert created.protected_until == day(13)
    rb.run(rb.paid("o2", "c2", day(4)))
    [second] = [e for e in data(rb.published("fx.order.attributed")) if e.order_id == "o2"]
    assert (second.basis, second.distributor_id) == ("binding", "d2")


def test_completion_and_refund_follow_the_attributed_order(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(
        rb.paid("o1", "c1", day(2)),
        rb.paid("o2", "c9", day(2)),
        rb.completed("o1", "c1", day(3)),
        rb.refunded("o1", "c1", "r1", day(4)),
        rb.completed("o2", "c9", day(3)),  # unattributed: ignored
        rb.refunded("o-unknown", "c9", "r2", day(4)),  # never paid: ignored
    )
    [completed] = rb.published("fx.order.completed")
    assert completed.data == AttributedOrderCompleted(order_id="o1", distributor_id="d1")
    assert completed.time == day(3)
    [refunded] = rb.published("fx.order.refunded")
    assert isinstance(refunded.data, AttributedOrderRefunded)
    assert (refunded.data.distributor_id, refunded.data.refund_id) == ("d1", "r1")
    assert refunded.data.lines[0].refund_amount_fen == 6400


def test_order_paid_twice_under_different_event_ids_counts_once(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.paid("o1", "c1", day(2)), rb.paid("o1", "c1", day(5)))
    assert len(rb.published("fx.order.attributed")) == 1
    assert [b.protected_until for b in rb.bindings("c1")] == [day(12)]


def test_order_of_an_ineligible_buyer_without_binding_or_share_is_unattributed(
    rb: Harness,
) -> None:
    rb.run(rb.started("d1", day(0)), rb.failed("d1", day(1)))
    outcome = rb.run(rb.paid("o1", "d1", day(2)))
    assert (outcome.applied, outcome.dead_lettered) == (1, 0)
    assert rb.published() == []


def test_failure_releases_the_distributors_bindings_at_its_time(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    rb.run(rb.visit("s1", "d1", "c1", day(1)), rb.visit("s2", "d2", "c2", day(1)))
    rb.run(rb.failed("d1", day(4)))
    [released] = rb.published("fx.binding.released")
    assert isinstance(released.data, BindingReleased)
    assert (released.data.customer_id, released.data.reason) == ("c1", "distributor_ineligible")
    assert released.time == day(4)
    rb.run(rb.visit("s2", "d2", "c1", day(5)))
    assert [b.distributor_id for b in rb.bindings("c1")] == ["d1", "d2"]


def test_revocation_releases_too(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.qualified("d1", day(1)))
    rb.run(rb.visit("s1", "d1", "c1", day(2)), rb.revoked("d1", day(3)))
    [binding] = rb.bindings("c1")
    assert (binding.released_at, binding.release_reason) == (
        day(3),
        ReleaseReason.DISTRIBUTOR_INELIGIBLE,
    )


def test_order_paid_before_a_failure_processed_first_goes_to_the_then_eligible_distributor(
    rb: Harness,
) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.failed("d1", day(6)))
    rb.run(rb.paid("o1", "c1", day(5)))
    [attributed] = data(rb.published("fx.order.attributed"))
    assert (attributed.distributor_id, attributed.basis) == ("d1", "binding")
    [binding] = rb.bindings("c1")
    assert binding.protected_until == day(15) and binding.released_at == day(6)


def test_visit_learnt_after_the_sharers_failure_binds_then_releases(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.failed("d1", day(4)))
    rb.run(rb.visit("s1", "d1", "c1", day(2)))
    types = [e.type for e in rb.published()]
    assert types == ["fx.binding.created", "fx.binding.released"]
    [binding] = rb.bindings("c1")
    assert (binding.bound_at, binding.released_at) == (day(2), day(4))


def test_failure_learnt_late_releases_bindings_made_after_it_at_their_start(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(5)))
    rb.run(rb.failed("d1", day(3)))
    [binding] = rb.bindings("c1")
    assert (binding.released_at, binding.release_reason) == (
        day(5),
        ReleaseReason.DISTRIBUTOR_INELIGIBLE,
    )


def test_a_new_assessment_after_a_failure_makes_the_user_eligible_again(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.failed("d1", day(1)), rb.started("d1", day(3)))
    rb.run(rb.visit("s1", "d1", "c1", day(2)), rb.visit("s1", "d1", "c2", day(4)))
    assert rb.bindings("c1") == []
    assert [b.distributor_id for b in rb.bindings("c2")] == ["d1"]


def test_tick_releases_expired_bindings_at_their_protection_end(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.visit("s1", "d1", "c2", day(3)))
    rb.run(rb.tick(day(12)))
    [released] = rb.published("fx.binding.released")
    assert released.time == day(11)
    assert released.data == BindingReleased(
        binding_id=rb.bindings("c1")[0].binding_id,
        customer_id="c1",
        distributor_id="d1",
        reason="expired",
    )
    rb.run(rb.tick(day(12)), rb.tick(day(13)))
    assert len(rb.published("fx.binding.released")) == 2


def test_after_expiry_the_next_eligible_share_binds(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    rb.run(rb.visit("s1", "d1", "c1", day(1)), rb.visit("s2", "d2", "c1", day(10)))
    rb.run(rb.visit("s2", "d2", "c1", day(11)))
    first, second = rb.bindings("c1")
    assert (first.released_at, first.release_reason) == (day(11), ReleaseReason.EXPIRED)
    assert (second.distributor_id, second.bound_at) == ("d2", day(11))
    assert [e.type for e in rb.published()] == [
        "fx.binding.created",
        "fx.binding.released",
        "fx.binding.created",
    ]


def test_late_visit_does_not_rewrite_what_was_decided_after_it(rb: Harness) -> None:
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)), rb.share("s2", "d2", day(0)))
    rb.run(rb.paid("o1", "c1", day(5), share_id="s2"))
    rb.run(rb.paid("o3", "c3", day(6)))
    rb.run(rb.visit("s1", "d1", "c1", day(3)), rb.visit("s1", "d1", "c3", day(4)))
    assert [b.distributor_id for b in rb.bindings("c1")] == ["d2"]
    assert rb.bindings("c3") == []
    late = [v for v in rb.visits() if v.outcome == VisitOutcome.LATE]
    assert [v.visitor_id for v in late] == ["c1", "c3"]
    assert [e.type for e in rb.published()] == ["fx.binding.created", "fx.order.attributed"]


def test_replay_into_an_empty_store_publishes_the_same_events(new_harness: HarnessFactory) -> None:
    first = new_harness("a")
    records = [
        first.started("d1", day(0)),
        first.share("s1", "d1", day(0)),
        first.visit("s1", "d1", "c1", day(1)),
        first.paid("o1", "c1", day(2)),
        first.paid("o2", "c2", day(3), share_id="s1"),
        first.failed("d1", day(4)),
        first.tick(day(40)),
    ]
    first.run(*records[:3])
    first.run(*records[3:])
    again = new_harness("b")
    again.run_each(*records)
    assert first.outbox() == again.outbox()
    assert first.processor.process(records).duplicates == len(records)


def test_protection_period_comes_from_configuration(new_harness: HarnessFactory) -> None:
    rb = new_harness("p", period=timedelta(hours=1))
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    assert rb.bindings("c1")[0].protected_until == day(1) + timedelta(hours=1)


# --- a visit processed before the sharer's eligibility (which happened earlier) ---


def test_visit_refused_before_the_sharers_earlier_eligibility_binds_when_it_arrives(
    rb: Harness,
) -> None:
    rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"))
    [refused] = rb.visits()
    assert refused.outcome == VisitOutcome.SHARER_INELIGIBLE
    assert rb.published() == []

    rb.run(rb.started("d1", day(0)))
    [created] = rb.published("fx.binding.created")
    assert isinstance(created.data, BindingCreated)
    assert created.data.binding_id == binding_id_for("v1")
    assert (created.data.customer_id, created.data.distributor_id) == ("c1", "d1")
    assert created.data.protected_until == day(1) + PERIOD
    assert created.time == day(1)
    [binding] = rb.bindings("c1")
    assert (binding.binding_id, binding.bound_at) == (binding_id_for("v1"), day(1))
    [reopened] = rb.visits()
    assert (reopened.outcome, reopened.binding_id) == (VisitOutcome.BOUND, binding_id_for("v1"))


def test_reopened_visits_are_decided_in_time_order_and_only_from_the_eligibility_on(
    rb: Harness,
) -> None:
    rb.run(
        rb.visit("s1", "d1", "c1", day(3), event_id="v3"),
        rb.visit("s1", "d1", "c1", day(1), event_id="v1"),  # before the eligibility
        rb.visit("s1", "d1", "c1", day(2), event_id="v2"),
    )
    rb.run(rb.started("d1", day(1.5)))
    [created] = data(rb.published("fx.binding.created"))
    assert created.binding_id == binding_id_for("v2")
    assert [(v.event_id, v.outcome) for v in rb.visits()] == [
        ("v1", VisitOutcome.SHARER_INELIGIBLE),
        ("v2", VisitOutcome.BOUND),
        ("v3", VisitOutcome.ALREADY_BOUND),
    ]


def test_reopened_visit_in_the_same_batch_as_the_eligibility_binds(rb: Harness) -> None:
    rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"), rb.started("d1", day(0)))
    assert [b.binding_id for b in rb.bindings("c1")] == [binding_id_for("v1")]
    [visit] = rb.visits()
    assert visit.outcome == VisitOutcome.BOUND


def test_reopened_visit_is_late_when_the_visitor_already_paid_later(rb: Harness) -> None:
    rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"))
    rb.run(rb.paid("o1", "c1", day(2)))  # nobody eligible then as known: unattributed
    assert rb.orders()["o1"].distributor_id is None

    rb.run(rb.started("d1", day(0)))
    assert rb.published("fx.binding.created") == []
    assert rb.bindings("c1") == []
    [visit] = rb.visits()
    assert (visit.outcome, visit.binding_id) == (VisitOutcome.LATE, None)
    assert rb.orders()["o1"].distributor_id is None  # attribution is not revisited


def test_visit_first_arrival_binds_as_the_event_time_order_does(
    new_harness: HarnessFactory,
) -> None:
    in_time, visit_first = new_harness("in_time"), new_harness("visit_first")
    records = {
        "started": in_time.started("d1", day(0)),
        "v1": in_time.visit("s1", "d1", "c1", day(1), event_id="v1"),
        "v2": in_time.visit("s1", "d1", "c2", day(2), event_id="v2"),
        "v3": in_time.visit("s1", "d1", "c1", day(3), event_id="v3"),
    }
    in_time.run_each(*(records[k] for k in ("started", "v1", "v2", "v3")))
    visit_first.run_each(*(records[k] for k in ("v1", "v2", "v3", "started")))

    def created(harness: Harness) -> list[tuple[str, str, str, datetime]]:
        out = []
        for event in harness.published("fx.binding.created"):
            assert isinstance(event.data, BindingCreated)
            out.append(
                (
                    event.data.binding_id,
                    event.data.customer_id,
                    event.data.distributor_id,
                    event.time,
                )
            )
        return sorted(out)

    assert created(visit_first) == created(in_time)
    assert {binding_id for binding_id, *_ in created(in_time)} == {
        binding_id_for("v1"),
        binding_id_for("v2"),
    }
    assert [(v.event_id, v.outcome) for v in visit_first.visits()] == [
        (v.event_id, v.outcome) for v in in_time.visits()
    ]
