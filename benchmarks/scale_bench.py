"""Scale-out on Postgres: 1, 2 and 3 replicas of a service in one consumer group, 6 partitions.

    uv run python benchmarks/scale_bench.py [--events N] [--services a,b] [--replicas 1,2,3]
        [--save PATH] [--compare PATH]

Needs FX_TEST_POSTGRES_URL (a server where the bench may create databases). Per service and
replica count, on a fresh Postgres database and a fresh topic namespace (every topic 6
partitions): the replicas start (each its own process and HTTP port, one consumer group),
the group is waited Stable with that many members, then N events are published and drained.
events/s = N / (first event processed → last output published). Printed per run: events/s,
the speed-up over one replica, the CPU seconds the replicas used, the cores they kept busy,
the whole machine's busy share over the run, the relay tail (last event processed → its last
output published), and one line tools can parse:
`scale NAME xK: N events/s`. Saved as benchmarks/results/scale-<stamp>.json and compared
with the previous run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from fxbench import (
    Service,
    attributed,
    distributors,
    drain_times,
    machine,
    machine_note,
    namespace,
    now,
    paid,
    publish,
    save_and_compare,
    scalar,
    service_env,
    wait_group,
    wait_until,
)
from sqlalchemy.engine import make_url

from fx_common.contracts.topics import consumer_group
from fx_common.envelope import Event
from fx_common.testing import fresh_postgres_database

PARTITIONS = 6
UNPUBLISHED = "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"


def backlog(service: str, events: int) -> list[Event]:
    make = paid if service == "referral-binding" else attributed
    return [make(i) for i in range(events)]


async def stage(bootstrap: str, ns: str, service: str, url: str) -> int:
    """Publish the service's stage (referral-binding: distributors and shares) and wait for it."""
    if service != "referral-binding":
        return 0
    events = distributors(100, now())
    await publish(bootstrap, ns, events)
    await wait_until(url, "SELECT count(*) FROM fx_inbox", len(events))
    return len(events)


async def drain(
    bootstrap: str, ns: str, service: str, url: str, replicas: list[Service], events: int
) -> dict[str, Any]:
    staged = await stage(bootstrap, ns, service, url)
    work = backlog(service, events)
    ports = {"postgres": make_url(url).port or 5432, "kafka": int(bootstrap.rsplit(":", 1)[1])}
    cpu_before = sum(r.cpu_seconds() for r in replicas)
    others_before = infra_cpu_seconds(ports)
    psutil.cpu_percent()  # starts the machine-wide measurement
    await publish(bootstrap, ns, work)
    await wait_until(url, "SELECT count(*) FROM fx_inbox", staged + events)
    while await asyncio.to_thread(_unpublished, url):
        await asyncio.sleep(0.2)
    machine_busy = psutil.cpu_percent() / 100
    cpu = sum(r.cpu_seconds() for r in replicas) - cpu_before
    others = {k: v - others_before[k] for k, v in infra_cpu_seconds(ports).items()}
    first, processed, published = drain_times(url, {e.id for e in work})
    seconds = published - first
    return {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "replica_cpu_seconds": cpu,
        "replica_cores_busy": cpu / seconds,
        "machine_busy": machine_busy,
        "relay_tail_seconds": published - processed,
        "postgres_cpu_seconds": others["postgres"],
        "kafka_cpu_seconds": others["kafka"],
    }


