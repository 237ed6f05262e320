"""Wiring of each service's FastStream edge, in memory (`TestKafkaBroker`): the topics and
group it subscribes, its ack policy, and that a record published to each input topic
reaches the service's handlers and store. Delivery itself is proven on the real broker
(tests/integration/test_edge_traps.py, test_delivery.py)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from faststream import AckPolicy
from faststream.kafka import TestKafkaBroker
from prometheus_client import generate_latest
from sqlmodel import Session, select

from commission.app import SPEC as COMMISSION
from fx_common import db
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import consumer_group
from fx_common.envelope import encode, make_event
from fx_common.runtime import ServiceRuntime, ServiceSpec
from payout.app import SPEC as PAYOUT
from qualification.app import SPEC as QUALIFICATION
from referral_binding.app import SPEC as REFERRAL_BINDING

SPECS = {s.name: s for s in (REFERRAL_BINDING, QUALIFICATION, COMMISSION, PAYOUT)}
NS = "wiring."
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def runtime_for(spec: ServiceSpec, tmp_path: Path) -> ServiceRuntime:
    settings = spec.settings_cls(
        service=spec.name,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        topic_namespace=NS,
        kafka_bootstrap_servers="127.0.0.1:1",  # never reached: the broker is in memory
    )
    runtime = ServiceRuntime(spec, settings)
    db.create_schema(runtime.engine, spec.tables)
    return runtime


@pytest.mark.parametrize("name", list(SPECS))
def test_the_subscriber_takes_the_service_topics_with_manual_acks(
    name: str, tmp_path: Path
) -> None:
    spec = SPECS[name]
    subscriber = runtime_for(spec, tmp_path).edge.subscriber
    assert subscriber is not None
    assert subscriber.topic_names == [NS + t for t in spec.topics]
    assert subscriber.group_id == NS + consumer_group(name)
    assert subscriber.ack_policy is AckPolicy.MANUAL
    assert len(subscriber.calls) == 1


def test_a_fetch_waits_at_most_the_batch_wait(tmp_path: Path) -> None:
    """aiokafka's default fetch_max_wait_ms (500 ms) held new records of one partition behind
    a fetch waiting on the others: the end-to-end p99 was mostly that wait."""
    settings = PAYOUT.settings_cls(
        service="payout",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        kafka_bootstrap_servers="127.0.0.1:1",
        batch_max_wait_ms=70,
    )
    subscriber = ServiceRuntime(PAYOUT, settings).edge.subscriber
    assert subscriber is not None
    assert subscriber._connection_args["fetch_max_wait_ms"] == 70


def test_a_bootstrap_list_reaches_the_consumer_as_hosts(tmp_path: Path) -> None:
    """KAFKA_BOOTSTRAP_SERVERS is `host:port,host:port`; FastStream took the string as one host
    name (the three-broker cluster never connected) unless it is given a list."""
    settings = PAYOUT.settings_cls(
        service="payout",
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        kafka_bootstrap_servers="127.0.0.1:19092, 127.0.0.1:19093,127.0.0.1:19094",
    )
    broker = ServiceRuntime(PAYOUT, settings).edge.broker
    assert broker._connection_kwargs["bootstrap_servers"] == [
        "127.0.0.1:19092", "127.0.0.1:19093", "127.0.0.1:19094",
    ]  # fmt: skip


@pytest.mark.parametrize("name", list(SPECS))
async def test_each_handled_type_reaches_the_store_through_the_broker(
    name: str, tmp_path: Path
) -> None:
    spec = SPECS[name]
    runtime = runtime_for(spec, tmp_path)
    events = [
        make_event(ce_type, copy.deepcopy(SAMPLES[ce_type]), time=T0)
        for ce_type in spec.handler_table()
    ]
    async with TestKafkaBroker(runtime.edge.broker) as broker:
        for event in events:
            value, headers = encode(event)
            await broker.publish(
                value,
                NS + EVENT_TOPIC[event.type],
                key=key_for(event.type, event.data).encode(),
                headers={k: v.decode() for k, v in headers},
            )
    with Session(runtime.engine) as session:
        inbox = {row.ce_id: row.topic for row in session.exec(select(db.InboxRecord))}
    assert inbox == {e.id: NS + EVENT_TOPIC[e.type] for e in events}
    # FastStream's Prometheus middleware counts what the subscriber received.
    received = [
        line
        for line in generate_latest().decode().splitlines()
        if line.startswith("faststream_received_messages_total") and f'app_name="{name}"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in received) >= len(events)
    runtime.engine.dispose()
