"""The FastStream edge on the real broker: the traps of `shared/notes/faststream.md`, each
one held in place by a test that fails if it comes back.

The edges run in this process (`fx_common.edge.KafkaEdge`, as a service builds it) over a
real batch processor on SQLite, or over a processor that records when it ran.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy

from fx_common import db
from fx_common.contracts.topics import dlq_topic
from fx_common.edge import KafkaEdge
from fx_common.envelope import encode
from fx_common.processing import BatchOutcome, BatchProcessor
from fx_common.runtime import processor_for
from tests.kafka_helpers import publish
from tests.probe_service import Effect, spec
from tests.probing import paid, query

pytestmark = pytest.mark.integration


async def committed(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def probe_processor(url: str, name: str, in_topic: str) -> BatchProcessor:
    engine = db.make_engine(url)
    db.create_schema(engine, [Effect])
    return processor_for(spec(name, in_topic, in_topic + ".out"), engine)


def edge(bootstrap: str, topic: str, group: str, processor: Any, **options: Any) -> KafkaEdge:
    return KafkaEdge(
        group, bootstrap, [topic], processor, group_id=group, session_timeout_ms=6000, **options
    )


class Gated:
    """Wraps a processor: `process` waits while the gate is closed, raises while `broken`."""

    def __init__(self, inner: BatchProcessor) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.broken = threading.Event()
        self.calls = 0

    def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        self.calls += 1
        self.gate.wait(60)
        if self.broken.is_set():
            raise RuntimeError("store unavailable (test)")
        return self.inner.process(records)


async def test_ack_first_is_never_in_effect(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path
) -> None:
    """ACK_FIRST would turn on auto-commit: offsets would reach the broker while the batch
    is still being processed. Here nothing is committed until the store has the batch."""
    topic, group = f"t.{unique}.in", f"g-{unique}"
    await make_topics(topic, partitions=3)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    processor = Gated(probe_processor(url, group, topic))
    kafka = edge(bootstrap, topic, group, processor)
    assert kafka.subscriber is not None
    assert kafka.subscriber.ack_policy is AckPolicy.MANUAL
    await publish(bootstrap, topic, [paid(f"o-{i}", f"b-{i % 7}") for i in range(60)])
    await kafka.start()
    try:
        consumer = kafka.subscriber.consumer
        assert consumer is not None and consumer._enable_auto_commit is False
        await until(lambda: processor.calls > 0, "the first batch")
        # Longer than aiokafka's auto-commit interval (5 s): it would have committed by now.
        await asyncio.sleep(6)
        assert await committed(bootstrap, group) == {}
        processor.gate.set()
        await until(lambda: len(query(url, "SELECT id FROM probe_effect")) == 60, "60 effects")
        await until_committed(bootstrap, group, 60)
    finally:
        processor.gate.set()
        await kafka.stop_consuming()
        await kafka.close()


async def until_committed(bootstrap: str, group: str, total: int) -> None:
    deadline = time.monotonic() + 180
    while sum((await committed(bootstrap, group)).values()) < total:
        assert time.monotonic() < deadline, "offsets not committed"
        await asyncio.sleep(0.2)
    assert sum((await committed(bootstrap, group)).values()) == total


async def test_an_exception_escaping_processing_never_commits_and_nothing_is_lost(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path
) -> None:
    """With MANUAL acks FastStream moves on to the next batch after an exception, and that
    batch's commit covers the failed one. The edge retries inside the handler instead."""
    topic, group = f"t.{unique}.in", f"g-{unique}"
    await make_topics(topic, partitions=1)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    processor = Gated(probe_processor(url, group, topic))
    processor.gate.set()
    processor.broken.set()
    kafka = edge(bootstrap, topic, group, processor, max_records=50)
    await publish(bootstrap, topic, [paid(f"o-{i}", "b") for i in range(50)])
    await kafka.start()
    try:
        await until(lambda: processor.calls >= 3, "three failed attempts")
        await publish(bootstrap, topic, [paid(f"o-{i}", "b") for i in range(50, 200)])
        await asyncio.sleep(2)
        assert await committed(bootstrap, group) == {}, "committed past a failed batch"
        assert query(url, "SELECT count(*) FROM probe_effect") == [(0,)]
        processor.broken.clear()
        await until(
            lambda: query(url, "SELECT count(*) FROM probe_effect") == [(200,)], "200 effects"
        )
        await until_committed(bootstrap, group, 200)
        rows = query(url, "SELECT order_id, count(*) FROM probe_effect GROUP BY order_id")
        assert len(rows) == 200 and {n for _, n in rows} == {1}
    finally:
        processor.broken.clear()
        await kafka.stop_consuming()
        await kafka.close()


