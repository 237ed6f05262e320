"""The processing model of docs/architecture.md, as one reusable piece.

    Kafka batch ──> decode ──> one DB transaction: inbox dedup + handlers + outbox rows
                                     │ commit
                                     └──> commit offsets per partition ──> wake the relay
    outbox relay (one per service, by lease) ──> idempotent producer ──> mark published

A crash anywhere replays at most the uncommitted batch; the inbox turns the replay into a
no-op, and published events carry deterministic ids, so downstream inboxes dedup re-sends.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from fx_common import db, metrics, ops_metrics, tracing
from fx_common.clock import SimulatedClock, SystemClock
from fx_common.contracts.base import ContractModel
from fx_common.contracts.clock import ClockSet
from fx_common.contracts.registry import key_for
from fx_common.contracts.topics import consumer_group, dlq_topic, event_source
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode, encode
from fx_common.logs import CURRENT_EVENT, trace_id

log = logging.getLogger(__name__)

CLOCK_SET = "fx.clock.set"
_ID_NAMESPACE = uuid.UUID("6f1d3c1e-5a0b-4c55-9d3e-2f6a8e1b7c40")


class Rejected(Exception):
    """A contract-valid event the domain refuses (e.g. a currency it cannot book).

    The batch is rolled back and redone with this event dead-lettered, so nothing the
    handler wrote before raising survives.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass
class UnitOfWork:
    """What a handler may touch: the batch's session and an outbox to publish through."""

    session: Session
    service: str
    namespace: str = ""
    cause_id: str = ""
    traceparent: str | None = None
    cache: dict[str, Any] = field(default_factory=dict)
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _staged: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    _before_flush: list[Callable[[], None]] = field(default_factory=list)
    _published_for_cause: int = 0

    def before_flush(self, write: Callable[[], None]) -> None:
        """Run `write` once when the unit of work ends, before staged rows and the outbox:
        for state a batch keeps in memory (`cache`) and writes back in one go."""
        self._before_flush.append(write)

    def stage(self, table: type[SQLModel], **values: Any) -> None:
        """Insert a row at the end of the unit of work, batched with its kind (executemany).

        For append-only rows on hot paths: cheaper than building an ORM object per event. The
        row is not visible to queries before the flush; keep what later events of the same
        batch need to know in `cache` (filled by the spec's `prepare`).
        """
        self._staged.setdefault(table, []).append(values)

    def caused_by(self, cause_id: str, traceparent: str | None) -> None:
        self.cause_id, self.traceparent, self._published_for_cause = cause_id, traceparent, 0

    def publish(
        self,
        topic: str,
        ce_type: str,
        data: ContractModel,
        *,
        time: datetime,
        subject: str | None = None,
    ) -> Event:
        """Stage an event; it is published after the transaction commits.

        Its id derives from the cause's id, so processing the same cause again (a replay
        into a fresh store) yields the same event ids.
        """
        self._published_for_cause += 1
        event_id = uuid.uuid5(
            _ID_NAMESPACE, f"{self.service}|{self.cause_id}|{self._published_for_cause}"
        )
        event = Event(
            id=str(event_id),
            type=ce_type,
            source=event_source(self.service),
            time=time,
            data=data,
            subject=subject,
            traceparent=tracing.outgoing(self.traceparent),
        )
        value, headers = encode(event)
        self._stage(topic, key_for(ce_type, data), value, headers, event.id, ce_type)
        return event

    def dead_letter(
        self, record: ConsumerRecord[Any, Any], error_type: str, message: str, now: datetime
    ) -> None:
        headers = [*record.headers]
        headers += [
            ("fx_error_type", error_type.encode()),
            ("fx_error_message", message[:2000].encode()),
            ("fx_original_topic", record.topic.encode()),
            ("fx_original_partition", str(record.partition).encode()),
            ("fx_original_offset", str(record.offset).encode()),
            ("fx_failed_at", now.isoformat().encode()),
        ]
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        self.cause_id = f"{record.topic}/{record.partition}/{record.offset}"
        self._stage(dlq_topic(self.service), key, record.value, headers, None, None)

    def _stage(
        self,
        topic: str,
        key: str | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        ce_id: str | None,
        ce_type: str | None,
    ) -> None:
        self._outbox.append(
            {
                "topic": self.namespace + topic,
                "key": key,
                "value": value,
                "headers": json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers]),
                "ce_id": ce_id,
                "ce_type": ce_type,
                "cause_id": self.cause_id or None,
                "created_at": SystemClock().now(),
            }
        )

    def flush(self) -> int:
        """Write the in-memory state, the staged rows, then the outbox (returns its size)."""
        writes, self._before_flush = self._before_flush, []
        for write in writes:
            write()
        connection = self.session.connection()
        for table, rows in self._staged.items():
            connection.execute(insert(table.__table__), rows)
        self._staged = {}
        staged, self._outbox = self._outbox, []
        if staged:
            connection.execute(insert(db.OutboxRecord.__table__), staged)  # type: ignore[attr-defined]
        return len(staged)


