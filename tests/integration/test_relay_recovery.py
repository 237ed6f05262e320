"""The outbox relay recovers from a producer that died for good.

aiokafka's sender task ends on OutOfOrderSequenceNumber (seen in CI after a broker restart that
lost its producer state): every later send of that producer fails. The relay must replace it and
publish what is pending, on the real broker.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber
from sqlmodel import Session, select

from fx_common import db
from fx_common.processing.relay import OutboxRelay
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.integration


class DeadProducer:
    """Stands for an aiokafka producer whose sender task ended: every send fails."""

    def __init__(self) -> None:
        self.stopped = False

    async def send(self, *_: Any, **__: Any) -> Any:
        raise OutOfOrderSequenceNumber()

    async def stop(self) -> None:
        self.stopped = True


def stage(engine: Any, topic: str, count: int) -> None:
    with Session(engine) as session, session.begin():
        for i in range(count):
            session.add(
                db.OutboxRecord(
                    ce_id=f"e-{i}", topic=topic, key=f"k-{i}", value=f"v-{i}".encode(),
                    headers="[]", created_at=datetime.now(UTC),
                )
            )  # fmt: skip


async def test_relay_replaces_a_dead_producer_and_publishes_the_backlog(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path
) -> None:
    topic = f"t.{unique}.out"
    await make_topics(topic, partitions=1)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'relay.db'}")
    db.create_schema(engine, ())
    stage(engine, topic, 5)
    relay = OutboxRelay(f"relay-{unique}", engine, bootstrap)
    await relay.start()
    real = relay.producer
    assert real is not None
    await real.stop()
    dead = DeadProducer()
    relay.producer = dead  # a stand-in: aiokafka has no way to kill the sender task
    runner = asyncio.create_task(relay.run())
    try:
        records = await read_all(bootstrap, topic, expect=5, timeout=60)
    finally:
        await relay.stop()
        await asyncio.wait_for(runner, 30)
        await relay.close()
    assert dead.stopped, "the dead producer was not stopped"
    assert relay.producer is not dead and relay.producer is not real
    assert sorted(r.value for r in records if r.value) == [f"v-{i}".encode() for i in range(5)]
    with Session(engine) as session:
        pending = session.exec(
            select(db.OutboxRecord).where(db.OutboxRecord.published_at == None)  # noqa: E711
        ).all()
    assert pending == []
