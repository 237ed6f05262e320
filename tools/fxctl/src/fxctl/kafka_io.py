"""Reading and writing the broker: partition scans, end offsets, a producer, topic setup."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord

from fx_common.contracts.registry import key_for
from fx_common.envelope import Event, encode, encode_structured
from fx_common.runtime import all_topics, ensure_topics
from fxctl.context import Target

Record: TypeAlias = ConsumerRecord[bytes, bytes]
Headers: TypeAlias = list[tuple[str, bytes]]

DEFAULT_PARTITIONS = 3  # what the services create (FX_TOPIC_PARTITIONS)


@asynccontextmanager
async def consumer(bootstrap: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A group-less consumer: fxctl reads, it never commits offsets or joins a group."""
    kafka = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def partitions_of(kafka: AIOKafkaConsumer, topics: Sequence[str]) -> list[TopicPartition]:
    await kafka._client.force_metadata_update()
    return [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(kafka.partitions_for_topic(topic) or ())
    ]


async def scan(
    bootstrap: str, topics: Sequence[str], *, from_beginning: bool = True, follow: bool = False
) -> AsyncGenerator[Record, None]:
    """The records of `topics`, partition by partition in arrival order.

    Without `follow` it stops at the end offsets seen at the start; with it, it waits for more.
    Use inside `contextlib.aclosing` so that breaking out closes the consumer.
    """
    async with consumer(bootstrap) as kafka:
        partitions = await partitions_of(kafka, topics)
        if not partitions:
            return
        ends = await kafka.end_offsets(partitions)
        kafka.assign(partitions)
        if from_beginning:
            await kafka.seek_to_beginning(*partitions)
        else:
            for tp in partitions:
                kafka.seek(tp, ends[tp])
        remaining = {tp for tp in partitions if await kafka.position(tp) < ends[tp]}
        while follow or remaining:
            batch = await kafka.getmany(timeout_ms=300)
            for tp, records in batch.items():
                for record in records:
                    if follow or record.offset < ends[tp]:
                        yield record
            for tp in list(remaining):
                if await kafka.position(tp) >= ends[tp]:
                    remaining.discard(tp)


async def end_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    async with consumer(bootstrap) as kafka:
        partitions = await partitions_of(kafka, topics)
        return dict(await kafka.end_offsets(partitions)) if partitions else {}


async def beginning_offsets(bootstrap: str, topics: Sequence[str]) -> dict[TopicPartition, int]:
    async with consumer(bootstrap) as kafka:
        partitions = await partitions_of(kafka, topics)
        return dict(await kafka.beginning_offsets(partitions)) if partitions else {}


@asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    kafka = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await kafka.start()
    try:
        yield kafka
    finally:
        await kafka.stop()


async def prepare_topics(target: Target) -> None:
    """Create the namespace's topics as the services would (the clock gets one partition)."""
    await ensure_topics(
        target.bootstrap, [target.topic(t) for t in all_topics()], DEFAULT_PARTITIONS
    )


def encoded(event: Event, *, structured: bool = False) -> tuple[bytes, bytes, Headers]:
    """(key, value, headers) of a contract event, keyed as its topic requires."""
    value, headers = encode_structured(event) if structured else encode(event)
    return key_for(event.type, event.data).encode(), value, headers
