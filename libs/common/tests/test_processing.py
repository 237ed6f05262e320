"""The batch processor on a real SQLite store, records handed in directly (no broker)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, select

from fx_common import db
from fx_common.clock import SimulatedClock
from fx_common.contracts.attributions import AttributedOrderCompleted
from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event, decode
from fx_common.processing import BatchProcessor, Rejected, UnitOfWork
from fx_common.testing import raw_record, record

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Seen(SQLModel, table=True):
    __tablename__ = "test_seen"
    id: int | None = Field(default=None, primary_key=True)
    order_id: str


def on_paid(uow: UnitOfWork, event: Event) -> None:
    order_id = event.data.order_id  # type: ignore[attr-defined]
    if order_id == "reject-me":
        uow.session.add(Seen(order_id="must-not-survive"))
        raise Rejected("unbookable", "this order cannot be booked")
    uow.session.add(Seen(order_id=order_id))
    uow.publish(
        AttributedOrderCompleted.model_validate(
            SAMPLES["fx.order.completed"] | {"order_id": order_id}
        ),
        time=event.time,
    )


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_schema(engine, [Seen])
    return engine


def paid(order_id: str, event_id: str | None = None) -> ConsumerRecord[bytes, bytes]:
    return record(
        "mall.order.paid", SAMPLES["mall.order.paid"] | {"order_id": order_id}, time=T0,
        event_id=event_id,
    )  # fmt: skip


def rows(engine: Engine) -> tuple[list[str], list[db.OutboxRecord]]:
    with Session(engine) as s:
        return list(s.exec(select(Seen.order_id))), list(s.exec(select(db.OutboxRecord)))


def test_applies_dedups_and_publishes_once(engine: Engine) -> None:
    processor = BatchProcessor("svc", engine, {"mall.order.paid": on_paid})
    first = processor.process([paid("o1", "e1"), paid("o2", "e2"), paid("o1", "e1")])
    assert (first.applied, first.duplicates, first.published) == (2, 1, 2)
    again = processor.process([paid("o1", "e1"), paid("o3", "e3")])
    assert (again.applied, again.duplicates) == (1, 1)
    seen, outbox = rows(engine)
    assert sorted(seen) == ["o1", "o2", "o3"]
    assert len({r.ce_id for r in outbox}) == 3


def test_published_ids_are_deterministic_per_cause(tmp_path: Path) -> None:
    ids = []
    for name in ("a", "b"):
        engine = db.make_engine(f"sqlite:///{tmp_path / name}.db")
        db.create_schema(engine, [Seen])
        BatchProcessor("svc", engine, {"mall.order.paid": on_paid}).process([paid("o1", "e1")])
        ids.append([r.ce_id for r in rows(engine)[1]])
    assert ids[0] == ids[1]


def test_poison_records_are_dead_lettered_and_the_rest_applies(engine: Engine) -> None:
    good = paid("o1")
    bad_json = raw_record("mall.orders.v1", b"{nope", list(good.headers), key="b1")
    negative = dict(SAMPLES["mall.order.paid"])
    negative["lines"] = [{**negative["lines"][0], "paid_amount_fen": -5}]
    wrong = raw_record("mall.orders.v1", json.dumps(negative).encode(), list(good.headers))
    version = [(k, b"0.3" if k == "ce_specversion" else v) for k, v in good.headers]
    old = raw_record("mall.orders.v1", good.value, version)
    outcome = BatchProcessor("svc", engine, {"mall.order.paid": on_paid}).process(
        [bad_json, wrong, old, good]
    )
    assert (outcome.dead_lettered, outcome.applied) == (3, 1)
    seen, outbox = rows(engine)
    dlq = [r for r in outbox if r.topic == "fx.dlq.svc.v1"]
    errors = sorted(base64.b64decode(dict(json.loads(r.headers))["fx_error_type"]) for r in dlq)
    assert errors == [b"contract_violation", b"invalid_json", b"unsupported_version"]
    assert seen == ["o1"]


def test_a_cloudevents_header_that_is_not_utf8_dead_letters_only_its_record(
    engine: Engine,
) -> None:
    good = paid("o1")
    broken = paid("o2")
    source = [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in broken.headers]
    foreign = paid("o3")
    outcome = BatchProcessor("svc", engine, {"mall.order.paid": on_paid}).process(
        [
            good,
            raw_record("mall.orders.v1", broken.value, source),
            raw_record("mall.orders.v1", foreign.value, [*foreign.headers, ("x-bin", b"\x80")]),
        ]
    )
    assert (outcome.applied, outcome.dead_lettered) == (2, 1)
    seen, outbox = rows(engine)
    assert sorted(seen) == ["o1", "o3"]
    [dead] = [r for r in outbox if r.topic == "fx.dlq.svc.v1"]
    headers = [(k, base64.b64decode(v)) for k, v in json.loads(dead.headers)]
    assert ("fx_error_type", b"invalid_envelope") in headers
    assert ("ce_source", b"\xff\xfe") in headers


def test_rejected_event_rolls_back_its_writes_and_goes_to_dlq(engine: Engine) -> None:
    outcome = BatchProcessor("svc", engine, {"mall.order.paid": on_paid}).process(
        [paid("o1"), paid("reject-me"), paid("o2")]
    )
    assert (outcome.applied, outcome.dead_lettered) == (2, 1)
    seen, outbox = rows(engine)
    assert sorted(seen) == ["o1", "o2"]
    dlq = [r for r in outbox if r.topic.startswith("fx.dlq.")]
    assert len(dlq) == 1 and dlq[0].value is not None
    headers = dict(json.loads(dlq[0].headers))
    assert base64.b64decode(headers["fx_error_type"]) == b"unbookable"
    assert decode(dlq[0].value, list(paid("x").headers)).type == "mall.order.paid"


def test_unknown_mall_types_are_ignored_not_dead_lettered(engine: Engine) -> None:
    good = paid("o1")
    other = [(k, b"mall.order.shipped" if k == "ce_type" else v) for k, v in good.headers]
    outcome = BatchProcessor("svc", engine, {}).process(
        [raw_record("mall.orders.v1", good.value, other)]
    )
    assert (outcome.ignored, outcome.dead_lettered) == (1, 0)


def test_clock_events_move_the_simulated_clock_and_tick(engine: Engine) -> None:
    ticks: list[datetime] = []
    clock = SimulatedClock(T0)
    processor = BatchProcessor(
        "svc", engine, {}, on_tick=lambda uow, now: ticks.append(now), clock=clock
    )
    later = T0 + timedelta(days=7)
    processor.process([record("fx.clock.set", {"now": later.isoformat()}, time=later)])
    assert clock.now() == later and ticks == [later]
    assert not clock.advance_to(T0)
