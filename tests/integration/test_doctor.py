"""`fxctl doctor` on the real broker: a healthy namespace passes (exit 0), and a namespace
with a dead letter, a lagging group, an unpublished outbox row, a relay lease nobody holds,
a ledger that does not reconcile and a service that does not answer fails (exit 1), each
problem named with the command that looks closer.

(With the four services running and clocks compared, see test_observability.py.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from typer.testing import CliRunner

from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import COMMISSIONS, SERVICES, consumer_group, dlq_topic
from fx_common.envelope import make_event
from fx_common.runtime import ServiceRuntime
from fxctl.cli import app
from fxctl.context import Target
from fxctl.kafka_io import prepare_topics
from fxctl.replay_cmd import load_spec
from payout import commands
from payout.settings import PayoutSettings
from tests.kafka_helpers import publish

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def settled(event_id: str, amount: int) -> Any:
    data = {**SAMPLES["fx.commission.settled"], "distributor_id": "d-1", "amount_fen": amount}
    return make_event("fx.commission.settled", data, time=T0, event_id=event_id)


async def commit_group(bootstrap: str, group: str, topic: str, at_end: bool) -> None:
    """Commit the group's offsets on `topic`: at its end (caught up) or at 0 (lagging)."""
    kafka = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await kafka.start()
    try:
        await kafka._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in kafka.partitions_for_topic(topic) or ()]
        kafka.assign(partitions)
        ends = await kafka.end_offsets(partitions)
        offsets = {tp: OffsetAndMetadata(ends[tp] if at_end else 0, "") for tp in partitions}
        await kafka.commit(offsets)
    finally:
        await kafka.stop()


def stores(var: Path, namespace: str) -> ServiceRuntime:
    """Every service's store (empty schema) under `var`; payout's, booked by its processor
    with the settled commission and one withdrawal request, is returned."""
    for service in SERVICES:
        engine = db.make_engine(f"sqlite:///{var / (service.replace('-', '_') + '.db')}")
        history = load_spec(service).migrations
        assert history is not None
        migrations.upgrade(engine, history)
        engine.dispose()
    settings = PayoutSettings(database_url=f"sqlite:///{var / 'payout.db'}")
    runtime = ServiceRuntime(load_spec("payout"), settings)
    return runtime


def doctor(target: Target, var: Path, *extra: str) -> tuple[int, str, list[dict[str, Any]]]:
    args = ["--bootstrap", target.bootstrap, "--namespace", target.namespace, "doctor"]
    args += ["--var", str(var), "--reconcile-wait", "1", *extra]
    text = CliRunner().invoke(app, [*args, "-v"])
    rows = CliRunner().invoke(app, [*args, "--json"])
    assert rows.exit_code == text.exit_code, rows.output
    found = [json.loads(line) for line in rows.stdout.splitlines() if line.strip()]
    return text.exit_code, text.stdout, found


def problems(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_check: dict[str, list[dict[str, Any]]] = {}
    for finding in found:
        if not finding["ok"]:
            by_check.setdefault(finding["check"], []).append(finding)
    return by_check


def test_a_healthy_namespace_passes_and_a_sick_one_names_each_problem(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    where = Target(bootstrap, f"doctor-{unique}.")
    commissions = where.topic(COMMISSIONS)
    asyncio.run(prepare_topics(where))
    asyncio.run(publish(bootstrap, commissions, [settled("e-1", 9000)]))
    asyncio.run(commit_group(bootstrap, where.group("payout"), commissions, at_end=True))
    payout = stores(tmp_path, where.namespace)
    record = asyncio.run(_consumed(bootstrap, commissions))
    assert payout.processor.process([record]).applied == 1

    code, out, found = doctor(where, tmp_path, "--no-http")
    assert code == 0, out
    assert "all good" in out
    checks = {f["check"] for f in found}
    assert {"brokers", "topics", "lag", "dlq", "outbox", "migrations", "reconciliation"} <= checks
    revisions = [f["message"] for f in found if f["check"] == "migrations"]
    assert len(revisions) == 4 and all(", this code's" in m for m in revisions), revisions
    assert any("no difference" in f["message"] for f in found if f["check"] == "reconciliation")

    # Now break it: a dead letter, a group 1 record behind, an outbox row nobody publishes
    # (and a relay lease that expired), a tampered ledger entry, a service that is not there.
    poison = [(b"k", b"{not json", [("fx_error_type", b"invalid_json")])]
    asyncio.run(publish(bootstrap, where.topic(dlq_topic("payout")), [], raw=poison))
    asyncio.run(publish(bootstrap, commissions, [settled("e-2", 100)]))
    order = commands.WithdrawalOrder("d-1", "k-1", 3000, "alipay", "13812345678")
    policy = PayoutSettings().withdrawal_policy()
    request = partial(commands.request_withdrawal, order=order, policy=policy, now=T0)
    payout.command(order.withdrawal_id, request)
    assert db.try_lease(payout.engine, "outbox-relay", "payout-gone", 0.001)
    with payout.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE po_ledger_entry SET amount_fen = 9500 WHERE kind = 'credit'")
    payout.engine.dispose()
    commission = db.make_engine(f"sqlite:///{tmp_path / 'commission.db'}")
    with commission.begin() as conn:  # as the release before migrations left it
        conn.exec_driver_sql("DROP TABLE alembic_version")
    commission.dispose()

    code, out, found = doctor(
        where, tmp_path, "--max-lag", "0", "--service", "payout=http://127.0.0.1:1"
    )
    assert code == 1, out
    wrong = problems(found)
    expected = {"lag", "dlq", "outbox", "leases", "reconciliation", "services", "migrations"}
    assert set(wrong) == expected, out
    assert wrong["migrations"][0]["subject"] == "commission"
    assert wrong["migrations"][0]["hint"] == "fx-commission migrate"
    assert wrong["dlq"][0]["message"] == "1 dead letter(s)"
    assert wrong["dlq"][0]["hint"] == "fxctl dlq list payout"
    assert (
        wrong["lag"][0]["subject"]
        == f"{where.namespace}{consumer_group('payout')} on {commissions}"
    )
    assert wrong["lag"][0]["message"] == "1 records behind"
    assert "row(s) unpublished since" in wrong["outbox"][0]["message"]  # requested, approved
    assert "outbox-relay" in wrong["leases"][0]["message"]
    assert "fx-payout-reconcile" in wrong["reconciliation"][0]["hint"]
    assert "does not answer" in wrong["services"][0]["message"]
    assert "→ fxctl dlq list payout" in out
    assert "problem(s)" in out


async def _consumed(bootstrap: str, topic: str) -> Any:
    kafka = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await kafka.start()
    try:
        await kafka._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in kafka.partitions_for_topic(topic) or ()]
        kafka.assign(partitions)
        await kafka.seek_to_beginning(*partitions)
        for _ in range(30):  # a loaded broker may answer the first fetches empty
            batch = await kafka.getmany(timeout_ms=1_000)
            for records in batch.values():
                return records[0]
        raise TimeoutError(f"nothing to read on {topic}")
    finally:
        await kafka.stop()
