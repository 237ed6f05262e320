"""Rebuild a service's store from offset 0 of its input topics, without publishing.

The records of every input partition, up to the end offsets seen at the start, are merged by
event time (`ce_time`; each partition keeps its own order, so per-key order holds) and fed
to the service's batch processor. The rebuilt outbox stays unpublished, so it can be compared
with the live one: same inputs in event-time order ⇒ same state and same event ids.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from fx_common import db, migrations
from fx_common.clock import SimulatedClock
from fx_common.contracts.topics import CLOCK
from fx_common.runtime import ServiceSpec, processor_for

Record: TypeAlias = ConsumerRecord[bytes, bytes]


@dataclass
class ReplayResult:
    records: int
    applied: int
    duplicates: int
    dead_lettered: int
    published: int


async def read_topics(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, list[Record]]:
    """Every record of `topics`, per partition, up to the end offsets at the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [
            TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()
        ]
        if not partitions:
            return {}
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: dict[TopicPartition, list[Record]] = {tp: [] for tp in partitions}
        remaining = {tp for tp in partitions if ends[tp] > 0}
        while remaining:
            for tp, batch in (await consumer.getmany(timeout_ms=500)).items():
                records[tp].extend(r for r in batch if r.offset < ends[tp])
                if batch and batch[-1].offset >= ends[tp] - 1:
                    remaining.discard(tp)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
        return records
    finally:
        await consumer.stop()


def event_time(record: Record) -> datetime:
    for key, value in record.headers:
        if key == "ce_time":
            try:
                return datetime.fromisoformat(value.decode().replace("Z", "+00:00"))
            except ValueError:
                break
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


def merged(partitions: dict[TopicPartition, list[Record]]) -> Iterator[Record]:
    """One stream in event-time order; each partition's own order is kept."""
    return heapq.merge(*partitions.values(), key=lambda r: (event_time(r), r.topic, r.partition))


def replay(
    spec: ServiceSpec,
    store_url: str,
    partitions: dict[TopicPartition, list[Record]],
    *,
    namespace: str = "",
    clock_start: datetime | None = None,
    batch: int = 500,
    progress: Callable[[int], Any] | None = None,
) -> ReplayResult:
    """Apply the records to a fresh store (call from a thread: it is synchronous)."""
    if spec.migrations is None:
        raise ValueError(f"{spec.name} has no migration history to build a fresh store with")
    engine = db.make_engine(store_url)
    migrations.upgrade(engine, spec.migrations)
    simulated = any(tp.topic.endswith(CLOCK) for tp in partitions)
    clock = SimulatedClock(clock_start or datetime(2026, 1, 1, tzinfo=UTC)) if simulated else None
    processor = processor_for(spec, engine, clock, namespace)
    result = ReplayResult(0, 0, 0, 0, 0)
    chunk: list[Record] = []

    def flush() -> None:
        outcome = processor.process(chunk)
        result.records += len(chunk)
        result.applied += outcome.applied
        result.duplicates += outcome.duplicates
        result.dead_lettered += outcome.dead_lettered
        result.published += outcome.published
        if progress is not None:
            progress(len(chunk))
        chunk.clear()

    for record in merged(partitions):
        chunk.append(record)
        if len(chunk) >= batch:
            flush()
    if chunk:
        flush()
    engine.dispose()
    return result


async def replay_service(
    spec: ServiceSpec,
    bootstrap: str,
    store_url: str,
    *,
    namespace: str = "",
    simulated_clock: bool = False,
) -> ReplayResult:
    topics = [namespace + t for t in [*spec.topics, *([CLOCK] if simulated_clock else [])]]
    partitions = await read_topics(bootstrap, topics)
    return await asyncio.to_thread(replay, spec, store_url, partitions, namespace=namespace)
