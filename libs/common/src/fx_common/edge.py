"""The Kafka edge of a service, on FastStream: one batch subscriber per service.

    FastStream batch subscriber (getmany) ──> raw parser: the ConsumerRecords as they came
        └──> handler: lock ──> BatchProcessor in a thread, retried until it commits
                          ──> commit this batch's offsets ──> wake the relay

FastStream's defaults would lose data here (`shared/notes/faststream.md`), so each one is
set on purpose and a test on the real broker holds it in place
(`tests/integration/test_edge_traps.py`):
- `AckPolicy.MANUAL`: the default `ACK_FIRST` turns on auto-commit, which commits offsets
  before the DB has the batch. With MANUAL nothing is committed but what `_commit` commits.
- An exception escaping the handler would leave the batch uncommitted while the next batch
  commits past it. The handler therefore retries inside (`fx_common.retry.backoff`) and
  returns only once the batch is in the store, or without committing when the service stops.
- The default parser decodes every header as UTF-8, so one odd header fails the whole batch
  before any handler runs. The parser and decoder here hand the raw records to the
  processor, which decodes each with `fx_common.envelope` and dead-letters what it cannot.
- A rebalance listener waits for the batch in flight (the lock is taken by the handler
  before anything else), so two members never process the same partition at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter, Topic
from faststream.kafka.message import FAKE_CONSUMER, KafkaAckableMessage, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber
from prometheus_client import REGISTRY

from fx_common import metrics, ops_metrics, tracing
from fx_common.processing.batch import BatchOutcome, BatchProcessor
from fx_common.retry import backoff

log = logging.getLogger(__name__)

Records = tuple[ConsumerRecord[Any, Any], ...]


class WaitForBatchInFlight(ConsumerRebalanceListener):  # type: ignore[misc]
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


class TopicsAreOurs(logging.Filter):
    """FastStream warns at every start that a consumer-only broker creates no topics: the
    runtime creates them (`runtime.ensure_topics`), so the warning would only mislead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Topic creation is skipped")


def bootstrap_list(servers: str) -> list[str]:
    """`host:port,host:port` (KAFKA_BOOTSTRAP_SERVERS) as the list FastStream expects."""
    return [server.strip() for server in servers.split(",") if server.strip()]


