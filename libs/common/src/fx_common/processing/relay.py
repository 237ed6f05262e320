"""The outbox relay: publishes outbox rows in id order with an idempotent producer, one
replica at a time (a lease in the store)."""

from __future__ import annotations

import asyncio
import binascii
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy import Row
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import db, metrics, ops_metrics, tracing
from fx_common.clock import SystemClock
from fx_common.retry import backoff as _backoff
from fx_common.retry import retrying as _retrying

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes outbox rows in id order with an idempotent producer, then marks them."""

    LEASE_TTL_S = 10.0
    BACKLOG_COUNT_S = 1.0

    def __init__(
        self, service: str, engine: Engine, bootstrap_servers: str, *, batch: int = 1000
    ) -> None:
        self.service = service
        self.engine = engine
        self.batch = batch
        self.owner = f"{service}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._lease_until = 0.0
        self._backlog_counted = -self.BACKLOG_COUNT_S
        self._client_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": f"{service}-relay-{os.getpid()}",
            "enable_idempotence": True,
            "acks": "all",
            "linger_ms": 5,
            "max_batch_size": 256 * 1024,
        }
        self.producer: AIOKafkaProducer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.producer = AIOKafkaProducer(**self._client_options)
        await _retrying(self.producer.start, "producer start", self._stopping)

    async def _replace_producer(self) -> None:
        """A new idempotent producer after a failed send. aiokafka's sender task dies for good on
        OutOfOrderSequenceNumber or ProducerFenced (e.g. after a broker lost its producer state
        in a restart): the old producer would fail every later send. The rows it did not mark are
        sent again by the new one; consumers' inboxes drop the copies that had arrived."""
        old, self.producer = self.producer, None
        if old is not None:
            try:
                await old.stop()
            except Exception:
                log.warning("stopping the failed producer raised", exc_info=True)
        await self.start()

    def wake(self) -> None:
        """Publish soon; safe to call from worker threads (HTTP commands, batches)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                published = await self.publish_pending() if await self._is_leader() else 0
                attempt = 0
            except Exception as error:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
                if isinstance(error, KafkaError):
                    await self._replace_producer()
                continue
            if published:
                continue
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                async with asyncio.timeout(0.5):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _is_leader(self) -> bool:
        if time.monotonic() < self._lease_until:
            return True
        held = await asyncio.to_thread(
            db.try_lease, self.engine, "outbox-relay", self.owner, self.LEASE_TTL_S
        )
        if held:
            self._lease_until = time.monotonic() + self.LEASE_TTL_S / 2
        ops_metrics.leader(self.service, "relay", held)
        return held

    async def publish_pending(self) -> int:
        assert self.producer is not None, "start() first"
        rows = await asyncio.to_thread(self._load)
        if not rows:
            metrics.OUTBOX_BACKLOG.labels(self.service).set(0)
            return 0
        sends, spans = [], tracing.new_spans()
        for row in rows:
            headers = headers_of(row.headers)
            headers = tracing.publishing(self.service, row.topic, headers, spans)
            key = row.key.encode() if row.key is not None else None
            sends.append(
                await self.producer.send(row.topic, value=row.value, key=key, headers=headers)
            )
        await asyncio.gather(*sends)
        tracing.end(spans)
        await asyncio.to_thread(self._mark, [row.id for row in rows if row.id is not None])
        by_topic: dict[str, int] = {}
        for row in rows:
            by_topic[row.topic] = by_topic.get(row.topic, 0) + 1
        for topic, count in by_topic.items():
            metrics.OUTBOX_PUBLISHED.labels(self.service, topic).inc(count)
        events = [(row.ce_type, row.value) for row in rows if row.ce_type is not None]
        ops_metrics.published_many(self.service, events)
        return len(rows)

    def _load(self) -> list[Row[Any]]:
        with Session(self.engine) as session:
            rows = db.pending_outbox(session, self.batch)
            # Fewer rows than asked: they are the whole backlog. A full batch: count it, at
            # most every BACKLOG_COUNT_S (a count walks every pending row; during a long
            # drain that walk grew with the backlog on every load).
            if len(rows) < self.batch:
                metrics.OUTBOX_BACKLOG.labels(self.service).set(len(rows))
            elif time.monotonic() >= self._backlog_counted + self.BACKLOG_COUNT_S:
                self._backlog_counted = time.monotonic()
                metrics.OUTBOX_BACKLOG.labels(self.service).set(db.outbox_backlog(session))
            return rows

    def _mark(self, ids: Sequence[int]) -> None:
        with Session(self.engine) as session, session.begin():
            db.mark_published(session, ids, SystemClock().now())

    async def stop(self) -> None:
        """Flush what is pending, then stop the producer."""
        self._stopping.set()
        self._wake.set()

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
        if self._lease_until:
            await asyncio.to_thread(db.release_lease, self.engine, "outbox-relay", self.owner)


def headers_of(stored: str) -> list[tuple[str, bytes]]:
    """The Kafka headers of an outbox row (`unit_of_work.headers_json` wrote them)."""
    return [(name, binascii.a2b_base64(value)) for name, value in json.loads(stored)]
