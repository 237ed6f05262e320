"""The size of a dead-letter topic on the real broker: end minus start offsets over its
partitions (`fx_common.dlq_size`), so records the retention or `kafka-delete-records` removed
no longer count; read by the service's own task into `fx_dlq_size`, which the console shows."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaTimeoutError
from prometheus_client import REGISTRY

from fx_common.contracts.topics import dlq_topic
from fx_common.dlq_size import SizeReader, measure, watch_dlq_size

pytestmark = pytest.mark.integration


def gauge(service: str) -> float | None:
    return REGISTRY.get_sample_value("fx_dlq_size", {"service": service})


async def dead_letter(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition, count in per_partition.items():
            for n in range(count):
                await producer.send_and_wait(topic, f"poison {n}".encode(), partition=partition)
    finally:
        await producer.stop()


async def delete_before(bootstrap: str, tp: TopicPartition, offset: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({tp: RecordsToDelete(before_offset=offset)}, timeout_ms=10_000)
    finally:
        await admin.close()


async def test_the_size_is_what_the_topic_holds(
    bootstrap: str, unique: str, make_topics: object
) -> None:
    namespace, service = f"dlqsize-{unique}.", f"svc-{unique}"
    topic = namespace + dlq_topic(service)
    reader = SizeReader(bootstrap)
    await reader.start()
    try:
        assert await measure(reader, service, namespace) == 0  # no topic yet
        assert gauge(service) == 0
        await make_topics(topic, partitions=3)  # type: ignore[operator]
        await dead_letter(bootstrap, topic, {0: 3, 1: 1, 2: 2})
        assert await measure(reader, service, namespace) == 6
        assert gauge(service) == 6
        await delete_before(bootstrap, TopicPartition(topic, 0), 2)  # as retention would
        assert await measure(reader, service, namespace) == 4
        assert gauge(service) == 4
    finally:
        await reader.stop()


async def test_the_service_task_reads_it_periodically(
    bootstrap: str, unique: str, make_topics: object
) -> None:
    namespace, service = f"dlqsize-{unique}.", f"svc-{unique}"
    topic = namespace + dlq_topic(service)
    await make_topics(topic, partitions=2)  # type: ignore[operator]
    runtime = SimpleNamespace(
        settings=SimpleNamespace(kafka_bootstrap_servers=bootstrap, dlq_size_interval_s=0.2),
        spec=SimpleNamespace(name=service),
        namespace=namespace,
    )
    task = asyncio.create_task(watch_dlq_size(runtime))
    try:
        for _ in range(100):
            if gauge(service) == 0:
                break
            await asyncio.sleep(0.1)
        assert gauge(service) == 0
        await dead_letter(bootstrap, topic, {1: 2})
        for _ in range(100):
            if gauge(service) == 2:
                break
            await asyncio.sleep(0.1)
        assert gauge(service) == 2
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert task.done()


async def test_an_interval_of_zero_reads_nothing(bootstrap: str, unique: str) -> None:
    service = f"svc-{unique}"
    runtime = SimpleNamespace(
        settings=SimpleNamespace(kafka_bootstrap_servers=bootstrap, dlq_size_interval_s=0),
        spec=SimpleNamespace(name=service),
        namespace="",
    )
    await asyncio.wait_for(watch_dlq_size(runtime), timeout=5)
    assert gauge(service) is None


async def test_a_failed_read_is_retried_soon_not_a_whole_interval_later(
    bootstrap: str, unique: str, make_topics: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    namespace, service = f"dlqsize-{unique}.", f"svc-{unique}"
    await make_topics(namespace + dlq_topic(service), partitions=1)  # type: ignore[operator]
    real_size, calls = SizeReader.size, []

    async def first_fails(reader: SizeReader, topic: str) -> int:
        calls.append(topic)
        if len(calls) == 1:  # as when a new topic's leader is not elected yet
            raise KafkaTimeoutError()
        return await real_size(reader, topic)

    monkeypatch.setattr(SizeReader, "size", first_fails)
    runtime = SimpleNamespace(
        settings=SimpleNamespace(kafka_bootstrap_servers=bootstrap, dlq_size_interval_s=600),
        spec=SimpleNamespace(name=service),
        namespace=namespace,
    )
    task = asyncio.create_task(watch_dlq_size(runtime))
    try:
        for _ in range(100):  # RETRY_S (2 s), not the 600 s interval
            if gauge(service) == 0:
                break
            await asyncio.sleep(0.1)
        assert (gauge(service), len(calls)) == (0, 2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
