"""Handlers on a real SQLite store, driven through the batch processor (no broker)."""

from __future__ import annotations

import copy
import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import db, migrations
from fx_common.clock import SimulatedClock
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import QUALIFICATION
from fx_common.envelope import Event
from fx_common.processing import BatchProcessor
from fx_common.runtime import processor_for
from fx_common.testing import events_published, record
from qualification import store
from qualification.app import HISTORY, SPEC
from qualification.domain import Policy, Qualification, Status
from qualification.handlers import tick_with_grace

CONFIRMED_AT = datetime(2026, 1, 1, 10, tzinfo=UTC)
DEADLINE = CONFIRMED_AT + timedelta(days=30)
IN_WINDOW = CONFIRMED_AT + timedelta(days=2)
POLICY = Policy(3, timedelta(days=30), True, timedelta(0))
PAID_FEN = sum(line["paid_amount_fen"] for line in SAMPLES["fx.order.attributed"]["lines"])


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'qualification.db'}")
    migrations.upgrade(engine, HISTORY)
    return engine


def seed(engine: Engine, user_id: str = "u-sharer", status: Status = Status.ASSESSING) -> None:
    q = Qualification(user_id)
    q.apply(CONFIRMED_AT - timedelta(hours=1), POLICY)
    if status is Status.ASSESSING:
        q.confirm_contact(CONFIRMED_AT, POLICY)
    with Session(engine) as session, session.begin():
        written = store.Qualifications(session)
        written.save(q)
        written.write()


def processor(engine: Engine) -> BatchProcessor:
    return processor_for(SPEC, engine, SimulatedClock(CONFIRMED_AT))


def attributed(
    order_id: str,
    paid_at: datetime = IN_WINDOW,
    *,
    user_id: str = "u-sharer",
    basis: str = "binding",
    event_id: str | None = None,
) -> ConsumerRecord[bytes, bytes]:
    data: dict[str, Any] = copy.deepcopy(SAMPLES["fx.order.attributed"])
    data |= {
        "order_id": order_id,
        "distributor_id": user_id,
        "basis": basis,
        "paid_at": paid_at.isoformat(),
    }
    return record("fx.order.attributed", data, time=paid_at, event_id=event_id)


def refunded(
    order_id: str, refund_id: str, amount_fen: int, at: datetime = IN_WINDOW
) -> ConsumerRecord[bytes, bytes]:
    data: dict[str, Any] = copy.deepcopy(SAMPLES["fx.order.refunded"])
    data |= {
        "order_id": order_id,
        "refund_id": refund_id,
        "lines": [{"line_id": "l-1", "refund_amount_fen": amount_fen}],
    }
    return record("fx.order.refunded", data, time=at)


def clock(now: datetime) -> ConsumerRecord[bytes, bytes]:
    return record("fx.clock.set", {"now": now.isoformat()}, time=now)


def published(engine: Engine) -> list[Event]:
    """The events staged on `fx.qualification.v1`, decoded as a consumer would."""
    return events_published(engine, topic=QUALIFICATION)


def loaded(engine: Engine, user_id: str = "u-sharer") -> Qualification:
    with Session(engine) as session:
        q = store.load(session, user_id, for_update=False)
    assert q is not None
    return q


def test_three_attributed_orders_qualify_and_publish_each_step(engine: Engine) -> None:
    seed(engine)
    outcome = processor(engine).process(
        [
            attributed("o-1"),
            attributed("o-2", IN_WINDOW + timedelta(hours=1)),
            attributed("o-3", IN_WINDOW + timedelta(hours=2), basis="self"),
        ]
    )
    assert outcome.applied == 3
    events = published(engine)
    assert [e.type for e in events] == [
        "fx.distributor.assessment_progressed",
        "fx.distributor.assessment_progressed",
        "fx.distributor.assessment_progressed",
        "fx.distributor.qualified",
    ]
    assert [e.data.qualifying_orders for e in events[:3]] == [1, 2, 3]  # type: ignore[attr-defined]
    assert events[3].data.order_ids == ["o-1", "o-2", "o-3"]  # type: ignore[attr-defined]
    assert events[3].time == IN_WINDOW + timedelta(hours=2)
    assert loaded(engine).status is Status.QUALIFIED