class KafkaEdge:
    """A service's FastStream broker and its one batch subscriber."""

    def __init__(
        self,
        service: str,
        bootstrap_servers: str,
        topics: Sequence[str],
        processor: BatchProcessor,
        *,
        group_id: str,
        max_records: int = 500,
        max_wait_ms: int = 50,
        session_timeout_ms: int = 10_000,
        on_batch: Callable[[BatchOutcome], None] | None = None,
    ) -> None:
        self.service = service
        self.processor = processor
        self.on_batch = on_batch
        self._lock = asyncio.Lock()
        self._stopping = asyncio.Event()
        if not any(isinstance(f, TopicsAreOurs) for f in log.filters):
            log.addFilter(TopicsAreOurs())
        self.broker = KafkaBroker(
            # A list: FastStream hands a comma-separated string to aiokafka as one host name.
            bootstrap_list(bootstrap_servers),
            client_id=f"{service}-{os.getpid()}",
            graceful_timeout=30.0,
            logger=log,  # through the service's JSON logs
            log_level=logging.DEBUG,  # "received"/"processed" per batch: not for INFO
            consumer_only=True,  # the outbox relay publishes (fx_common.relay says why)
            # No FastDepends: the handler takes the message as the decoder hands it (resolving
            # a `KafkaMessage` argument costs a task group and thread-pool calls per batch).
            apply_types=False,
        )
        self.subscriber: BatchSubscriber | None = None
        if topics:  # a service (or a test double) without input topics has no subscriber
            self.subscriber = self._subscribe(
                topics, group_id, max_records, max_wait_ms, session_timeout_ms
            )

    def _subscribe(
        self,
        topics: Sequence[str],
        group_id: str,
        max_records: int,
        max_wait_ms: int,
        session_timeout_ms: int,
    ) -> BatchSubscriber:
        # FastStream's Prometheus metrics (`faststream_*`) of the subscriber, per batch.
        router = KafkaRouter(
            middlewares=[KafkaPrometheusMiddleware(registry=REGISTRY, app_name=self.service)]
        )
        subscriber: BatchSubscriber = router.subscriber(
            *[Topic(t, declare=False) for t in topics],  # the runtime creates them
            batch=True,
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            max_records=max_records,
            max_poll_records=max_records,
            batch_timeout_ms=max_wait_ms,
            # The broker's longest wait on a fetch too: a fetch waiting for the partitions it
            # names holds back new records of a partition it left out (docs/architecture.md).
            fetch_max_wait_ms=max_wait_ms,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=session_timeout_ms // 3,
            listener=WaitForBatchInFlight(self._lock),
            parser=self._raw_batch,
            decoder=_itself,
        )
        subscriber(self._handle)
        self.broker.include_router(router)
        return subscriber

    async def start(self) -> None:
        """Connect the producer, join the group and start consuming (retried until the
        broker answers)."""
        attempt = 0
        while True:
            try:
                await self.broker.start()
                return
            except (KafkaError, OSError) as exc:
                if self._stopping.is_set():
                    raise
                log.warning("broker start failed (%s); retrying", exc)
                await self.broker.stop()
                await asyncio.sleep(backoff(attempt))
                attempt += 1

    def connected(self) -> bool:
        if self.subscriber is None:
            return self.broker.running
        consumer = self.subscriber.consumer
        return consumer is not None and bool(consumer._client.cluster.brokers())

    async def stop_consuming(self) -> None:
        """Stop fetching; the batch in flight finishes and commits, then the group is left.
        The producer stays up for the relay's last flush (`close`)."""
        self._stopping.set()
        if self.subscriber is not None:
            await self.subscriber.stop()

    async def close(self) -> None:
        await self.broker.stop()

    async def _raw_batch(self, records: Records) -> KafkaMessage:
        """The records as consumed: nothing decoded here (the processor does it, once)."""
        first, last = records[0], records[-1]
        return KafkaAckableMessage(
            body=[r.value or b"" for r in records],  # sizes for the Prometheus middleware
            headers={},
            message_id=f"{first.topic}-{first.partition}-{first.offset}-{last.offset}",
            raw_message=records,
            consumer=(self.subscriber and self.subscriber.consumer) or FAKE_CONSUMER,
        )

    async def _handle(self, message: KafkaMessage) -> None:
        """The subscriber's handler: the batch runs in a task with a context of its own.

        FastStream keeps the message (so the batch's records) in a context variable, and
        every timer scheduled in that context captures it: the request timeout of the offset
        commit (aiokafka, 40 s) is cancelled at once but stays in the event loop's heap until
        it is due. Run in FastStream's context, each batch's records outlived it by up to 40 s
        and the garbage collector paid for them: twice the edge's CPU per event.
        """
        batch = self._batch(message)
        try:
            await asyncio.get_running_loop().create_task(batch, context=contextvars.Context())
        finally:
            # The decoder hands the message itself to the handler, and FastStream caches the
            # decoded value on the message: message -> cache -> message, a cycle only the
            # garbage collector frees. Each batch's records then lived through several more
            # batches and the collector's work cost qualification ~13 % more CPU per event.
            message.clear_cache()

    async def _batch(self, message: KafkaMessage) -> None:
        records = cast(Records, message.raw_message)  # as `_raw_batch` made it
        async with self._lock, tracing.batch(self.service, {"records": records}):
            # the lock first: the rebalance listener waits for this batch
            outcome = await self._process(list(records))
            if outcome is None:
                return  # stopping: not committed, the next owner processes it again
            offsets: dict[TopicPartition, int] = {}
            for record in records:
                offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if isinstance(message.consumer, AIOKafkaConsumer):
                await tracing.step("commit offsets", self._commit(message.consumer, offsets))
            else:  # FastStream's in-memory TestKafkaBroker: no offsets to commit
                await message.ack()
        if self.on_batch is not None:
            self.on_batch(outcome)

    async def _process(self, records: list[ConsumerRecord[Any, Any]]) -> BatchOutcome | None:
        """Retried until the DB commits: an exception never escapes to FastStream, which
        would move on to the next batch and commit past this one."""
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
                    return None
                await asyncio.sleep(backoff(attempt))
                attempt += 1
        elapsed = time.perf_counter() - started
        metrics.BATCH_SECONDS.labels(self.service).observe(elapsed)
        metrics.HANDLER_SECONDS.labels(self.service).observe(elapsed / len(records))
        per_topic: dict[str, int] = {}
        for record in records:
            per_topic[record.topic] = per_topic.get(record.topic, 0) + 1
        for topic, count in per_topic.items():
            metrics.RECORDS_CONSUMED.labels(self.service, topic).inc(count)
        metrics.RECORDS_DUPLICATE.labels(self.service).inc(outcome.duplicates)
        metrics.RECORDS_IGNORED.labels(self.service).inc(outcome.ignored)
        return outcome

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        attempt = 0
        while True:
            try:
                await consumer.commit({tp: OffsetAndMetadata(o, "") for tp, o in offsets.items()})
                break
            except (CommitFailedError, IllegalStateError) as exc:
                log.warning("offset commit refused after a rebalance; inbox will dedup: %s", exc)
                return
            except KafkaError as exc:
                if self._stopping.is_set() and attempt > 5:
                    log.warning("giving up offset commit on shutdown; inbox will dedup: %s", exc)
                    return
                await asyncio.sleep(backoff(attempt))
                attempt += 1
        ops_metrics.lag(self.service, consumer, offsets)


async def _itself(message: KafkaMessage) -> KafkaMessage:
    """The handler's argument: the message (records and consumer), nothing decoded."""
    return message
