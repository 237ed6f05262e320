"""A commission service on SQLite, fed records directly through the batch processor."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from commission import store
from commission.app import HISTORY, SPEC
from commission.domain import Terms
from commission.handlers import make_handlers
from fx_common import db, migrations
from fx_common.contracts.topics import COMMISSIONS
from fx_common.envelope import Event
from fx_common.processing import BatchOutcome
from fx_common.runtime import processor_for
from fx_common.testing import events_published, record

TERMS = Terms(default_rate_bps=1000, settlement_hold=timedelta(days=7))


def line(
    line_id: str, paid: int, *, sku: str = "tea-oolong-250g", category: str | None = "oolong",
    quantity: int = 1,
) -> dict[str, Any]:  # fmt: skip
    data: dict[str, Any] = {
        "line_id": line_id, "sku": sku, "quantity": quantity, "paid_amount_fen": paid,
    }  # fmt: skip
    if category is not None:
        data["category"] = category
    return data


class Harness:
    line = staticmethod(line)

    def __init__(self, engine: Engine, terms: Terms = TERMS) -> None:
        self.engine = engine
        self.processor = processor_for(replace(SPEC, on=make_handlers(terms)), engine)

    def send(
        self, ce_type: str, data: dict[str, Any], at: datetime, event_id: str | None = None
    ) -> BatchOutcome:
        return self.processor.process([record(ce_type, data, time=at, event_id=event_id)])

    def tick(self, now: datetime, event_id: str | None = None) -> BatchOutcome:
        event_id = event_id or f"clock:{now.isoformat()}"
        return self.send("fx.clock.set", {"now": now.isoformat()}, now, event_id)

    def attribute(
        self, order_id: str, lines: dict[str, int] | list[dict[str, Any]], paid_at: datetime,
        *, distributor: str = "d-1", event_id: str | None = None,
    ) -> BatchOutcome:  # fmt: skip
        if isinstance(lines, dict):
            lines = [line(line_id, paid) for line_id, paid in lines.items()]
        data = {
            "order_id": order_id, "buyer_id": "b-1", "distributor_id": distributor,
            "basis": "binding", "paid_at": paid_at.isoformat(), "lines": lines,
        }  # fmt: skip
        return self.send("fx.order.attributed", data, paid_at, event_id)

    def complete(self, order_id: str, at: datetime, *, distributor: str = "d-1") -> BatchOutcome:
        data = {"order_id": order_id, "distributor_id": distributor}
        return self.send("fx.order.completed", data, at)

    def refund(
        self, order_id: str, refund_id: str, amounts: dict[str, int], at: datetime,
        *, distributor: str = "d-1",
    ) -> BatchOutcome:  # fmt: skip
        data = {
            "order_id": order_id, "distributor_id": distributor, "refund_id": refund_id,
            "lines": [{"line_id": k, "refund_amount_fen": v} for k, v in amounts.items()],
        }  # fmt: skip
        return self.send("fx.order.refunded", data, at)

    def qualification(self, outcome: str, at: datetime, *, user: str = "d-1") -> BatchOutcome:
        """`outcome`: applied, assessment_started, qualified, assessment_failed, revoked, …"""
        data: dict[str, Any] = {"user_id": user}
        extra: dict[str, dict[str, Any]] = {
            "assessment_started": {"deadline": at.isoformat(), "required_orders": 3},
            "assessment_progressed": {"qualifying_orders": 1, "required_orders": 3},
            "qualified": {"order_ids": ["o-1"]},
            "assessment_failed": {"qualifying_orders": 1},
            "revoked": {"reason": "fake orders"},
        }
        data |= extra.get(outcome, {})
        return self.send(f"fx.distributor.{outcome}", data, at)

    def recruiter(
        self, recruit: str, recruiter: str, at: datetime, event_id: str | None = None
    ) -> BatchOutcome:
        """`recruiter` recruited `recruit`, who applied at `at` (fx.recruiter.recorded)."""
        data = {"distributor_id": recruit, "recruiter_id": recruiter,
                "binding_id": f"b-{recruit}", "applied_at": at.isoformat()}  # fmt: skip
        return self.send("fx.recruiter.recorded", data, at, event_id)

    def recruiters(self) -> dict[str, str]:
        with Session(self.engine) as session:
            rows = session.exec(select(store.RecruiterRecord))
            return {row.distributor_id: row.recruiter_id for row in rows}

    def published(self) -> list[Event]:
        return events_published(self.engine, topic=COMMISSIONS)

    def commissions(self) -> list[store.CommissionRecord]:
        with Session(self.engine) as session:
            query = select(store.CommissionRecord).order_by(
                col(store.CommissionRecord.order_id), col(store.CommissionRecord.line_id)
            )
            return list(session.exec(query))

    def commission(self, order_id: str, line_id: str = "l-1") -> store.CommissionRecord:
        return next(c for c in self.commissions() if (c.order_id, c.line_id) == (order_id, line_id))

    def audit(self) -> list[store.AuditRecord]:
        with Session(self.engine) as session:
            return list(session.exec(select(store.AuditRecord).order_by(col(store.AuditRecord.id))))

    def snapshot(self) -> dict[str, list[Any]]:
        """Everything published and stored, to compare two runs."""
        published = [
            (e.id, e.type, e.time, e.subject, e.data.model_dump()) for e in self.published()
        ]
        with Session(self.engine) as session:
            stored: dict[str, list[dict[str, Any]]] = {
                str(table.__tablename__): [row.model_dump() for row in session.exec(select(table))]
                for table in store.TABLES
            }
        stored = {name: sorted(rows, key=repr) for name, rows in stored.items()}
        return {"published": published, **stored}

    def recorded(self, play: Callable[[Harness], None]) -> list[ConsumerRecord[bytes, bytes]]:
        """The records `play` sends, in order, without processing them."""
        records: list[ConsumerRecord[bytes, bytes]] = []

        def keep(
            ce_type: str, data: dict[str, Any], at: datetime, event_id: str | None = None
        ) -> BatchOutcome:
            records.append(record(ce_type, data, time=at, event_id=event_id))
            return BatchOutcome()

        self.send = keep  # type: ignore[method-assign]
        play(self)
        return records


def fresh_engine(url: str) -> Engine:
    engine = db.make_engine(url)
    migrations.upgrade(engine, HISTORY)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store the service runs on (times are stored differently by each dialect)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'commission.db'}"
        return
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    name = f"fx_t_commission_{uuid.uuid4().hex[:12]}"
    admin = create_engine(db.normalise_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def harness(store_url: str) -> Iterator[Harness]:
    harness = Harness(fresh_engine(store_url))
    yield harness
    harness.engine.dispose()


TIERS = Terms(
    default_rate_bps=1000, settlement_hold=timedelta(days=7), tiers=2, tier2_default_rate_bps=500
)
"""FX_COMMISSION_TIERS=2, tier-2 rate 5 % in plan version 0."""


@pytest.fixture
def tiers(store_url: str) -> Iterator[Harness]:
    """A harness with the second tier on (`TIERS`)."""
    harness = Harness(fresh_engine(store_url), TIERS)
    yield harness
    harness.engine.dispose()


@pytest.fixture
def make_harness() -> Callable[..., Harness]:
    """A fresh in-memory store per call (for property tests: one per example)."""
    return lambda terms=TERMS: Harness(fresh_engine("sqlite:///:memory:"), terms)
