"""The relay's reads and writes of the outbox, on SQLite and Postgres: it marks exactly the rows
it sent (a row committed meanwhile with a lower id stays pending) and reports the backlog."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fx_common import db
from fx_common.processing.relay import OutboxRelay

AT = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _add_rows(engine: Engine, count: int) -> list[int]:
    with Session(engine) as session, session.begin():
        rows = [
            db.OutboxRecord(topic="t", key=f"k{n}", value=b"v", headers="[]", created_at=AT)
            for n in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows if row.id is not None]


def _published(engine: Engine) -> dict[int, datetime | None]:
    with Session(engine) as session:
        rows = session.exec(select(db.OutboxRecord.id, db.OutboxRecord.published_at))
        return {row_id: at for row_id, at in rows if row_id is not None}


def test_marks_exactly_the_rows_sent(plumbing_engine: Engine) -> None:
    ids = _add_rows(plumbing_engine, 6)
    sent = [ids[1], ids[2], ids[4]]  # a gap: ids[3] was not visible when the relay read
    with Session(plumbing_engine) as session, session.begin():
        db.mark_published(session, sent, AT)
        db.mark_published(session, [], AT)
    published = _published(plumbing_engine)
    assert {i for i, at in published.items() if at is not None} == set(sent)
    assert all(published[i] == AT for i in sent), "the time is stored as SQLAlchemy stores it"
    with Session(plumbing_engine) as session:
        pending = [row.id for row in db.pending_outbox(session, 10)]
        assert pending == [ids[0], ids[3], ids[5]]
        assert db.outbox_backlog(session) == 3


def _backlog_gauge(service: str) -> float | None:
    return REGISTRY.get_sample_value("fx_outbox_backlog", {"service": service})


def test_the_backlog_gauge_without_a_count_when_the_load_is_short(
    plumbing_engine: Engine,
) -> None:
    service = f"outbox-test-{plumbing_engine.dialect.name}"
    _add_rows(plumbing_engine, 5)
    relay = OutboxRelay(service, plumbing_engine, "127.0.0.1:1", batch=3)
    assert len(relay._load()) == 3
    assert _backlog_gauge(service) == 5, "a full batch: counted (the first time)"
    _add_rows(plumbing_engine, 2)
    relay._load()
    assert _backlog_gauge(service) == 5, "a full batch within BACKLOG_COUNT_S: not recounted"
    relay._mark([row.id for row in relay._load()])
    relay._mark([row.id for row in relay._load()])
    assert len(relay._load()) == 1
    assert _backlog_gauge(service) == 1, "fewer rows than the batch: they are the backlog"
