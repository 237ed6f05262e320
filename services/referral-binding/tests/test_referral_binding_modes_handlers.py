"""Binding modes through the handlers and the BatchProcessor on SQLite: what each mode stores
and publishes, and that a replay into an empty store publishes the same events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from fx_common.contracts.attributions import OrderAttributed
from fx_common.contracts.bindings import BindingCreated, BindingReleased
from referral_binding.binding_modes import PERMANENT_UNTIL
from referral_binding.domain import ReleaseReason, VisitOutcome
from referral_binding.handlers import binding_id_for

if TYPE_CHECKING:
    from conftest import HarnessFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def test_overwrite_rebinds_to_the_latest_visit_and_keeps_the_intervals(
    new_harness: HarnessFactory,
) -> None:
    rb = new_harness("overwrite", binding_mode="overwrite")
    rb.run(rb.started("d1", day(0)), rb.started("d2", day(0)))
    rb.run(rb.visit("s1", "d1", "c1", day(1), event_id="v1"))
    rb.run(rb.visit("s2", "d2", "c1", day(3), event_id="v2"))
    rb.run(rb.paid("o1", "c1", day(4)))
    assert [e.type for e in rb.published()] == [
        "fx.binding.created",
        "fx.binding.released",
        "fx.binding.created",
        "fx.binding.extended",
        "fx.order.attributed",
    ]
    first, released, second = (e.data for e in rb.published()[:3])
    assert isinstance(first, BindingCreated) and isinstance(second, BindingCreated)
    assert isinstance(released, BindingReleased)
    assert (released.binding_id, released.reason, rb.published()[1].time) == (
        binding_id_for("v1"),
        "overwritten",
        day(3),
    )
    assert (second.binding_id, second.distributor_id) == (binding_id_for("v2"), "d2")
    [attributed] = [e.data for e in rb.published("fx.order.attributed")]
    assert isinstance(attributed, OrderAttributed)
    assert (attributed.distributor_id, attributed.basis) == ("d2", "binding")
    old, new = rb.bindings("c1")
    assert (old.released_at, old.release_reason) == (day(3), ReleaseReason.OVERWRITTEN)
    assert not old.protected_at(day(3)) and new.protected_at(day(3))
    visit = next(v for v in rb.visits() if v.event_id == "v2")
    assert (visit.outcome, visit.binding_id, visit.protected_by) == (
        VisitOutcome.BOUND.value,
        binding_id_for("v2"),
        "d1",
    )


def test_permanent_binding_outlives_any_clock_and_publishes_no_extension(
    new_harness: HarnessFactory,
) -> None:
    rb = new_harness("permanent", binding_mode="permanent")
    rb.run(rb.started("d1", day(0)), rb.visit("s1", "d1", "c1", day(1)))
    rb.run(rb.paid("o1", "c1", day(500)), rb.tick(day(20_000)))
    assert [e.type for e in rb.published()] == ["fx.binding.created", "fx.order.attributed"]
    [binding] = rb.bindings("c1")
    assert (binding.protected_until, binding.released_at) == (PERMANENT_UNTIL, None)
    rb.run(rb.started("d2", day(0)), rb.visit("s2", "d2", "c1", day(600)))
    assert rb.visits()[-1].outcome == VisitOutcome.CONTESTED.value


@pytest.mark.parametrize("mode", ["permanent", "overwrite"])
def test_a_replay_into_an_empty_store_publishes_the_same_events(
    mode: str, new_harness: HarnessFactory
) -> None:
    first = new_harness(f"{mode}-a", binding_mode=mode)
    records = [
        first.started("d1", day(0)),
        first.started("d2", day(0)),
        first.share("s1", "d1", day(0)),
        first.visit("s1", "d1", "c1", day(1)),
        first.visit("s2", "d2", "c1", day(2)),
        first.paid("o1", "c1", day(3)),
        first.paid("o2", "c2", day(4), share_id="s1"),
        first.visit("s2", "d2", "c2", day(5)),
        first.failed("d2", day(6)),
        first.tick(day(40)),
    ]
    first.run(*records[:4])
    first.run(*records[4:])
    again = new_harness(f"{mode}-b", binding_mode=mode)
    again.run_each(*records)
    assert first.outbox() == again.outbox()
    assert len(first.outbox()) >= 4
    assert first.processor.process(records).duplicates == len(records)
