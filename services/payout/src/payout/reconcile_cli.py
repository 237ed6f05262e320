"""`python -m payout.reconcile_cli` (script `fx-payout-reconcile`): recompute every balance
from the ledger, re-read fx.commissions.v1 from offset 0, and report any difference.

Reads the same configuration as the service: DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS,
FX_TOPIC_NAMESPACE (and FX_CONSUMER_GROUP if the service overrides its group). Safe against a
running service: it only reads. Events the payout consumer group has committed past must be
in the ledger; later ones may still be on their way and are checked only if already booked.
It waits up to `--wait` seconds for the consumer to catch up first.

Exit status: 0 no difference, 1 differences found, 2 the store or the broker could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from fx_common import db, migrations
from fx_common.contracts.commissions import CommissionReversed, CommissionSettled
from fx_common.contracts.topics import COMMISSIONS, consumer_group
from fx_common.envelope import DecodeError, UnknownEventType, decode
from fx_common.replay import Record, merged, read_topics
from fx_common.runtime import AuditResult
from payout import store
from payout.domain import EntryKind
from payout.reconciliation import (
    CommissionMovement,
    LedgerLine,
    Report,
    WithdrawalFacts,
    reconcile,
)
from payout.settings import PayoutSettings

Offsets = Mapping[TopicPartition, int]


def movements_from(
    records: Iterable[Record], committed: Offsets
) -> tuple[list[CommissionMovement], int]:
    """The settled and reversed commissions among `records`, and how many records do not
    decode (the service dead-letters those). `committed`: the consumer group's offsets."""
    movements, undecodable = [], 0
    for record in records:
        try:
            event = decode(record.value, record.headers)
        except DecodeError:
            undecodable += 1
            continue
        except UnknownEventType:
            continue
        data = event.data
        if isinstance(data, CommissionSettled):
            kind = EntryKind.CREDIT
        elif isinstance(data, CommissionReversed):
            kind = EntryKind.DEBIT
        else:
            continue
        partition = TopicPartition(record.topic, record.partition)
        movements.append(
            CommissionMovement(
                event_id=event.id,
                kind=kind,
                distributor_id=data.distributor_id,
                commission_id=data.commission_id,
                amount_fen=data.amount_fen,
                consumed=record.offset < committed.get(partition, 0),
            )
        )
    return movements, undecodable


async def end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return dict(await consumer.end_offsets(partitions)) if partitions else {}
    finally:
        await consumer.stop()


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def lag(ends: Offsets, committed: Offsets) -> int:
    return sum(max(end - committed.get(tp, 0), 0) for tp, end in ends.items())


async def caught_up_offsets(
    bootstrap: str, group: str, topic: str, wait_s: float
) -> tuple[dict[TopicPartition, int], int]:
    """The group's committed offsets once it reached today's end (or `wait_s` ran out), with
    what it still lags by."""
    ends = await end_offsets(bootstrap, topic)
    deadline = time.monotonic() + wait_s
    while True:
        committed = await committed_offsets(bootstrap, group, topic)
        behind = lag(ends, committed)
        if behind == 0 or time.monotonic() >= deadline:
            return committed, behind
        await asyncio.sleep(0.5)


async def build_report(settings: PayoutSettings, wait_s: float) -> Report:
    topic = settings.topic_namespace + COMMISSIONS
    group = settings.topic_namespace + (settings.consumer_group or consumer_group("payout"))
    bootstrap = settings.kafka_bootstrap_servers
    # The order makes the check exact on a live system: every event below the committed
    # offsets is in the ledger read next, and the ledger holds nothing the topic read after
    # it lacks.
    committed, behind = await caught_up_offsets(bootstrap, group, topic, wait_s)
    lines, withdrawals = await asyncio.to_thread(read_store, settings.store_url())
    partitions = await read_topics(bootstrap, [topic])
    movements, undecodable = movements_from(merged(partitions), committed)
    report = reconcile(lines, withdrawals, movements)
    if not partitions:
        report.notes.insert(0, f"topic {topic} does not exist or has no partitions")
    if behind:
        report.notes.insert(0, f"consumer group {group} is {behind} record(s) behind {topic}")
    if undecodable:
        report.notes.append(f"{undecodable} record(s) on {topic} do not decode (dead-lettered)")
    return report


async def audit(settings: PayoutSettings, wait_s: float) -> AuditResult:
    """The reconciliation as `fxctl doctor` reads it (the spec's `audit`)."""
    report = await build_report(settings, wait_s)
    if report.ok:
        summary = f"{report.entries} ledger entries, {report.events} events: no difference"
    else:
        summary = f"{len(report.differences)} difference(s)"
    return AuditResult(report.ok, summary, [str(d) for d in report.differences])


def read_store(url: str) -> tuple[list[LedgerLine], list[WithdrawalFacts]]:
    """The ledger and the withdrawals as of one moment (a withdrawal command writes both)."""
    from payout.app import HISTORY  # the app imports this module (the in-service check)

    engine = _snapshot_engine(url)
    try:
        found = migrations.status(engine, HISTORY)
        if not found.at_head:
            raise migrations.StoreNotReady(f"{found.describe()}: run `{HISTORY.command}` first")
        with Session(engine) as session, session.begin():
            return store.ledger_lines(session), store.withdrawal_facts(session)
    finally:
        engine.dispose()


def _snapshot_engine(url: str) -> Engine:
    url = db.normalise_url(url)
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[-1])
        if not path.is_file():  # a read-only check must not leave an empty store behind
            raise FileNotFoundError(f"no payout store at {path}")
    engine = db.make_engine(url)
    if engine.dialect.name != "sqlite":
        return engine.execution_options(isolation_level="REPEATABLE READ")
    # pysqlite opens no transaction for reads, so each SELECT would see its own moment:
    # take over transaction control and begin one (SQLAlchemy's recipe for pysqlite).
    event.listen(engine, "connect", _driver_autocommit)
    event.listen(engine, "begin", _begin)
    return engine


def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _begin(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fx-payout-reconcile",
        description="Recompute every payout balance from the ledger and from fx.commissions.v1.",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to wait for the payout consumer to catch up first (default 30)",
    )
    args = parser.parse_args(argv)
    settings = PayoutSettings()
    try:
        report = asyncio.run(build_report(settings, args.wait))
    except (KafkaError, SQLAlchemyError, OSError, migrations.StoreNotReady) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"reconcile: cannot read the store or the broker: {reason}", file=sys.stderr)
        sys.exit(2)
    print(report.render())
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