def test_an_order_is_counted_once_even_under_a_new_event_id(engine: Engine) -> None:
    seed(engine)
    first = attributed("o-1", event_id="e-1")
    outcome = processor(engine).process([first, first, attributed("o-1", event_id="e-2")])
    assert (outcome.applied, outcome.duplicates) == (2, 1)
    again = processor(engine).process([attributed("o-1", event_id="e-1")])
    assert again.duplicates == 1
    assert [e.data.qualifying_orders for e in published(engine)] == [1]  # type: ignore[attr-defined]
    assert loaded(engine).qualifying_orders == 1


def test_orders_of_users_not_assessing_are_ignored(engine: Engine) -> None:
    seed(engine, "u-applied", Status.APPLIED)
    outcome = processor(engine).process(
        [attributed("o-1", user_id="u-applied"), attributed("o-2", user_id="u-stranger")]
    )
    assert outcome.applied == 2
    assert published(engine) == []
    assert loaded(engine, "u-applied").orders == {}


def test_a_recruiter_recorded_on_its_topic_is_skipped(engine: Engine) -> None:
    """fx.recruiter.recorded shares fx.attributions.v1 with the orders; qualification has no
    handler for it: counted as ignored, nothing stored or published, never dead-lettered."""
    seed(engine)
    data = copy.deepcopy(SAMPLES["fx.recruiter.recorded"]) | {"distributor_id": "u-sharer"}
    at = CONFIRMED_AT + timedelta(days=1)
    outcome = processor(engine).process([record("fx.recruiter.recorded", data, time=at)])
    assert (outcome.applied, outcome.ignored, outcome.dead_lettered) == (0, 1, 0)
    assert published(engine) == []
    assert loaded(engine, "u-sharer").orders == {}


