"""`make compose-test`, after `docker-compose up`: the cluster the compose file runs, checked for
real through its published ports and the engine's API (deploy/containers/compose-test.sh).

1. every service's `/readyz` answers (in each container); the time to a ready cluster; each
   store was upgraded by its one-shot `<service>-migrate` (exit 0), not by the services;
2. the demo scenario with the same checks as the end-to-end test (demo.checks);
3. commission scaled to two replicas: both join the group and both consume records;
4. one commission replica restarted while orders flow: every order is attributed and accrues
   commission exactly once, with the right amount.

    python -m demo.compose_check --project P --compose "docker-compose -p P -f … -f …"
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import docker
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from demo.checks import check_outcome
from demo.scenario import T0, Outcome, Scenario, print_report
from fx_common.contracts.topics import SERVICES

HTTP_PORTS = {"referral-binding": 8101, "qualification": 8102, "commission": 8103, "payout": 8104}
LOAD_DISTRIBUTORS = 6
LOAD_ORDERS = 60
ORDER_FEN = 12345  # 10% floored: 1234 fen of commission per order
CONSUMED = re.compile(r'^fx_records_consumed_total\{[^}]*service="commission"[^}]*\} ([0-9.e+]+)$')


@dataclass
class ComposeCluster:
    """The demo's view of the compose project (demo.scenario.Endpoints)."""

    bootstrap: str
    namespace: str
    jwt_secret: str
    ports: dict[str, int] = field(default_factory=dict)