async def test_a_record_with_a_non_utf8_header_is_dead_lettered_and_its_batch_processed(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path
) -> None:
    """FastStream's default parser decodes every header as UTF-8 and fails the whole batch.
    The raw parser hands the records to the processor, which dead-letters the one whose
    CloudEvents header is not UTF-8 and applies the others (a foreign binary header is
    no reason to refuse a record)."""
    topic, group = f"t.{unique}.in", f"g-{unique}"
    await make_topics(topic, partitions=1)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    kafka = edge(bootstrap, topic, group, probe_processor(url, group, topic))
    bad_value, bad_headers = encode(paid("o-bad", "b"))
    bad_headers = [(k, b"\xff\xfe" if k == "ce_source" else v) for k, v in bad_headers]
    odd_value, odd_headers = encode(paid("o-odd", "b"))
    odd_headers = [*odd_headers, ("x-binary-trace", b"\x80\x81\xff")]
    await publish(
        bootstrap,
        topic,
        [paid(f"o-{i}", "b") for i in range(10)],
        raw=[(b"b", bad_value, bad_headers), (b"b", odd_value, odd_headers)],
    )
    await publish(bootstrap, topic, [paid(f"o-{i}", "b") for i in range(10, 20)])
    await kafka.start()
    try:
        await until_committed(bootstrap, group, 22)
    finally:
        await kafka.stop_consuming()
        await kafka.close()
    orders = {row[0] for row in query(url, "SELECT order_id FROM probe_effect")}
    assert orders == {f"o-{i}" for i in range(20)} | {"o-odd"}
    dead = query(url, "SELECT topic, headers FROM fx_outbox WHERE ce_id IS NULL")
    assert len(dead) == 1 and dead[0][0] == dlq_topic(group)
    headers = {k: base64.b64decode(v) for k, v in json.loads(dead[0][1])}
    assert headers["fx_error_type"] == b"invalid_envelope"
    assert headers["ce_source"] == b"\xff\xfe", "the dead letter keeps the original bytes"


class Recording:
    """A processor that notes when it held which partitions (monotonic clock)."""

    def __init__(self, member: str, log: list[tuple[str, float, float, set[TopicPartition]]]):
        self.member, self.log = member, log

    def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        started = time.monotonic()
        time.sleep(0.06)
        parts = {TopicPartition(r.topic, r.partition) for r in records}
        self.log.append((self.member, started, time.monotonic(), parts))
        return BatchOutcome(applied=len(records))


async def test_two_replicas_never_process_one_batch_at_once_through_rebalances(
    bootstrap: str, make_topics: Any, unique: str
) -> None:
    """Members join and leave while records flow; the listener waits for the batch in
    flight, so no two members ever hold the same partition's batch at the same time."""
    topic, group = f"t.{unique}.in", f"g-{unique}"
    await make_topics(topic, partitions=3)
    log: list[tuple[str, float, float, set[TopicPartition]]] = []
    members = {
        name: edge(bootstrap, topic, group, Recording(name, log), max_records=20)
        for name in ("a", "b")
    }
    for member in members.values():
        await member.start()
    sent = 0
    flowing = True

    async def keep_publishing() -> None:
        nonlocal sent
        while flowing:
            await publish(bootstrap, topic, [paid(f"o-{sent + i}", f"b-{i}") for i in range(30)])
            sent += 30
            await asyncio.sleep(0.05)

    publisher = asyncio.create_task(keep_publishing())
    try:
        for round_ in range(4):  # each join and each leave is a rebalance
            name = f"c{round_}"
            members[name] = edge(bootstrap, topic, group, Recording(name, log), max_records=20)
            await members[name].start()
            await asyncio.sleep(5)
            leaving = members.pop(name)
            await leaving.stop_consuming()
            await leaving.close()
        flowing = False
        await publisher
        await until_committed(bootstrap, group, sent)
    finally:
        flowing = False
        for member in members.values():
            await member.stop_consuming()
            await member.close()
    assert len({m for m, *_ in log}) >= 3, "the joining members never got a batch"
    overlaps = [
        (a, b)
        for i, a in enumerate(log)
        for b in log[i + 1 :]
        if a[0] != b[0] and a[3] & b[3] and a[1] < b[2] and b[1] < a[2]
    ]
    assert overlaps == []


class Remembering:
    """A processor that keeps a weak reference to every record it was handed."""

    def __init__(self) -> None:
        self.records: list[weakref.ref[ConsumerRecord[Any, Any]]] = []

    def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        self.records += [weakref.ref(r) for r in records]
        return BatchOutcome(applied=len(records))


async def test_a_batch_s_records_do_not_outlive_it(
    bootstrap: str, make_topics: Any, unique: str
) -> None:
    """FastStream keeps the message in a context variable, and a timer scheduled in that
    context (the offset commit's request timeout, 40 s, cancelled at once but left in the
    event loop until due) would keep every batch's records alive: memory, and a garbage
    collector busy with them (half the edge's CPU per event). Once committed, a batch's
    records are gone."""
    topic, group = f"t.{unique}.in", f"g-{unique}"
    await make_topics(topic, partitions=3)
    processor = Remembering()
    kafka = edge(bootstrap, topic, group, processor, max_records=50)
    await publish(bootstrap, topic, [paid(f"o-{i}", f"b-{i % 7}") for i in range(300)])
    await kafka.start()
    try:
        await until_committed(bootstrap, group, 300)
        await asyncio.sleep(0.5)  # the last batch's handler has returned
        gc.collect()
        alive = [r for r in processor.records if r() is not None]
        assert len(processor.records) == 300
        assert alive == []
    finally:
        await kafka.stop_consuming()
        await kafka.close()