def infra_cpu_seconds(ports: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by the server listening on each port and its children (the
    Postgres server's backends; the Kafka broker's JVM): every client's work, this bench's too.
    0 where the listener cannot be seen (another user's process)."""
    listeners = {
        c.laddr.port: c.pid
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.pid is not None
    }
    used = dict.fromkeys(ports, 0.0)
    for name, port in ports.items():
        if port not in listeners:
            continue
        try:
            server = psutil.Process(listeners[port])
            for proc in [server, *server.children(recursive=True)]:
                times = proc.cpu_times()
                used[name] += times.user + times.system
        except psutil.Error:
            continue
    return used


def _unpublished(url: str) -> int:
    return int(scalar(url, UNPUBLISHED) or 0)


async def run(
    bootstrap: str, server: str, service: str, count: int, events: int, logs: Path
) -> dict[str, Any]:
    async with namespace(bootstrap, "scale", PARTITIONS) as ns:
        with fresh_postgres_database(server, "fx_scale") as url:
            return await run_replicas(bootstrap, ns, url, service, count, events, logs)


async def run_replicas(
    bootstrap: str, ns: str, url: str, service: str, count: int, events: int, logs: Path
) -> dict[str, Any]:
    env = {**service_env(bootstrap, ns, url), "FX_TOPIC_PARTITIONS": str(PARTITIONS)}
    replicas = [Service(service, env, logs / f"{service}-{count}-{k}.log") for k in range(count)]
    try:
        for replica in replicas:
            await asyncio.to_thread(replica.wait_ready)
        await wait_group(bootstrap, ns + consumer_group(service), count)
        return await drain(bootstrap, ns, service, url, replicas, events)
    finally:
        for replica in replicas:
            await asyncio.to_thread(replica.stop)


def report(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'run':24} {'events/s':>9} {'speed-up':>9} {'replica CPU s':>14} "
          f"{'per CPU s':>10} {'cores busy':>11} {'machine busy':>13} {'pg CPU s':>9} "
          f"{'kafka CPU s':>12} {'relay tail s':>13}")  # fmt: skip
    for name, r in results.items():
        one = results.get(name.rsplit(" x", 1)[0] + " x1")
        speedup = f"{r['events_per_s'] / one['events_per_s']:.2f}x" if one else "-"
        print(
            f"{name:24} {r['events_per_s']:>9.0f} {speedup:>9} {r['replica_cpu_seconds']:>14.1f} "
            f"{r['events'] / r['replica_cpu_seconds']:>10.0f} {r['replica_cores_busy']:>11.2f} "
            f"{r['machine_busy']:>13.0%} "
            f"{r['postgres_cpu_seconds']:>9.1f} {r['kafka_cpu_seconds']:>12.1f} "
            f"{r['relay_tail_seconds']:>13.1f}"
        )
    print(
        "per CPU s: events per CPU second of the replicas; cores busy: their CPU seconds per "
        "second of the drain (2 = both cores); machine busy: every process on the machine "
        "(other work, Postgres, Kafka included); pg / kafka CPU s: the servers' processes over "
        "the drain (every client's work); relay tail: from the last event processed to its "
        "last output published (the outbox relay runs on one replica)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--services", default="commission,referral-binding")
    parser.add_argument("--replicas", default="1,2,3")
    parser.add_argument("--save", type=Path, help="JSON file of the results")
    parser.add_argument("--compare", type=Path, help="a saved run (default: the previous one)")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        sys.exit("scale_bench: set FX_TEST_POSTGRES_URL (a Postgres server to create databases on)")
    load = machine()
    print(f"scale-out benchmark on {bootstrap} and Postgres, {args.events} events per run, "
          f"{PARTITIONS} partitions", flush=True)  # fmt: skip
    print(machine_note(load), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for service in args.services.split(","):
            for count in map(int, args.replicas.split(",")):
                started = time.monotonic()
                result = await run(bootstrap, server, service, count, args.events, Path(tmp))
                result["run_seconds"] = time.monotonic() - started
                print(
                    f"scale {service} x{count}: {result['events_per_s']:.0f} events/s", flush=True
                )
                results[f"{service} x{count}"] = result
    report(results)
    document = {"kind": "scale", "events": args.events, "partitions": PARTITIONS,
                "machine": load, "results": results}  # fmt: skip
    save_and_compare("scale", document, "events_per_s", args.save, args.compare)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