class Compose:
    def __init__(self, project: str, command: list[str]) -> None:
        self.project = project
        self.command = command
        self.engine = docker.from_env(timeout=120)

    def run(self, *args: str) -> None:
        subprocess.run([*self.command, *args], check=True)

    def containers(self, service: str, *, stopped: bool = False) -> list[Any]:
        labels = [f"com.docker.compose.project={self.project}",
                  f"com.docker.compose.service={service}"]  # fmt: skip
        found = self.engine.containers.list(all=stopped, filters={"label": labels})
        return sorted(found, key=lambda c: str(c.name))

    def check_migrated_once(self) -> None:
        """Each store upgraded by its one-shot (exit 0), the services refusing to do it."""
        for service in SERVICES:
            [migrate] = self.containers(f"{service}-migrate", stopped=True)
            state = migrate.attrs["State"]
            assert (state["Status"], state["ExitCode"]) == ("exited", 0), (migrate.name, state)
            for container in self.containers(service):
                env = container.attrs["Config"]["Env"]
                assert "FX_MIGRATE=off" in env, f"{container.name} would migrate its store itself"

    def http(self, container: Any, service: str, path: str) -> tuple[int, str]:
        """GET inside the container (replicas publish no port): exit code and body."""
        url = f"http://127.0.0.1:{HTTP_PORTS[service]}{path}"
        script = f"import urllib.request as u; print(u.urlopen({url!r}, timeout=3).read().decode())"
        code, output = container.exec_run(["python3", "-c", script])
        return int(code), output.decode(errors="replace")

    def wait_ready(self, services: list[str], replicas: int = 1, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        for service in services:
            while True:
                containers = self.containers(service)
                ready = [c for c in containers if self.http(c, service, "/readyz")[0] == 0]
                if len(ready) >= replicas:
                    break
                if time.monotonic() > deadline:
                    states = {c.name: c.status for c in containers}
                    raise TimeoutError(f"{service} not ready after {timeout:.0f}s: {states}")
                time.sleep(1)

    def consumed(self, container: Any) -> float:
        code, body = self.http(container, "commission", "/metrics")
        assert code == 0, body
        return sum(float(m.group(1)) for m in map(CONSUMED.match, body.splitlines()) if m)


async def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return str(described["state"]), len(described["members"])
    finally:
        await admin.close()


async def wait_group(bootstrap: str, group: str, members: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (state := await group_members(bootstrap, group)) != ("Stable", members):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: {state}, expected Stable with {members} members")
        await asyncio.sleep(1)


def spread_distributors(partitions: int = 3) -> list[str]:
    """Distributor ids whose attributions land on every partition (Kafka's murmur2 of the key)."""
    chosen: list[str] = []
    per_partition = LOAD_DISTRIBUTORS // partitions
    counts = dict.fromkeys(range(partitions), 0)
    n = 0
    while len(chosen) < LOAD_DISTRIBUTORS:
        candidate = f"u-load-{n}"
        partition = (murmur2(candidate.encode()) & 0x7FFFFFFF) % partitions
        if counts[partition] < per_partition:
            counts[partition] += 1
            chosen.append(candidate)
        n += 1
    return chosen


class Load(Scenario):
    """Distributors spread over every partition, each with a bound customer who buys."""

    at = T0 + timedelta(days=201)  # after the scenario's last clock move (T0 + 200 days)

    async def prepare(self, distributors: list[str]) -> None:
        await self.producer.start()
        for user in distributors:
            await self.apply_and_confirm(user)
        await self.count("fx.distributor.assessment_started", 2 + len(distributors))
        for user in distributors:
            share = {"share_id": f"s-{user}", "sharer_id": user, "product_sku": "tea-oolong"}
            await self.publish("mall.share.created", share, self.at)
            visit = {"share_id": f"s-{user}", "sharer_id": user, "visitor_id": f"c-{user}"}
            await self.publish("mall.share.visited", visit, self.at + timedelta(minutes=1))
        await self.count("fx.binding.created", 3 + len(distributors))

    async def orders(self, distributors: list[str], numbers: range) -> None:
        for n in numbers:
            buyer = f"c-{distributors[n % len(distributors)]}"
            at = self.at + timedelta(hours=1, minutes=n)
            await self.pay(f"o-load-{n}", buyer, at, fen=ORDER_FEN)

    async def close(self) -> None:
        await self.producer.stop()
        await self.http.aclose()


def check_load(outcome: Outcome, distributors: list[str]) -> None:
    """Each load order attributed once and accrued once, to its distributor, for 10%."""
    orders = {f"o-load-{n}": distributors[n % len(distributors)] for n in range(LOAD_ORDERS)}
    events = [e for _, e in outcome.events if e.data.model_dump().get("order_id") in orders]
    for ce_type in ("fx.order.attributed", "fx.commission.accrued"):
        of_type = [e for e in events if e.type == ce_type]
        by_order = {e.data.order_id: e for e in of_type}  # type: ignore[attr-defined]
        assert len({e.id for e in of_type}) == LOAD_ORDERS, f"{ce_type}: {len(of_type)} events"
        assert {o: e.data.distributor_id for o, e in by_order.items()} == orders  # type: ignore[attr-defined]
    accrued = [e for e in events if e.type == "fx.commission.accrued"]
    assert {e.data.amount_fen for e in accrued} == {ORDER_FEN * 1000 // 10000}  # type: ignore[attr-defined]


async def main(args: argparse.Namespace) -> int:
    compose = Compose(args.project, shlex.split(args.compose))
    compose.wait_ready(list(SERVICES))
    ready_after = time.time() - args.up_at if args.up_at else None
    if ready_after is not None:
        print(f"compose-test: cluster ready {ready_after:.0f}s after `up`")
    for container in compose.containers("payout"):
        code, uid = container.exec_run(["id", "-u"])
        assert code == 0 and uid.decode().strip() != "0", "the services' image runs as root"
    compose.check_migrated_once()
    print("compose-test: each store migrated once by its one-shot; services run as non-root")

    cluster = ComposeCluster(args.bootstrap, args.namespace, args.jwt_secret)
    cluster.ports = {s: int(p) for s, p in (item.split("=") for item in args.port)}
    scenario = Scenario(cluster, say=lambda line: print(f"  {line}"))
    outcome = await scenario.run()
    check_outcome(outcome, scenario.traces)
    print_report(outcome)
    print("compose-test: demo scenario and its checks passed")

    compose.run("up", "-d", "--no-build", "--no-recreate", "--scale", "commission=2")
    compose.wait_ready(["commission"], replicas=2)
    await wait_group(args.bootstrap, f"{args.namespace}fx-commission", 2)
    replicas = compose.containers("commission")
    before = [compose.consumed(c) for c in replicas]
    distributors = spread_distributors()
    load = Load(cluster, say=lambda _: None)
    await load.prepare(distributors)
    await load.orders(distributors, range(LOAD_ORDERS // 2))
    after = [compose.consumed(c) for c in replicas]
    assert all(a > b for a, b in zip(after, before, strict=True)), (before, after)
    print(f"compose-test: both commission replicas consume (records: {before} → {after})")

    restarted = replicas[0]
    restart = asyncio.create_task(asyncio.to_thread(restarted.restart, timeout=30))
    await load.orders(distributors, range(LOAD_ORDERS // 2, LOAD_ORDERS))
    await restart
    compose.wait_ready(["commission"], replicas=2)
    outcome = await load.wait_for(
        lambda o: sum(e.type == "fx.commission.accrued" for _, e in o.events) >= 4 + LOAD_ORDERS,
        timeout=240,
    )
    await load.close()
    check_load(outcome, distributors)
    restarted.reload()
    started = restarted.attrs["State"]["StartedAt"]
    print(
        f"compose-test: {restarted.name} restarted (started {started});"
        f" {LOAD_ORDERS} orders each attributed and accrued exactly once"
    )
    return 0


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", required=True)
    parser.add_argument("--compose", required=True, help="the compose command line, quoted")
    parser.add_argument("--bootstrap", default="127.0.0.1:29092")
    parser.add_argument("--namespace", default=os.environ.get("FX_TOPIC_NAMESPACE", ""))
    parser.add_argument("--jwt-secret", default=os.environ.get("FX_JWT_SECRET", ""))
    parser.add_argument("--port", action="append", default=[], help="service=host port")
    parser.add_argument("--up-at", type=float, default=None, help="epoch of `up`")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse(sys.argv[1:]))))