Handler = Callable[[UnitOfWork, Event], None]
TickHandler = Callable[[UnitOfWork, datetime], None]
# Called once per batch with its new events, before any handler: load in one query what the
# handlers will look up per event (into the session's identity map or `uow.cache`).
Prepare = Callable[[UnitOfWork, Sequence[Event]], None]


@dataclass
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    published: int = 0


@dataclass
class _Decoded:
    record: ConsumerRecord[Any, Any]
    event: Event | None = None
    error: DecodeError | None = None


class _RedoWithout(Exception):
    def __init__(self, event_id: str, rejection: Rejected) -> None:
        self.event_id, self.rejection = event_id, rejection


class BatchProcessor:
    """Applies one batch of records in one transaction (synchronous: run it in a thread)."""

    def __init__(
        self,
        service: str,
        engine: Engine,
        handlers: Mapping[str, Handler],
        on_tick: TickHandler | None = None,
        clock: SimulatedClock | None = None,
        namespace: str = "",
        prepare: Prepare | None = None,
    ) -> None:
        self.service = service
        self.namespace = namespace
        self.prepare = prepare
        self.engine = engine
        self.handlers = handlers
        self.on_tick = on_tick
        self.clock = clock

    def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        decoded = [self._decode(r) for r in records]
        rejected: dict[str, Rejected] = {}
        while True:
            try:
                return self._apply(decoded, rejected)
            except _RedoWithout as redo:
                rejected[redo.event_id] = redo.rejection

    @staticmethod
    def _decode(record: ConsumerRecord[Any, Any]) -> _Decoded:
        try:
            return _Decoded(record, event=decode(record.value, record.headers))
        except DecodeError as exc:
            return _Decoded(record, error=exc)
        except UnknownEventType:
            return _Decoded(record)

    def _apply(self, decoded: Sequence[_Decoded], rejected: Mapping[str, Rejected]) -> BatchOutcome:
        outcome = BatchOutcome()
        now = SystemClock().now()
        with Session(self.engine) as session, session.begin():
            ids = [d.event.id for d in decoded if d.event is not None]
            seen = db.known_event_ids(session, ids)
            uow = UnitOfWork(session, self.service, self.namespace)
            if self.prepare is not None:
                skip = seen | set(rejected)
                fresh = {
                    d.event.id: d.event
                    for d in decoded
                    if d.event is not None and d.event.id not in skip
                }
                self.prepare(uow, list(fresh.values()))
            inbox: list[dict[str, Any]] = []
            for item in decoded:
                record, event = item.record, item.event
                if item.error is not None:
                    uow.dead_letter(record, item.error.error_type, item.error.message, now)
                    outcome.dead_lettered += 1
                    metrics.DLQ_RECORDS.labels(self.service, item.error.error_type).inc()
                    continue
                if event is None:
                    outcome.ignored += 1
                    continue
                if event.id in seen:
                    outcome.duplicates += 1
                    continue
                seen.add(event.id)
                inbox.append(
                    {
                        "ce_id": event.id,
                        "ce_type": event.type,
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "processed_at": now,
                    }
                )
                if event.id in rejected:
                    rejection = rejected[event.id]
                    uow.dead_letter(record, rejection.error_type, rejection.message, now)
                    outcome.dead_lettered += 1
                    metrics.DLQ_RECORDS.labels(self.service, rejection.error_type).inc()
                    continue
                uow.caused_by(event.id, event.traceparent)
                key = record.key.decode("utf-8", "replace") if record.key else None
                CURRENT_EVENT.set((event.id, key, trace_id(event.traceparent)))
                try:
                    handled = tracing.handle(self.service, record.topic, event, self._dispatch, uow)
                except Rejected as exc:
                    raise _RedoWithout(event.id, exc) from exc
                if handled:
                    outcome.applied += 1
                else:
                    outcome.ignored += 1
            CURRENT_EVENT.set(None)
            if inbox:
                session.connection().execute(insert(db.InboxRecord.__table__), inbox)  # type: ignore[attr-defined]
            outcome.published = uow.flush()
        return outcome

    def _dispatch(self, uow: UnitOfWork, event: Event) -> bool:
        if event.type == CLOCK_SET:
            assert isinstance(event.data, ClockSet)
            if self.clock is not None:
                self.clock.advance_to(event.data.now)
            if self.on_tick is not None:
                self.on_tick(uow, event.data.now)
            return True
        handler = self.handlers.get(event.type)
        if handler is None:
            return False
        handler(uow, event)
        return True


