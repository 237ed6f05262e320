"""Brokers fail under load on the three-node cluster; every effect is still there exactly once.

Each scenario pays FX_CLUSTER_ORDERS orders (20,000 by default) through all four services as
processes, injects its fault mid-run, waits until payout credited every commission, and then
compares everything with what the orders imply (`tests.cluster.workload.account`): each order
attributed once to its distributor and completed once, one accrued and one settled commission
per order, one payout credit per commission, each distributor's balance to the fen, empty DLQs.
It prints lost / duplicated effects and how long the services stalled.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.cluster.kafka_cluster import KafkaCluster
from tests.cluster.scenario import Run, run_scenario

pytestmark = [pytest.mark.integration, pytest.mark.timeout(2400)]


async def busiest_leader(run: Run) -> int:
    leaders = await run.kafka.leaders(run.topics)
    node, _ = leaders.most_common(1)[0]
    run.extra["leader counts"] = dict(sorted(leaders.items()))
    return int(node)


async def restart_and_resync(run: Run, *nodes: int) -> None:
    await asyncio.to_thread(run.kafka.start, *nodes)
    run.extra["back in sync"] = f"{await run.kafka.wait_in_sync(run.topics):.1f}s"


async def test_kill_minus_9_of_the_broker_leading_most_partitions(
    kafka: KafkaCluster, tmp_path: Path, orders: int
) -> None:
    async def fault(run: Run) -> None:
        await run.until_published(0.3)
        node = await busiest_leader(run)
        run.fault(f"kill -9 node {node}")
        run.kafka.kill9(node)
        run.extra["killed"] = f"node {node}"
        await asyncio.sleep(10)
        await restart_and_resync(run, node)

    report = await run_scenario("kill-leader", kafka, tmp_path, orders, fault)
    report.assert_exact()


async def test_rolling_restart_of_all_three_brokers_under_load(
    kafka: KafkaCluster, tmp_path: Path, orders: int
) -> None:
    async def fault(run: Run) -> None:
        await run.until_published(0.2)
        run.fault("rolling restart")
        for node in range(1, kafka.nodes + 1):
            began = time.monotonic()
            await asyncio.to_thread(run.kafka.stop, node)
            await asyncio.to_thread(run.kafka.start, node)
            await run.kafka.wait_in_sync(run.topics)
            run.extra[f"node {node} restarted+in sync"] = f"{time.monotonic() - began:.1f}s"

    report = await run_scenario("rolling", kafka, tmp_path, orders, fault)
    report.assert_exact()


async def test_a_broker_frozen_past_its_session_timeout_then_resumed(
    kafka: KafkaCluster, tmp_path: Path, orders: int
) -> None:
    async def fault(run: Run) -> None:
        await run.until_published(0.3)
        node = await busiest_leader(run)
        run.fault(f"SIGSTOP node {node}")
        run.kafka.freeze(node)
        run.extra["frozen"] = f"node {node} for 15s (broker session 4s, consumer session 6s)"
        await asyncio.sleep(15)
        run.kafka.resume(node)
        run.extra["back in sync"] = f"{await run.kafka.wait_in_sync(run.topics):.1f}s"

    report = await run_scenario("sigstop", kafka, tmp_path, orders, fault)
    report.assert_exact()


async def test_two_brokers_down_block_writes_and_one_back_completes_everything(
    kafka: KafkaCluster, tmp_path: Path, orders: int
) -> None:
    down: list[int] = []

    async def fault(run: Run) -> None:
        await run.until_published(0.3)
        leaders = await run.kafka.leaders(run.topics)
        down.extend(sorted(n for n, _ in leaders.most_common(2)))
        run.fault(f"kill -9 nodes {down}")
        run.kafka.kill9(*down)
        killed_at = time.monotonic()
        await asyncio.sleep(20)
        # Anything acknowledged now would have one copy only: min.insync.replicas=2 refuses it.
        run.extra["acks while two were down"] = run.mall.acks_between(
            killed_at + 1.0, time.monotonic()
        )
        await asyncio.to_thread(run.kafka.start, down[0])  # one back: two of three again
        run.extra["back"] = f"node {down[0]}; node {down[1]} stays down until the end"

    report = await run_scenario("two-down", kafka, tmp_path, orders, fault)
    assert report.extra["acks while two were down"] == 0
    assert not kafka.running(down[1]), "everything completed with two of three brokers"
    report.assert_exact()


async def test_the_active_controller_killed(
    kafka: KafkaCluster, tmp_path: Path, orders: int
) -> None:
    async def fault(run: Run) -> None:
        await run.until_published(0.3)
        # The leader the voters recorded (instant); Kafka's own tool, which starts a JVM,
        # confirms below that another node took over.
        node = run.kafka.recorded_controller()
        assert node is not None, "no KRaft leader recorded"
        run.fault(f"kill -9 controller node {node}")
        run.kafka.kill9(node)
        await asyncio.sleep(3)
        successor = await asyncio.to_thread(run.kafka.active_controller)
        run.extra["controller"] = f"node {node} killed, node {successor} elected"
        assert successor != node
        await asyncio.sleep(5)
        await restart_and_resync(run, node)

    report = await run_scenario("controller", kafka, tmp_path, orders, fault)
    report.assert_exact()