def test_full_refund_in_the_window_uncounts_partial_does_not(engine: Engine) -> None:
    seed(engine)
    processor(engine).process(
        [
            attributed("o-1"),
            attributed("o-2"),
            refunded("o-1", "r-1", PAID_FEN - 1),
            refunded("o-2", "r-2", PAID_FEN // 2),
            refunded("o-2", "r-3", PAID_FEN - PAID_FEN // 2),
        ]
    )
    counts = [e.data.qualifying_orders for e in published(engine)]  # type: ignore[attr-defined]
    assert counts == [1, 2, 1]
    q = loaded(engine)
    assert q.orders["o-1"].refunded_fen == PAID_FEN - 1 and q.orders["o-1"].counts
    assert q.orders["o-2"].refunded_fen == PAID_FEN and not q.orders["o-2"].counts


def test_the_tick_fails_the_candidate_at_the_deadline(engine: Engine) -> None:
    seed(engine)
    seed(engine, "u-other")
    processor(engine).process([attributed("o-1"), clock(DEADLINE)])
    assert loaded(engine).status is Status.ASSESSING, "the deadline itself is inside the window"
    processor(engine).process([clock(DEADLINE + timedelta(days=2))])
    failures = [e for e in published(engine) if e.type == "fx.distributor.assessment_failed"]
    assert sorted((e.data.user_id, e.data.qualifying_orders) for e in failures) == [  # type: ignore[attr-defined]
        ("u-other", 0),
        ("u-sharer", 1),
    ]
    assert {e.time for e in failures} == {DEADLINE}
    assert loaded(engine).failed_at == DEADLINE


def test_an_order_paid_after_the_deadline_never_counts_even_before_the_tick(
    engine: Engine,
) -> None:
    seed(engine)
    processor(engine).process(
        [
            attributed("o-1"),
            attributed("o-2"),
            attributed("o-late", DEADLINE + timedelta(seconds=1)),
            clock(DEADLINE + timedelta(minutes=1)),
        ]
    )
    assert [e.type for e in published(engine)][-1] == "fx.distributor.assessment_failed"
    assert published(engine)[-1].data.qualifying_orders == 2  # type: ignore[attr-defined]
    assert "o-late" not in loaded(engine).orders


def test_with_a_grace_period_an_order_paid_in_time_but_arriving_late_still_counts(
    engine: Engine,
) -> None:
    seed(engine)
    spec = dataclasses.replace(SPEC, on_tick=tick_with_grace(timedelta(hours=1)))
    graced = processor_for(spec, engine, SimulatedClock(CONFIRMED_AT))
    graced.process([attributed("o-1"), attributed("o-2")])
    graced.process([clock(DEADLINE + timedelta(minutes=30))])
    assert loaded(engine).status.value == "assessing"  # the window closed, the grace has not
    graced.process([attributed("o-3", DEADLINE - timedelta(seconds=1))])
    assert loaded(engine).status.value == "qualified"
    graced.process([clock(DEADLINE + timedelta(hours=2))])
    assert loaded(engine).status.value == "qualified"


def test_after_the_grace_period_the_candidate_fails_at_the_deadline(engine: Engine) -> None:
    seed(engine)
    spec = dataclasses.replace(SPEC, on_tick=tick_with_grace(timedelta(hours=1)))
    graced = processor_for(spec, engine, SimulatedClock(CONFIRMED_AT))
    graced.process([attributed("o-1"), clock(DEADLINE + timedelta(hours=1, seconds=1))])
    assert loaded(engine).status.value == "failed"
    assert loaded(engine).failed_at == DEADLINE


def test_history_mirrors_what_was_published(engine: Engine) -> None:
    seed(engine)
    processor(engine).process([attributed("o-1"), clock(DEADLINE + timedelta(days=1))])
    with Session(engine) as session:
        history = store.history(session, "u-sharer")
    assert [(h.seq, h.ce_type, h.at) for h in history] == [
        (0, "fx.distributor.assessment_progressed", IN_WINDOW),
        (1, "fx.distributor.assessment_failed", DEADLINE),
    ]
    assert history[1].data == {"user_id": "u-sharer", "qualifying_orders": 1}


def test_replay_into_an_empty_store_publishes_the_same_event_ids(tmp_path: Path) -> None:
    batch = [
        attributed("o-1", event_id="e-1"),
        refunded("o-1", "r-1", PAID_FEN),
        attributed("o-2", event_id="e-2"),
        clock(DEADLINE + timedelta(days=1)),
    ]
    ids = []
    for name in ("first", "replay"):
        engine = db.make_engine(f"sqlite:///{tmp_path / name}.db")
        migrations.upgrade(engine, HISTORY)
        seed(engine)
        processor(engine).process(batch)
        ids.append([(e.id, e.type, e.time) for e in published(engine)])
    assert ids[0] == ids[1] and len(ids[0]) == 4


def test_a_batch_issues_the_same_sql_for_few_or_many_candidates(tmp_path: Path) -> None:
    """Set-based: loads and writes per batch, not per event (attributions, refunds, tick)."""

    def statements_for(candidates: int) -> int:
        engine = db.make_engine(f"sqlite:///{tmp_path / f'{candidates}.db'}")
        migrations.upgrade(engine, HISTORY)
        qualifying, late = (
            [f"q-{k}" for k in range(candidates)],
            [f"l-{k}" for k in range(candidates)],
        )
        for user_id in qualifying + late:
            seed(engine, user_id)
        batch = []
        for user_id in qualifying:
            orders = [f"{user_id}-o{n}" for n in range(5)]
            refund: dict[str, Any] = copy.deepcopy(SAMPLES["fx.order.refunded"])
            refund |= {"order_id": orders[0], "distributor_id": user_id, "refund_id": "r-1"}
            refund["lines"] = [{"line_id": "l-1", "refund_amount_fen": PAID_FEN}]
            batch += [
                attributed(orders[0], user_id=user_id),
                attributed(orders[1], user_id=user_id),
            ]
            batch.append(record("fx.order.refunded", refund, time=IN_WINDOW))
            batch += [attributed(order_id, user_id=user_id) for order_id in orders[2:]]
        batch.append(clock(DEADLINE + timedelta(days=1)))
        count = 0

        def counted(*_: Any) -> None:
            nonlocal count
            count += 1

        event.listen(engine, "before_cursor_execute", counted)
        processor(engine).process(batch)
        event.remove(engine, "before_cursor_execute", counted)
        kinds = [e.type.rsplit(".", 1)[1] for e in published(engine)]
        assert kinds.count("qualified") == kinds.count("assessment_failed") == candidates
        assert all(loaded(engine, user_id).status is Status.QUALIFIED for user_id in qualifying)
        return count

    assert statements_for(2) == statements_for(40)
