"""End to end: the four services as processes on one broker (SQLite stores, simulated clock).

    uv run python benchmarks/e2e_bench.py [--orders N] [--paced M] [--rate R]
        [--distributors D] [--customers C] [--save PATH] [--compare PATH]

Setup (not timed): the clock is set to T0; D users apply over HTTP and qualify at once
(FX_QUALIFICATION_MODE=everyone: the assessment is not what this measures); each shares, and C
customers visit the shares and are bound (waited for in referral-binding's store).

(a) Throughput: N orders, each `mall.order.paid` then `mall.order.completed` on
`mall.orders.v1`, are published as fast as the producer goes; once commission holds all N
commissions frozen (completed, in the after-sales hold), `fx.clock.set` moves the clock past the
hold; the run ends when payout's ledger holds N commission credits (its store, polled every
0.1 s). orders/s = N / (first publish → last credit), the clock move and the waits included.
Printed: `end-to-end: N orders/s` (the line tools parse), the time to each stage, and the CPU
seconds the four service processes used (per order: what a loaded machine does not change much).

(b) Latency: M more orders paid at R orders/s (paced), p50/p99/max from each `mall.order.paid`
publish (wall clock, just before the send) to the arrival of its `fx.commission.accrued` record
at a consumer of the commission topic running in this process.

Saved as benchmarks/results/e2e-<stamp>.json and compared with the previous run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fxbench import (
    JWT_SECRET,
    Service,
    machine,
    machine_note,
    namespace,
    publish,
    save_and_compare,
    scalar,
    service_env,
)

from fx_common.contracts import topics
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.contracts.topics import SERVICES
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode, encode, make_event
from fx_common.http import issue_token

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PAID_AT, COMPLETED_AT = T0 + timedelta(hours=1), T0 + timedelta(days=1)
PAST_HOLD = COMPLETED_AT + timedelta(days=8)  # the hold is 7 days (FX_SETTLEMENT_HOLD)
PARTITIONS = 3
FROZEN = "SELECT count(*) FROM cm_commission WHERE status = 'frozen'"
ACCRUED = "SELECT count(*) FROM cm_commission"
CREDITS = "SELECT count(*) FROM po_ledger_entry WHERE commission_id IS NOT NULL"
BOUND = "SELECT count(*) FROM rb_binding"
ELIGIBLE = "SELECT count(DISTINCT user_id) FROM rb_eligibility WHERE eligible"


def order(order_id: str, buyer: str) -> list[Event]:
    lines = [{"line_id": "l1", "sku": "tea-oolong", "category": "oolong", "quantity": 1,
              "paid_amount_fen": 12800}]  # fmt: skip
    data = {"order_id": order_id, "buyer_id": buyer, "currency": "CNY", "lines": lines}
    return [make_event("mall.order.paid", data, time=PAID_AT)]


def completed(order_id: str, buyer: str) -> Event:
    data = {"order_id": order_id, "buyer_id": buyer}
    return make_event("mall.order.completed", data, time=COMPLETED_AT)


async def poll(
    count: Callable[[], Awaitable[int]], expected: int, what: str, timeout: float
) -> float:
    """Until `count()` reaches `expected`; the wall time (time.time()) it was seen."""
    deadline = time.monotonic() + timeout
    while (seen := await count()) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: {seen} of {expected} after {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.time()


class Cluster:
    """The four services (fxbench.Service), each on its own SQLite file in `workdir`."""

    def __init__(self, bootstrap: str, ns: str, workdir: Path) -> None:
        self.bootstrap, self.namespace, self.jwt_secret = bootstrap, ns, JWT_SECRET
        self.urls = {s: f"sqlite:///{workdir / (s.replace('-', '_') + '.db')}" for s in SERVICES}
        extra = {"FX_CLOCK": "simulated", "FX_QUALIFICATION_MODE": "everyone",
                 "FX_TOPIC_PARTITIONS": str(PARTITIONS)}  # fmt: skip
        self.services = {
            s: Service(s, {**service_env(bootstrap, ns, self.urls[s]), **extra},
                       workdir / f"{s}.log")
            for s in SERVICES
        }  # fmt: skip
        self.ports = {s: service.port for s, service in self.services.items()}

    def wait_ready(self) -> None:
        for service in self.services.values():
            service.wait_ready()

    def cpu_seconds(self) -> float:
        return float(sum(service.cpu_seconds() for service in self.services.values()))

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


class Bench:
    def __init__(self, cluster: Cluster, customers: int, distributors: int) -> None:
        self.cluster, self.ns = cluster, cluster.namespace
        self.customers, self.distributors = customers, distributors

    def count(self, service: str, sql: str) -> Callable[[], Awaitable[int]]:
        url = self.cluster.urls[service]
        return lambda: asyncio.to_thread(lambda: int(scalar(url, sql) or 0))

    async def set_clock(self, moment: datetime) -> None:
        move = make_event("fx.clock.set", {"now": moment.isoformat()}, time=moment)
        await publish(self.cluster.bootstrap, self.ns, [move])
        async with httpx.AsyncClient(timeout=5) as http:
            for service, port in self.cluster.ports.items():
                for _ in range(600):
                    answer = await http.get(f"http://127.0.0.1:{port}/v1/clock")
                    now = datetime.fromisoformat(answer.json()["now"].replace("Z", "+00:00"))
                    if now >= moment:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise TimeoutError(f"the clock move to {moment} did not reach {service}")

    async def setup(self) -> None:
        await self.set_clock(T0)
        port = self.cluster.ports["qualification"]
        async with httpx.AsyncClient(timeout=10) as http:
            for k in range(self.distributors):
                token = issue_token(self.cluster.jwt_secret, f"d-{k}", "distributor")
                answer = await http.post(f"http://127.0.0.1:{port}/v1/applications", json={},
                                         headers={"Authorization": f"Bearer {token}"})  # fmt: skip
                answer.raise_for_status()
        await publish(self.cluster.bootstrap, self.ns, [
            make_event("mall.share.created", {"share_id": f"s-{k}", "sharer_id": f"d-{k}",
                                              "product_sku": "tea-oolong"}, time=T0)
            for k in range(self.distributors)
        ])  # fmt: skip
        # The qualifications reach referral-binding before the visits (as in a mall: nobody
        # is visited through a share before being a distributor).
        await poll(self.count("referral-binding", ELIGIBLE), self.distributors, "eligible", 120)
        visits = [
            make_event("mall.share.visited", {"share_id": f"s-{c % self.distributors}",
                       "sharer_id": f"d-{c % self.distributors}", "visitor_id": f"c-{c}"},
                       time=T0 + timedelta(minutes=1))
            for c in range(self.customers)
        ]  # fmt: skip
        await publish(self.cluster.bootstrap, self.ns, visits)
        await poll(self.count("referral-binding", BOUND), self.customers, "bindings", 120)

    async def throughput(self, orders: int) -> dict[str, Any]:
        events = []
        for i in range(orders):
            buyer = f"c-{i % self.customers}"
            events += [*order(f"o-{i}", buyer), completed(f"o-{i}", buyer)]
        cpu_before = self.cluster.cpu_seconds()
        start = time.time()
        await publish(self.cluster.bootstrap, self.ns, events)
        published = time.time()
        accrued = await poll(self.count("commission", ACCRUED), orders, "accrued", 900)
        frozen = await poll(self.count("commission", FROZEN), orders, "frozen", 900)
        await self.set_clock(PAST_HOLD)
        moved = time.time()
        credited = await poll(self.count("payout", CREDITS), orders, "ledger credits", 900)
        seconds = credited - start
        cpu = self.cluster.cpu_seconds() - cpu_before
        return {
            "services_cpu_seconds": cpu,
            "services_cpu_ms_per_order": 1000 * cpu / orders,
            "services_cores_busy": cpu / seconds,
            "orders": orders,
            "seconds": seconds,
            "orders_per_s": orders / seconds,
            "published_s": published - start,
            "all_accrued_s": accrued - start,
            "all_frozen_s": frozen - start,
            "clock_moved_s": moved - start,
            "all_credited_s": credited - start,
            "settle_to_ledger_s": credited - moved,
        }

    async def latency(self, count: int, rate: float) -> dict[str, Any]:
        sent: dict[str, float] = {}
        arrived: dict[str, float] = {}
        consumer = AIOKafkaConsumer(
            self.ns + topics.COMMISSIONS, bootstrap_servers=self.cluster.bootstrap,
            group_id=None, enable_auto_commit=False, auto_offset_reset="earliest",
            # A fetch in flight for the other partitions holds new records of this one back
            # for up to fetch_max_wait_ms (aiokafka's default, 500 ms): the probe must not.
            fetch_max_wait_ms=20,
        )  # fmt: skip
        await consumer.start()
        reader = asyncio.create_task(self._read(consumer, arrived, count))
        producer = AIOKafkaProducer(
            bootstrap_servers=self.cluster.bootstrap, enable_idempotence=True, acks="all",
            linger_ms=1,
        )  # fmt: skip
        await producer.start()
        try:
            began = time.monotonic()
            pending = []
            for i in range(count):
                delay = began + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                [event] = order(f"p-{i}", f"c-{i % self.customers}")
                value, headers = encode(event)
                key = key_for(event.type, event.data).encode()
                sent[f"p-{i}"] = time.time()
                pending.append(await producer.send(
                    self.ns + EVENT_TOPIC[event.type], value=value, key=key, headers=headers
                ))  # fmt: skip
            achieved = count / (time.monotonic() - began)
            await asyncio.gather(*pending)
            await asyncio.wait_for(reader, 300)
        finally:
            await producer.stop()
            await consumer.stop()
        waits = sorted(1000 * (arrived[o] - sent[o]) for o in sent)
        return {
            "orders": count,
            "rate": rate,
            "achieved_rate": achieved,
            "p50_ms": waits[len(waits) // 2],
            "p99_ms": waits[min(len(waits) - 1, int(len(waits) * 0.99))],
            "max_ms": waits[-1],
        }

    @staticmethod
    async def _read(consumer: AIOKafkaConsumer, arrived: dict[str, float], count: int) -> None:
        while len(arrived) < count:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            for part in batch.values():
                for record in part:
                    try:
                        event = decode(record.value, record.headers)
                    except (DecodeError, UnknownEventType):
                        continue
                    order_id = getattr(event.data, "order_id", "")
                    if event.type == "fx.commission.accrued" and order_id.startswith("p-"):
                        arrived.setdefault(order_id, now)


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    async with namespace(bootstrap, "e2e", PARTITIONS) as ns:
        cluster = Cluster(bootstrap, ns, workdir)
        try:
            await asyncio.to_thread(cluster.wait_ready)
            bench = Bench(cluster, args.customers, args.distributors)
            await bench.setup()
            through = await bench.throughput(args.orders)
            print(f"end-to-end: {through['orders_per_s']:.0f} orders/s", flush=True)
            latency = await bench.latency(args.paced, args.rate)
            print(f"paid → accrued at {args.rate:.0f} orders/s: p50 {latency['p50_ms']:.0f} ms, "
                  f"p99 {latency['p99_ms']:.0f} ms", flush=True)  # fmt: skip
            return {"throughput": through, "latency": latency}
        finally:
            await asyncio.to_thread(cluster.stop)


def report(through: dict[str, Any], latency: dict[str, Any]) -> None:
    print(f"\n{through['orders']} orders, first publish → (seconds):")
    for key in ("published_s", "all_accrued_s", "all_frozen_s", "clock_moved_s",
                "all_credited_s"):  # fmt: skip
        print(f"  {key.removesuffix('_s').replace('_', ' '):16} {through[key]:8.1f}")
    print(f"  clock moved → last ledger credit: {through['settle_to_ledger_s']:.1f} s")
    print(
        f"the four services used {through['services_cpu_seconds']:.1f} CPU s "
        f"({through['services_cpu_ms_per_order']:.1f} ms per order, "
        f"{through['services_cores_busy']:.2f} cores busy on average)"
    )
    print(f"{latency['orders']} paced orders at {latency['rate']:.0f}/s (achieved "
          f"{latency['achieved_rate']:.0f}/s): paid → fx.commission.accrued p50 "
          f"{latency['p50_ms']:.0f} ms, p99 {latency['p99_ms']:.0f} ms, max "
          f"{latency['max_ms']:.0f} ms")  # fmt: skip
    print(
        f"targets (issue 15): ≥ 2,000 orders/s: {through['orders_per_s']:.0f}; "
        f"p99 ≤ 250 ms: {latency['p99_ms']:.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--paced", type=int, default=5000, help="orders of the latency run")
    parser.add_argument("--rate", type=float, default=500, help="paced orders per second")
    parser.add_argument("--distributors", type=int, default=20)
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--save", type=Path, help="JSON file of the results")
    parser.add_argument("--compare", type=Path, help="a saved run (default: the previous one)")
    args = parser.parse_args()
    load = machine()
    print(f"end-to-end benchmark: {args.orders} orders, then {args.paced} paced at "
          f"{args.rate:.0f}/s; {args.distributors} distributors, {args.customers} customers; "
          "SQLite stores", flush=True)  # fmt: skip
    print(machine_note(load), flush=True)
    with tempfile.TemporaryDirectory(prefix="fx-e2e-") as tmp:
        results = await run(args, Path(tmp))
    report(results["throughput"], results["latency"])
    document = {"kind": "e2e", "machine": load, "results": {
        "end-to-end": results["throughput"], "paced": results["latency"]}}  # fmt: skip
    results["latency"]["orders_per_s"] = results["latency"]["achieved_rate"]
    save_and_compare("e2e", document, "orders_per_s", args.save, args.compare)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