class _WaitForBatch(ConsumerRebalanceListener):  # type: ignore[misc]
    """Before partitions are taken away, let the batch in flight finish and commit."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self.lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        try:
            async with asyncio.timeout(60):
                async with self.lock:
                    pass
        except TimeoutError:
            log.warning("rebalance: batch still running after 60s; inbox will dedup")

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned", extra={"partitions": sorted(map(str, assigned))})


def _backoff(attempt: int) -> float:
    return float(min(0.1 * 2**attempt, 10.0))


class Consumer:
    """Batch consumer with auto-commit off; commits offsets only after the DB commit."""

    def __init__(
        self,
        service: str,
        bootstrap_servers: str,
        topics: Sequence[str],
        processor: BatchProcessor,
        *,
        max_records: int = 500,
        max_wait_ms: int = 50,
        session_timeout_ms: int = 10_000,
        group_id: str | None = None,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.service = service
        self.topics = list(topics)
        self.processor = processor
        self.max_records = max_records
        self.max_wait_ms = max_wait_ms
        self.on_batch = on_batch
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._client_options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "group_id": group_id or consumer_group(service),
            "client_id": f"{service}-{os.getpid()}",
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": max_records,
            "isolation_level": "read_committed",
            "session_timeout_ms": session_timeout_ms,
            "heartbeat_interval_ms": session_timeout_ms // 3,
        }
        self.kafka: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Create the client inside the running loop (aiokafka requires one), then join."""
        self.kafka = AIOKafkaConsumer(**self._client_options)
        self.kafka.subscribe(self.topics, listener=_WaitForBatch(self._lock))
        await _retrying(self.kafka.start, "consumer start", self._stopping)

    def request_stop(self) -> None:
        self._stopping.set()

    def connected(self) -> bool:
        return self.kafka is not None and bool(self.kafka._client.cluster.brokers())

    async def run(self) -> None:
        assert self.kafka is not None, "start() first"
        self._running = True
        try:
            while not self._stopping.is_set():
                batch = await self.kafka.getmany(
                    timeout_ms=self.max_wait_ms, max_records=self.max_records
                )
                if batch:
                    async with self._lock, tracing.batch(self.service, batch):
                        await self._handle(batch)
        finally:
            self._finished.set()

    async def _handle(self, batch: Mapping[TopicPartition, list[ConsumerRecord[Any, Any]]]) -> None:
        records = [r for part in batch.values() for r in part]
        started = time.perf_counter()
        attempt = 0
        while True:
            try:
                outcome = await tracing.in_thread("transaction", self.processor.process, records)
                break
            except Exception:
                metrics.BATCH_RETRIES.labels(self.service).inc()
                log.exception("batch failed; retrying", extra={"records": len(records)})
                if self._stopping.is_set():
                    return  # not committed: the next owner processes it again
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
        elapsed = time.perf_counter() - started
        metrics.BATCH_SECONDS.labels(self.service).observe(elapsed)
        metrics.HANDLER_SECONDS.labels(self.service).observe(elapsed / len(records))
        for tp, part in batch.items():
            metrics.RECORDS_CONSUMED.labels(self.service, tp.topic).inc(len(part))
        metrics.RECORDS_DUPLICATE.labels(self.service).inc(outcome.duplicates)
        metrics.RECORDS_IGNORED.labels(self.service).inc(outcome.ignored)
        offsets = {tp: part[-1].offset + 1 for tp, part in batch.items()}
        await tracing.step("commit offsets", self._commit(offsets))
        if self.on_batch is not None:
            self.on_batch(outcome)

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        assert self.kafka is not None
        attempt = 0
        while True:
            try:
                await self.kafka.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
                break
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning("offset commit refused after a rebalance; inbox will dedup: %s", exc)
                return
            except KafkaError as exc:
                if self._stopping.is_set() and attempt > 5:
                    log.warning("giving up offset commit on shutdown; inbox will dedup: %s", exc)
                    return
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
        ops_metrics.lag(self.service, self.kafka, offsets)

    async def stop(self) -> None:
        """Stop fetching; the batch in flight finishes and commits before the group is left."""
        self._stopping.set()
        if self._running:
            await self._finished.wait()
        if self.kafka is not None:
            await self.kafka.stop()


class OutboxRelay:
    """Publishes outbox rows in id order with an idempotent producer, then marks them."""

    LEASE_TTL_S = 10.0

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
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(_backoff(attempt))
                attempt += 1
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
            headers = [(k, base64.b64decode(v)) for k, v in json.loads(row.headers)]
            headers = tracing.publishing(self.service, row.topic, headers, spans)
            key = row.key.encode() if row.key is not None else None
            sends.append(
                await self.producer.send(row.topic, value=row.value, key=key, headers=headers)
            )
        await asyncio.gather(*sends)
        tracing.end(spans)
        await asyncio.to_thread(self._mark, [row.id for row in rows if row.id is not None])
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(self.service, row.topic).inc()
            if row.ce_type is not None:
                ops_metrics.published(self.service, row.ce_type, row.value)
        return len(rows)

    def _load(self) -> list[db.OutboxRecord]:
        with Session(self.engine) as session:
            rows = db.pending_outbox(session, self.batch)
            session.expunge_all()
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


async def _retrying(start: Callable[[], Any], what: str, stopping: asyncio.Event) -> None:
    attempt = 0
    while True:
        try:
            await start()
            return
        except KafkaError as exc:
            if stopping.is_set():
                raise
            log.warning("%s failed (%s); retrying", what, exc)
            await asyncio.sleep(_backoff(attempt))
            attempt += 1
