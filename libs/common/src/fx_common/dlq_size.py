"""The size of a service's dead-letter topic, as a gauge: `fx_dlq_size{service}`.

`fx_dlq_records_total` counts what this process dead-lettered since it started; an operator
needs what the topic holds: every partition's end offset minus its start offset (records the
retention or `kafka-delete-records` removed no longer count). The service reads both every
`FX_DLQ_SIZE_INTERVAL_S` seconds (30; 0 turns it off) with an admin client (the partitions) and
a consumer that joins no group and reads no record (the offsets), off the consume path; a
broker that does not answer leaves the last value and is tried again 2 s later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import Gauge

from fx_common.contracts.topics import dlq_topic

log = logging.getLogger(__name__)

DLQ_SIZE = Gauge(
    "fx_dlq_size",
    "Records the service's dead-letter topic holds (end minus start offsets over its "
    "partitions), read every FX_DLQ_SIZE_INTERVAL_S",
    ["service"],
)


class SizeReader:
    """Reads how many records a topic holds, without joining a group or reading a record."""

    def __init__(self, bootstrap_servers: str) -> None:
        servers = bootstrap_servers.split(",")
        self.admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10_000)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=10_000,
        )

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()

    async def stop(self) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def size(self, topic: str) -> int:
        """Records `topic` holds now (0 when it does not exist)."""
        if topic not in await self.admin.list_topics():
            return 0
        described = await self.admin.describe_topics([topic])
        found = [
            TopicPartition(topic, p["partition"])
            for t in described
            if t["topic"] == topic
            for p in t["partitions"]
        ]
        if not found:
            return 0
        starts = await self.consumer.beginning_offsets(found)
        ends = await self.consumer.end_offsets(found)
        return sum(ends[tp] - starts[tp] for tp in found)


async def measure(reader: SizeReader, service: str, namespace: str = "") -> int | None:
    """Read the size of `service`'s DLQ once and export it; None when the broker failed."""
    try:
        size = await reader.size(namespace + dlq_topic(service))
    except (KafkaError, OSError) as exc:
        log.warning("the DLQ size could not be read (%s); retrying", exc)
        return None
    DLQ_SIZE.labels(service).set(size)
    return size


RETRY_S = 2.0
"""After a failed read (broker away, a new topic's leader not elected yet), the next try."""


async def watch_dlq_size(runtime: Any) -> None:
    """A service task: the gauge every `dlq_size_interval_s` seconds (0: off). Never fails
    the service: a failed read is tried again after `RETRY_S` (or the interval if shorter)."""
    settings = runtime.settings
    interval = float(settings.dlq_size_interval_s)
    if interval <= 0:
        return
    reader: SizeReader | None = None
    try:
        while True:
            if reader is None:
                reader = await _started(settings.kafka_bootstrap_servers)
            read = reader is not None and (
                await measure(reader, runtime.spec.name, runtime.namespace) is not None
            )
            await asyncio.sleep(interval if read else min(interval, RETRY_S))
    finally:
        if reader is not None:
            await reader.stop()


async def _started(bootstrap_servers: str) -> SizeReader | None:
    reader = SizeReader(bootstrap_servers)
    try:
        await reader.start()
    except (KafkaError, OSError) as exc:
        log.warning("the DLQ size reader could not connect (%s); retrying", exc)
        await reader.stop()
        return None
    return reader
