"""A harness that drives referral-binding's handlers through the real BatchProcessor on
SQLite, with records built as the consumer sees them (no broker)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias

import pytest
from aiokafka.structs import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from fx_common import db, migrations
from fx_common.envelope import Event
from fx_common.processing import BatchOutcome
from fx_common.runtime import processor_for
from fx_common.testing import events_published, record
from referral_binding import domain, store
from referral_binding.app import HISTORY, ReferralBindingSettings, spec_for

PERIOD = timedelta(days=10)

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Harness:
    """Builds upstream records and runs them; reads back the store and the outbox."""

    def __init__(self, engine: Engine, period: timedelta = PERIOD, **configured: Any) -> None:
        self.engine = engine
        self.period = period
        # No Redis: these stores are many and short-lived; the cache has its own tests.
        settings = ReferralBindingSettings(protection_period=period, redis_url="", **configured)
        spec = spec_for(settings)
        self.processor = processor_for(spec, engine)

    # --- upstream records ---

    @staticmethod
    def _id(event_id: str | None) -> str:
        return event_id or str(uuid.uuid4())

    def share(self, share_id: str, sharer: str, at: datetime, **extra: Any) -> Record:
        data = {"share_id": share_id, "sharer_id": sharer, **extra}
        return record("mall.share.created", data, time=at, event_id=self._id(None))

    def visit(
        self, share_id: str, sharer: str, visitor: str, at: datetime, event_id: str | None = None
    ) -> Record:
        data = {"share_id": share_id, "sharer_id": sharer, "visitor_id": visitor}
        return record("mall.share.visited", data, time=at, event_id=self._id(event_id))

    def paid(
        self,
        order_id: str,
        buyer: str,
        at: datetime,
        share_id: str | None = None,
        event_id: str | None = None,
    ) -> Record:
        data: dict[str, Any] = {
            "order_id": order_id,
            "buyer_id": buyer,
            "currency": "CNY",
            "lines": [
                {"line_id": "l1", "sku": "tea-1", "quantity": 2, "paid_amount_fen": 12800},
                {"line_id": "l2", "sku": "cup-1", "category": "ware", "quantity": 1,
                 "paid_amount_fen": 3900},
            ],
            "shipping_fen": 1000,
        }  # fmt: skip
        if share_id is not None:
            data["share_id"] = share_id
        return record("mall.order.paid", data, time=at, event_id=self._id(event_id))

    def completed(self, order_id: str, buyer: str, at: datetime) -> Record:
        data = {"order_id": order_id, "buyer_id": buyer}
        return record("mall.order.completed", data, time=at, event_id=self._id(None))

    def refunded(self, order_id: str, buyer: str, refund_id: str, at: datetime) -> Record:
        data = {
            "order_id": order_id,
            "buyer_id": buyer,
            "refund_id": refund_id,
            "lines": [{"line_id": "l1", "refund_amount_fen": 6400}],
        }
        return record("mall.order.refunded", data, time=at, event_id=self._id(None))

    def applied(self, user: str, at: datetime, event_id: str | None = None) -> Record:
        data = {"user_id": user}
        return record("fx.distributor.applied", data, time=at, event_id=self._id(event_id))

    def started(self, user: str, at: datetime) -> Record:
        data = {"user_id": user, "deadline": (at + timedelta(days=30)).isoformat(),
                "required_orders": 3}  # fmt: skip
        return record("fx.distributor.assessment_started", data, time=at, event_id=self._id(None))

    def qualified(self, user: str, at: datetime) -> Record:
        data = {"user_id": user, "order_ids": ["o-a", "o-b", "o-c"]}
        return record("fx.distributor.qualified", data, time=at, event_id=self._id(None))

    def failed(self, user: str, at: datetime) -> Record:
        data = {"user_id": user, "qualifying_orders": 1}
        return record("fx.distributor.assessment_failed", data, time=at, event_id=self._id(None))

    def revoked(self, user: str, at: datetime) -> Record:
        data = {"user_id": user, "reason": "fake orders"}
        return record("fx.distributor.revoked", data, time=at, event_id=self._id(None))

    def tick(self, now: datetime) -> Record:
        return record("fx.clock.set", {"now": now.isoformat()}, time=now, event_id=self._id(None))

    def close(self) -> None:
        self.engine.dispose()

    # --- running and reading back ---

    def run(self, *records: Record) -> BatchOutcome:
        return self.processor.process(list(records))

    def run_each(self, *records: Record) -> None:
        for item in records:
            self.processor.process([item])

    def published(self, ce_type: str | None = None) -> list[Event]:
        return events_published(self.engine, ce_type=ce_type)

    def outbox(self) -> list[tuple[str, str | None, str | None, bytes | None]]:
        with Session(self.engine) as session:
            rows = session.exec(select(db.OutboxRecord).order_by(col(db.OutboxRecord.id)))
            return [(r.topic, r.key, r.ce_id, r.value) for r in rows]

    def bindings(self, customer: str | None = None) -> list[domain.Binding]:
        with Session(self.engine) as session:
            query = select(store.RbBinding)
            if customer is not None:
                query = query.where(store.RbBinding.customer_id == customer)
            rows = session.exec(query.order_by(col(store.RbBinding.bound_at)))
            return [r.to_domain() for r in rows]

    def visits(self) -> list[store.RbVisit]:
        with Session(self.engine) as session:
            rows = list(session.exec(select(store.RbVisit).order_by(col(store.RbVisit.visited_at))))
            session.expunge_all()
            return rows

    def orders(self) -> dict[str, store.RbOrder]:
        with Session(self.engine) as session:
            rows = list(session.exec(select(store.RbOrder)))
            session.expunge_all()
            return {r.order_id: r for r in rows}

    def eligibility(self, user: str) -> domain.Eligibility:
        with Session(self.engine) as session:
            return store.eligibility(session, user)


def make_engine(path: Path | None) -> Engine:
    """A fresh store: a SQLite file, or in memory (one connection per thread) when no path."""
    engine = db.make_engine(f"sqlite:///{path}" if path is not None else "sqlite://")
    migrations.upgrade(engine, HISTORY)
    return engine


HarnessFactory = Callable[..., Harness]


@pytest.fixture
def new_harness(tmp_path: Path) -> Iterator[HarnessFactory]:
    """`new_harness(name, period=PERIOD, **settings)`: a harness on its own fresh SQLite store
    (`name=None`: in memory, for the many short-lived stores of hypothesis), configured with
    `settings` (e.g. `binding_mode="overwrite"`)."""
    engines: list[Engine] = []

    def new(name: str | None = "rb", period: timedelta = PERIOD, **configured: Any) -> Harness:
        engines.append(make_engine(tmp_path / f"{name}.db" if name is not None else None))
        return Harness(engines[-1], period, **configured)

    yield new
    for engine in engines:
        engine.dispose()


@pytest.fixture
def rb(new_harness: HarnessFactory) -> Harness:
    return new_harness()
