"""Settled and reversed commission booked into the ledger, through the real batch processor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.processing import BatchProcessor
from fx_common.runtime import processor_for
from fx_common.testing import outbox_header_text, record
from payout import domain, store
from payout.app import HISTORY, SPEC
from payout.domain import Balance

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'payout.db'}")
    migrations.upgrade(engine, HISTORY)
    return engine


@pytest.fixture
def processor(engine: Engine) -> BatchProcessor:
    return processor_for(SPEC, engine)


def commission(
    ce_type: str,
    amount_fen: int,
    *,
    event_id: str,
    commission_id: str = "c-1",
    distributor_id: str = "d-1",
    time: datetime = T0,
) -> ConsumerRecord[bytes, bytes]:
    data: dict[str, Any] = {
        **SAMPLES[ce_type],
        "commission_id": commission_id,
        "distributor_id": distributor_id,
        "amount_fen": amount_fen,
    }
    return record(ce_type, data, time=time, event_id=event_id)


def settled(amount_fen: int, **kwargs: Any) -> ConsumerRecord[bytes, bytes]:
    return commission("fx.commission.settled", amount_fen, **kwargs)


def reversed_(amount_fen: int, **kwargs: Any) -> ConsumerRecord[bytes, bytes]:
    return commission("fx.commission.reversed", amount_fen, **kwargs)


def balance(engine: Engine, distributor_id: str = "d-1") -> Balance:
    with Session(engine) as session:
        return domain.balance(store.ledger_totals(session, distributor_id))


def entries(engine: Engine) -> list[store.LedgerEntryRow]:
    with Session(engine) as session:
        return list(session.exec(select(store.LedgerEntryRow).order_by(store.LedgerEntryRow.id)))  # type: ignore[arg-type]


def test_a_settled_commission_is_credited_with_its_event(
    engine: Engine, processor: BatchProcessor
) -> None:
    outcome = processor.process([settled(2580, event_id="e-1", time=T0 + timedelta(hours=1))])
    assert (outcome.applied, outcome.published) == (1, 0)
    assert balance(engine) == Balance(2580, 0, 0)
    [entry] = entries(engine)
    assert (entry.kind, entry.amount_fen, entry.commission_id, entry.source_event_id) == (
        "credit",
        2580,
        "c-1",
        "e-1",
    )
    assert store.utc(entry.occurred_at) == T0 + timedelta(hours=1)


def test_a_redelivered_settlement_credits_once(engine: Engine, processor: BatchProcessor) -> None:
    first = processor.process([settled(2580, event_id="e-1"), settled(2580, event_id="e-1")])
    again = processor.process([settled(2580, event_id="e-1")])
    assert (first.applied, first.duplicates, again.duplicates) == (1, 1, 1)
    assert len(entries(engine)) == 1
    assert balance(engine) == Balance(2580, 0, 0)


def test_a_second_settlement_of_one_commission_is_dead_lettered(
    engine: Engine, processor: BatchProcessor
) -> None:
    outcome = processor.process(
        [
            settled(2580, event_id="e-1"),
            settled(2580, event_id="e-2"),
            settled(700, event_id="e-3", commission_id="c-2"),
        ]
    )
    assert (outcome.applied, outcome.dead_lettered) == (2, 1)
    assert balance(engine) == Balance(3280, 0, 0)
    with Session(engine) as session:
        [dead] = session.exec(select(db.OutboxRecord)).all()
    assert dead.topic == "fx.dlq.payout.v1"
    headers = outbox_header_text(dead.headers)
    assert headers["fx_error_type"] == "duplicate_settlement"
    assert headers["ce_id"] == "e-2"


def test_a_reversal_is_debited_and_may_go_below_zero(
    engine: Engine, processor: BatchProcessor
) -> None:
    processor.process([settled(2580, event_id="e-1")])
    processor.process([reversed_(1290, event_id="e-2"), reversed_(1290, event_id="e-3")])
    assert balance(engine) == Balance(0, 0, 0)
    processor.process([reversed_(500, event_id="e-4", commission_id="c-9")])
    assert balance(engine) == Balance(-500, 0, 0)
    assert [(e.kind, e.amount_fen) for e in entries(engine)] == [
        ("credit", 2580),
        ("debit", -1290),
        ("debit", -1290),
        ("debit", -500),
    ]


def test_a_redelivered_reversal_debits_once(engine: Engine, processor: BatchProcessor) -> None:
    processor.process([settled(2580, event_id="e-1"), reversed_(1000, event_id="e-2")])
    processor.process([reversed_(1000, event_id="e-2")])
    assert balance(engine) == Balance(1580, 0, 0)


@pytest.mark.parametrize(
    "ce_type",
    [
        "fx.commission.accrued",
        "fx.commission.released",
        "fx.commission.voided",
        "fx.commission.adjusted",
    ],
)
def test_commission_that_is_not_withdrawable_is_ignored(
    engine: Engine, processor: BatchProcessor, ce_type: str
) -> None:
    outcome = processor.process([record(ce_type, SAMPLES[ce_type], time=T0)])
    assert (outcome.ignored, outcome.applied, outcome.dead_lettered) == (1, 0, 0)
    assert entries(engine) == []


def test_balances_are_per_distributor(engine: Engine, processor: BatchProcessor) -> None:
    processor.process(
        [
            settled(1000, event_id="e-1", commission_id="c-1", distributor_id="d-1"),
            settled(3000, event_id="e-2", commission_id="c-2", distributor_id="d-2"),
            reversed_(400, event_id="e-3", commission_id="c-2", distributor_id="d-2"),
        ]
    )
    assert balance(engine, "d-1") == Balance(1000, 0, 0)
    assert balance(engine, "d-2") == Balance(2600, 0, 0)


def test_a_replay_into_an_empty_store_gives_the_same_ledger(tmp_path: Path) -> None:
    events = [
        settled(2580, event_id="e-1"),
        reversed_(80, event_id="e-2"),
        settled(900, event_id="e-3", commission_id="c-2", time=T0 + timedelta(days=1)),
    ]
    ledgers = []
    for name in ("first", "replay"):
        engine = db.make_engine(f"sqlite:///{tmp_path / name}.db")
        migrations.upgrade(engine, HISTORY)
        processor_for(SPEC, engine).process(events)
        ledgers.append(
            [(e.kind, e.amount_fen, e.source_event_id, e.occurred_at) for e in entries(engine)]
        )
    assert ledgers[0] == ledgers[1]
