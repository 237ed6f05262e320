"""Nothing vanishes silently: types on the wrong topic, unknown types in the namespaces we
consume, ignored types (counted, logged once) and ids reused with other content."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fx_common import db
from fx_common.clock import SimulatedClock
from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event, encode_structured, make_event
from fx_common.processing import BatchProcessor, UnitOfWork
from fx_common.testing import raw_record, record

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_schema(engine, [])
    return engine


class Applied:
    def __init__(self) -> None:
        self.orders: list[tuple[str, int]] = []

    def __call__(self, uow: UnitOfWork, event: Event) -> None:
        data = event.data
        self.orders.append((data.order_id, data.lines[0].paid_amount_fen))  # type: ignore[attr-defined]


def paid(order_id: str = "o1", event_id: str = "e1", fen: object = 1200) -> dict[str, object]:
    data: dict[str, Any] = json.loads(json.dumps(SAMPLES["mall.order.paid"]))
    data["order_id"] = order_id
    data["lines"][0]["paid_amount_fen"] = fen
    return data


def with_type(rec: ConsumerRecord[bytes, bytes], ce_type: str) -> ConsumerRecord[bytes, bytes]:
    headers = [(k, ce_type.encode() if k == "ce_type" else v) for k, v in rec.headers]
    return raw_record(rec.topic, rec.value, headers)


def dead_letters(engine: Engine) -> list[dict[str, str]]:
    with Session(engine) as session:
        rows = session.exec(select(db.OutboxRecord).where(db.OutboxRecord.ce_id == None))  # noqa: E711
        return [{k: base64.b64decode(v).decode() for k, v in json.loads(r.headers)} for r in rows]


def ignored(service: str, ce_type: str) -> float:
    reason = "documented" if ce_type.startswith("mall.") else "outside_contract"
    value = REGISTRY.get_sample_value(
        "fx_ignored_events_total", {"service": service, "type": ce_type, "reason": reason}
    )
    return value or 0.0


def test_a_clock_move_on_the_orders_topic_is_dead_lettered_and_moves_nothing(
    engine: Engine,
) -> None:
    clock, ticks = SimulatedClock(T0), []
    processor = BatchProcessor(
        "svc", engine, {}, on_tick=lambda uow, now: ticks.append(now), clock=clock
    )
    later = T0 + timedelta(days=400)
    moved = record("fx.clock.set", {"now": later.isoformat()}, time=later, topic="mall.orders.v1")
    outcome = processor.process([moved])
    assert (outcome.dead_lettered, outcome.applied) == (1, 0)
    assert clock.now() == T0 and ticks == []
    [letter] = dead_letters(engine)
    assert letter["fx_error_type"] == "wrong_topic"
    assert letter["fx_error_message"] == (
        "fx.clock.set is accepted only on fx.clock.v1, not on mall.orders.v1"
    )


def test_the_topic_check_sees_through_the_namespace(engine: Engine) -> None:
    applied = Applied()
    processor = BatchProcessor("svc", engine, {"mall.order.paid": applied}, namespace="t1.")
    good = record("mall.order.paid", paid(), time=T0, topic="t1.mall.orders.v1")
    wrong = record("mall.order.paid", paid("o2"), time=T0, topic="t1.mall.shares.v1")
    outcome = processor.process([good, wrong])
    assert (outcome.applied, outcome.dead_lettered) == (1, 1)
    assert [d["fx_error_type"] for d in dead_letters(engine)] == ["wrong_topic"]


@pytest.mark.parametrize("typo", ["mall.order.payed", "mall.share.visit", "mall.order.paid.v2"])
def test_an_unknown_type_in_a_consumed_namespace_is_dead_lettered(
    engine: Engine, typo: str
) -> None:
    rec = with_type(record("mall.order.paid", paid(), time=T0), typo)
    outcome = BatchProcessor("svc", engine, {}).process([rec])
    assert (outcome.dead_lettered, outcome.ignored) == (1, 0)
    [letter] = dead_letters(engine)
    assert letter["fx_error_type"] == "unknown_type"
    assert typo in letter["fx_error_message"]
    assert letter["fx_original_topic"] == "mall.orders.v1"


@pytest.mark.parametrize("ce_type", ["mall.order.cancelled", "crm.customer.updated"])
def test_ignored_types_are_counted_and_the_first_is_logged(
    engine: Engine, ce_type: str, caplog: pytest.LogCaptureFixture
) -> None:
    service = f"svc-{ce_type}"
    processor = BatchProcessor(service, engine, {})
    before = ignored(service, ce_type)
    records = [
        with_type(record("mall.order.paid", paid(event_id=f"x{i}"), time=T0), ce_type)
        for i in range(3)
    ]
    with caplog.at_level(logging.WARNING, logger="fx_common.processing.admission"):
        outcome = processor.process(records)
        processor.process(records[:1])
    assert (outcome.ignored, outcome.dead_lettered) == (3, 0)
    assert ignored(service, ce_type) == before + 4
    logged = [r for r in caplog.records if ce_type in r.getMessage()]
    assert len(logged) == 1
    assert dead_letters(engine) == []


def test_an_identical_redelivery_is_a_no_op_whatever_its_encoding(engine: Engine) -> None:
    applied = Applied()
    processor = BatchProcessor("svc", engine, {"mall.order.paid": applied})
    first = record("mall.order.paid", paid(fen=1200), time=T0, event_id="e1")
    assert processor.process([first]).applied == 1
    event = make_event("mall.order.paid", paid(fen=1200), time=T0, event_id="e1")
    value, headers = encode_structured(event)
    structured = raw_record("mall.orders.v1", value, headers)
    as_float = raw_record(
        "mall.orders.v1", first.value.replace(b":1200", b":1200.0"), list(first.headers)
    )
    assert b"1200.0" in (as_float.value or b"")
    outcome = processor.process([first, structured, as_float])
    assert (outcome.duplicates, outcome.dead_lettered, outcome.applied) == (3, 0, 0)
    assert applied.orders == [("o1", 1200)]


def test_a_reused_id_with_other_content_is_dead_lettered(engine: Engine) -> None:
    applied = Applied()
    processor = BatchProcessor("svc", engine, {"mall.order.paid": applied})
    processor.process([record("mall.order.paid", paid(fen=1200), time=T0, event_id="e1")])
    other_amount = record("mall.order.paid", paid(fen=999), time=T0, event_id="e1")
    other_time = record("mall.order.paid", paid(fen=1200), time=T0 + timedelta(1), event_id="e1")
    outcome = processor.process([other_amount, other_time])
    assert (outcome.dead_lettered, outcome.applied, outcome.duplicates) == (2, 0, 0)
    letters = dead_letters(engine)
    assert {d["fx_error_type"] for d in letters} == {"duplicate_id_conflict"}
    assert "ce_id 'e1' was already applied with other content" in letters[0]["fx_error_message"]
    assert applied.orders == [("o1", 1200)]


def test_a_reused_id_inside_one_batch_is_caught_too(engine: Engine) -> None:
    applied = Applied()
    processor = BatchProcessor("svc", engine, {"mall.order.paid": applied})
    outcome = processor.process(
        [
            record("mall.order.paid", paid("o1"), time=T0, event_id="e1"),
            record("mall.order.paid", paid("o2"), time=T0, event_id="e1"),
            record("mall.order.paid", paid("o1"), time=T0, event_id="e1"),
        ]
    )
    assert (outcome.applied, outcome.dead_lettered, outcome.duplicates) == (1, 1, 1)
    assert applied.orders == [("o1", 1200)]


def test_rows_applied_before_digests_existed_stay_plain_duplicates(engine: Engine) -> None:
    processor = BatchProcessor("svc", engine, {"mall.order.paid": Applied()})
    processor.process([record("mall.order.paid", paid(), time=T0, event_id="e1")])
    with Session(engine) as session, session.begin():
        session.exec(update(db.InboxRecord).values(digest=None))
    outcome = processor.process([record("mall.order.paid", paid("o9"), time=T0, event_id="e1")])
    assert (outcome.duplicates, outcome.dead_lettered) == (1, 0)


def test_a_topic_outside_the_contract_carries_any_contract_type(engine: Engine) -> None:
    applied = Applied()
    processor = BatchProcessor("svc", engine, {"mall.order.paid": applied})
    outcome = processor.process([record("mall.order.paid", paid(), time=T0, topic="t.probe.in")])
    assert (outcome.applied, outcome.dead_lettered) == (1, 0)
