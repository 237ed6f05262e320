"""A broker restart mid-run: services reconnect and continue, losing and duplicating nothing.

Restarts the broker of the test session (fx_common.testinfra): the Kafka container, or the
local broker with deploy/kafka/{stop,start}.sh (same FX_VAR / FX_KAFKA_PORT as the run that
started it) — so it needs a broker the session started, not an external one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from fx_common import testinfra
from tests.kafka_helpers import publish
from tests.probing import Probe, effect_count, paid, query, wait_for

pytestmark = pytest.mark.integration


def broker(action: str) -> None:
    infra = testinfra.active()
    (infra.broker_stop if action == "stop" else infra.broker_start)()


async def test_services_ride_out_a_broker_restart(
    bootstrap: str, make_topics: Any, unique: str, tmp_path: Path, probes: list[Probe]
) -> None:
    half = 3000
    in_topic, out_topic = f"t.{unique}.in", f"t.{unique}.out"
    await make_topics(in_topic, out_topic, partitions=3)
    url = f"sqlite:///{tmp_path / 'probe.db'}"
    probe = Probe(f"probe-{unique}", in_topic, out_topic, url)
    probes.append(probe)
    probe.start()
    await publish(bootstrap, in_topic, [paid(f"o-{i}", f"b-{i % 31}") for i in range(half)])
    while effect_count(url) == 0:
        await asyncio.sleep(0.05)

    await asyncio.to_thread(broker, "stop")
    await asyncio.sleep(2)
    assert probe.proc is not None and probe.proc.poll() is None, "service died with the broker"
    await asyncio.to_thread(broker, "start")

    await publish(
        bootstrap, in_topic, [paid(f"o-{i}", f"b-{i % 31}") for i in range(half, 2 * half)]
    )
    assert await wait_for(url, 2 * half, timeout=180) == 2 * half
    deadline = asyncio.get_running_loop().time() + 60
    while query(url, "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL")[0][0]:
        assert asyncio.get_running_loop().time() < deadline, "outbox not drained after restart"
        await asyncio.sleep(0.25)
    probe.stop()
    assert query(url, "SELECT count(DISTINCT order_id), count(*) FROM probe_effect")[0] == (
        2 * half,
        2 * half,
    )
