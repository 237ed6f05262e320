"""Handlers driven through the batch processor on SQLite (no broker)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from commission import domain, store
from commission.domain import Rate, RatePlan
from fx_common import db
from fx_common.contracts.topics import COMMISSIONS

if TYPE_CHECKING:
    from conftest import Harness

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOLD = timedelta(days=7)


def kinds(h: Harness) -> list[tuple[str, str, int | None]]:
    """(type without prefix, line, amount) of every published commission event."""
    return [
        (e.type.removeprefix("fx.commission."), e.data.line_id, e.data.amount_fen)
        for e in h.published()
    ]


def test_the_sample_story_from_held_to_clawback(harness: Harness) -> None:
    h = harness
    h.qualification("assessment_started", T0 - 5 * DAY)
    h.attribute("o-1", {"l-1": 25800, "l-2": 3900}, T0)
    assert {c.status for c in h.commissions()} == {"held"}
    h.qualification("qualified", T0 + DAY)
    h.complete("o-1", T0 + 2 * DAY)
    h.tick(T0 + 2 * DAY + HOLD - timedelta(seconds=1))
    assert {c.status for c in h.commissions()} == {"frozen"}
    h.tick(T0 + 10 * DAY)
    h.refund("o-1", "r-1", {"l-1": 12900}, T0 + 11 * DAY)
    assert kinds(h) == [
        ("accrued", "l-1", 2580),
        ("accrued", "l-2", 390),
        ("released", "l-1", 2580),
        ("released", "l-2", 390),
        ("settled", "l-1", 2580),
        ("settled", "l-2", 390),
        ("reversed", "l-1", 1290),
    ]
    events = h.published()
    accrued = events[0].data
    assert (accrued.status, accrued.rate_bps, accrued.plan_version) == ("held", 1000, 0)
    assert events[4].time == T0 + 2 * DAY + HOLD  # settled as of the end of the hold
    assert events[6].data.refund_id == "r-1"
    assert all(e.data.distributor_id == "d-1" for e in events)
    assert all(e.source == "/fx/commission" for e in events)
    assert all(e.subject == e.data.commission_id for e in events)
    first = h.commission("o-1", "l-1")
    assert (first.status, first.amount_fen, first.settled_fen, first.reversed_fen) == (
        "settled", 1290, 2580, 1290,
    )  # fmt: skip


def test_qualified_before_the_attribution_accrues_pending(harness: Harness) -> None:
    harness.qualification("qualified", T0 - DAY)
    harness.attribute("o-1", {"l-1": 10000}, T0)
    assert kinds(harness) == [("accrued", "l-1", 1000)]
    assert harness.published()[0].data.status == "pending"


def test_the_qualifying_order_arriving_after_the_qualification_is_pending(harness: Harness) -> None:
    harness.qualification("qualified", T0)
    harness.attribute("o-3", {"l-1": 10000}, T0)
    assert harness.commission("o-3").status == "pending"


def test_completion_and_refund_before_the_attribution_are_kept_until_it_arrives(
    harness: Harness,
) -> None:
    h = harness
    h.complete("o-1", T0 + DAY)
    h.refund("o-1", "r-1", {"l-1": 5000, "l-9": 100}, T0 + 2 * DAY)
    assert h.published() == [] and h.commissions() == []
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000, "l-2": 2000}, T0)
    assert kinds(h) == [("accrued", "l-1", 1000), ("adjusted", "l-1", 500), ("accrued", "l-2", 200)]
    assert h.published()[1].time == T0 + 2 * DAY
    assert {c.line_id: (c.status, c.settle_at) for c in h.commissions()} == {
        "l-1": ("frozen", T0 + DAY + HOLD),
        "l-2": ("frozen", T0 + DAY + HOLD),
    }


def test_repeated_facts_are_applied_once(harness: Harness) -> None:
    h = harness
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000}, T0, event_id="e-1")
    assert h.attribute("o-1", {"l-1": 10000}, T0, event_id="e-1").duplicates == 1
    h.attribute("o-1", {"l-1": 99999}, T0, event_id="e-2")  # same order, told again
    h.refund("o-1", "r-1", {"l-1": 1000}, T0 + DAY)
    h.refund("o-1", "r-1", {"l-1": 1000}, T0 + DAY)
    h.complete("o-1", T0 + DAY)
    h.complete("o-1", T0 + 3 * DAY)
    assert kinds(h) == [("accrued", "l-1", 1000), ("adjusted", "l-1", 900)]
    commission = h.commission("o-1")
    assert (commission.amount_fen, commission.refunded_fen) == (900, 1000)
    assert commission.settle_at == T0 + DAY + HOLD


def test_failure_voids_held_commission_for_good(harness: Harness) -> None:
    h = harness
    h.qualification("assessment_started", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000}, T0)
    h.qualification("assessment_failed", T0 + 30 * DAY)
    h.qualification("applied", T0 + 31 * DAY)
    h.qualification("assessment_started", T0 + 32 * DAY)
    h.qualification("qualified", T0 + 40 * DAY)
    assert kinds(h) == [("accrued", "l-1", 1000), ("voided", "l-1", 1000)]
    assert h.published()[1].data.reason == domain.VOID_FAILED


def test_an_order_of_the_second_attempt_is_released_by_its_qualification(harness: Harness) -> None:
    h = harness
    h.qualification("assessment_failed", T0 - 10 * DAY)
    h.qualification("qualified", T0 + DAY)
    h.attribute("o-1", {"l-1": 10000}, T0)  # paid during the second attempt, arrives late
    assert h.commission("o-1").status == "pending"


def test_revocation_voids_what_had_not_settled_by_then_and_keeps_the_rest(harness: Harness) -> None:
    h = harness
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-early", {"l-1": 10000}, T0)
    h.attribute("o-late", {"l-1": 20000}, T0)
    h.attribute("o-open", {"l-1": 30000}, T0)
    h.complete("o-early", T0)  # settles at T0 + 7d
    h.complete("o-late", T0 + 5 * DAY)  # settles at T0 + 12d
    h.tick(T0 + 13 * DAY)  # both settle: the revocation has not arrived yet
    h.qualification("revoked", T0 + 10 * DAY)
    state = {c.order_id: (c.status, c.amount_fen) for c in h.commissions()}
    assert state == {
        "o-early": ("settled", 1000),
        "o-late": ("reversed", 0),
        "o-open": ("voided", 0),
    }
    tail = [(e.type, e.data.order_id) for e in h.published()][-2:]
    assert sorted(tail) == [
        ("fx.commission.reversed", "o-late"), ("fx.commission.voided", "o-open"),
    ]  # fmt: skip


def test_other_distributors_are_untouched(harness: Harness) -> None:
    harness.attribute("o-1", {"l-1": 10000}, T0, distributor="d-1")
    harness.attribute("o-2", {"l-1": 10000}, T0, distributor="d-2")
    harness.qualification("assessment_failed", T0 + DAY, user="d-1")
    assert {c.order_id: c.status for c in harness.commissions()} == {
        "o-1": "voided", "o-2": "held",
    }  # fmt: skip


def test_the_plan_version_in_force_at_payment_is_used(harness: Harness) -> None:
    with Session(harness.engine) as session, session.begin():
        store.add_plan_version(
            session,
            RatePlan(version=1, default_rate_bps=500, by_sku={"gift": Rate(fen_per_unit=300)}),
            effective_from=T0 - 10 * DAY,
        )
        store.add_plan_version(
            session, RatePlan(version=2, default_rate_bps=2000), effective_from=T0 + DAY
        )
    h = harness
    h.attribute("o-old", {"l-1": 10000}, T0 - 20 * DAY)
    h.attribute("o-1", [h.line("l-1", 10000), h.line("l-2", 1000, sku="gift", quantity=2)], T0)
    h.attribute("o-new", {"l-1": 10000}, T0 + 2 * DAY)
    got = {
        (c.order_id, c.line_id): (c.plan_version, c.amount_fen, c.rate_bps) for c in h.commissions()
    }
    assert got == {
        ("o-old", "l-1"): (0, 1000, 1000),
        ("o-1", "l-1"): (1, 500, 500),
        ("o-1", "l-2"): (1, 600, 6000),
        ("o-new", "l-1"): (2, 2000, 2000),
    }
    assert {e.data.plan_version for e in h.published()} == {0, 1, 2}


def test_every_change_is_in_the_audit_trail(harness: Harness) -> None:
    h = harness
    h.attribute("o-1", {"l-1": 10000}, T0, event_id="attr-1")
    h.complete("o-1", T0 + DAY)
    h.qualification("qualified", T0 + 2 * DAY)
    h.tick(T0 + 30 * DAY)
    trail = [(a.kind, a.status_before, a.status_after, a.amount_before, a.amount_after)
             for a in h.audit()]  # fmt: skip
    assert trail == [
        ("accrued", None, "held", 0, 1000),
        ("frozen", "held", "held", 1000, 1000),
        ("released", "held", "frozen", 1000, 1000),
        ("settled", "frozen", "settled", 1000, 1000),
    ]
    audit = h.audit()
    assert audit[0].cause_id == "attr-1"
    assert audit[1].event_id is None  # frozen is internal: nothing published
    assert audit[3].cause_id == f"clock:{(T0 + 30 * DAY).isoformat()}"
    published = {e.id for e in h.published()}
    assert {a.event_id for a in audit if a.event_id} == published
    assert {a.plan_version for a in audit} == {0}


def test_ticks_settle_only_what_is_due(harness: Harness) -> None:
    harness.qualification("qualified", T0 - DAY)
    harness.attribute("o-1", {"l-1": 10000}, T0)
    harness.complete("o-1", T0)
    assert harness.tick(T0 + HOLD - timedelta(seconds=1)).published == 0
    assert harness.tick(T0 + HOLD).published == 1
    assert harness.tick(T0 + 2 * HOLD).published == 0


def test_a_replay_into_an_empty_store_publishes_the_same_events(
    make_harness: Callable[[], Harness],
) -> None:
    def story(h: Harness) -> list[tuple[str, str, bytes]]:
        h.attribute("o-1", {"l-1": 10000, "l-2": 500}, T0, event_id="a")
        h.send("fx.distributor.qualified", {"user_id": "d-1", "order_ids": ["o-1"]}, T0, "q")
        h.send("fx.order.completed", {"order_id": "o-1", "distributor_id": "d-1"}, T0, "c")
        h.tick(T0 + 30 * DAY)
        return [(e.id, e.type, e.data.model_dump_json().encode()) for e in h.published()]

    first, second = story(make_harness()), story(make_harness())
    assert first == second and len(first) == 6


def test_commission_events_go_to_the_commissions_topic(harness: Harness) -> None:
    harness.attribute("o-1", {"l-1": 10000}, T0)
    with Session(harness.engine) as session:
        rows = list(session.exec(select(db.OutboxRecord)))
    assert [(r.topic, r.key) for r in rows] == [(COMMISSIONS, "d-1")]


def test_one_batch_does_what_one_batch_per_event_does(
    harness: Harness, make_harness: Callable[[], Harness]
) -> None:
    """Completions and refunds before their order, releases, voids, a revocation's clawback
    and settlements by a tick, for several distributors, all in one batch."""

    def story(h: Harness) -> None:
        h.qualification("assessment_started", T0 - 5 * DAY, user="d-1")
        h.qualification("qualified", T0 - DAY, user="d-2")
        h.complete("o-3", T0 + DAY, distributor="d-2")
        h.refund("o-3", "r-1", {"l-1": 4000}, T0 + DAY, distributor="d-2")
        for n in range(1, 7):
            distributor = f"d-{n % 3 + 1}"
            h.attribute(f"o-{n}", {"l-1": 10000 * n, "l-2": 999}, T0, distributor=distributor)
            h.complete(f"o-{n}", T0 + n * DAY, distributor=distributor)
        h.refund("o-2", "r-2", {"l-2": 999}, T0 + 2 * DAY, distributor="d-3")
        h.qualification("qualified", T0 + 2 * DAY, user="d-1")
        h.qualification("assessment_failed", T0 + 2 * DAY, user="d-3")
        h.tick(T0 + 10 * DAY)
        h.refund("o-1", "r-3", {"l-1": 5000}, T0 + 11 * DAY, distributor="d-2")
        h.qualification("revoked", T0 + 12 * DAY, user="d-2")
        h.attribute("o-1", {"l-1": 1}, T0, distributor="d-1")  # told again: ignored
        h.tick(T0 + 30 * DAY)

    records = make_harness().recorded(story)
    one_by_one = make_harness()
    for single in records:
        one_by_one.processor.process([single])
    harness.processor.process(records)
    snapshot = harness.snapshot()
    assert snapshot == one_by_one.snapshot()
    assert {kind for _, kind, *_ in snapshot["published"]} == {
        f"fx.commission.{kind}"
        for kind in ("accrued", "adjusted", "released", "voided", "settled", "reversed")
    }
