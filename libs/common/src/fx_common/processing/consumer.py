"""The Kafka edge: batch consumer (auto-commit off, offsets after the DB commit), its
rebalance listener, and the retry helpers."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from fx_common import metrics, ops_metrics, tracing
from fx_common.contracts.topics import consumer_group
from fx_common.processing.batch import BatchOutcome, BatchProcessor

log = logging.getLogger(__name__)


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
