"""Throughput, latency and memory of each service's path, against the limit of the broker.

    uv run python benchmarks/bench.py [--events N] [--services a,b] [--save PATH] [--compare PATH]
        [--stores sqlite,postgres] [--growth 5000,200000]

Every run is saved as JSON (`--save`, default benchmarks/results/<UTC timestamp>.json, ignored
by git); `--compare PATH` prints each path's events/s and CPU per event as a ratio to a saved
run, e.g. the figures measured before a change, back to back on the same machine.

In one run, on the same broker: (1) a bare aiokafka consume→produce passthrough of N small
events — the limit; (2) each service as its own process (its real store: SQLite, or with
`--stores sqlite,postgres` also a fresh Postgres database on `--postgres-url`) consuming N
events through the common processing model: consume → store → outbox → publish. Printed:
events/s, the ratio to the passthrough, the CPU time of the consumer's process per event (the
figure the machine's other load changes least), p50/p99 latency, peak RSS, and which of
issue 15's targets each row misses. `--growth` runs each service again on SQLite with each
backlog size (fresh store each) and prints the rates side by side with what the store holds at
the end. A benchmark, never a test: figures vary. `make bench-full` runs all of it.

Throughput: N events are published first (a backlog), then the consumer — the passthrough or
the service, each its own process — is started and drains them; events/s = N / (last output
published − first input processed). Latency: afterwards, `--paced` events are published at
`--rate` per second and each is timed from its publication to its first output on the wire
(the passthrough) or to its outbox row being published (the services; for payout, which
publishes nothing per credit, to its inbox row).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from bench_report import (
    Result,
    compare,
    report,
    report_growth,
    report_stores,
    save,
)
from fxbench import free_port, now, order_lines, parse, scalar
from sqlalchemy import create_engine, inspect, text

from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import Event, encode, make_event
from fx_common.http import issue_token
from fx_common.runtime import all_topics, ensure_topics
from fx_common.testing import fresh_postgres_database

REPO = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-only-secret-for-local-benchmarks"


@dataclass
class Workload:
    """Events that set the stage (published first), then the N measured events."""

    setup: Callable[[], list[Event]]
    measured: Callable[[int], Event]
    http_setup: Callable[[int], None] | None = None


def referral_binding() -> Workload:
    start = now() - timedelta(days=1)
    return Workload(
        setup=lambda: [
            make_event("fx.distributor.assessment_started",
                       {"user_id": f"d-{k}", "deadline": (start + timedelta(days=30)).isoformat(),
                        "required_orders": 3}, time=start)
            for k in range(100)
        ] + [
            make_event("mall.share.created", {"share_id": f"s-{k}", "sharer_id": f"d-{k}"},
                       time=start)
            for k in range(100)
        ],
        measured=lambda i: make_event(
            "mall.order.paid",
            {"order_id": f"o-{i}", "buyer_id": f"c-{i % 5000}", "share_id": f"s-{i % 100}",
             "currency": "CNY", "lines": order_lines(i)},
            time=now(),
        ),
    )  # fmt: skip


def qualification() -> Workload:
    def apply_and_confirm(port: int) -> None:
        ops = issue_token(JWT_SECRET, "ops-1", "ops")
        for k in range(200):
            user = f"q-{k}"
            post(port, "/v1/applications", issue_token(JWT_SECRET, user, "distributor"), {})
            post(port, f"/v1/applications/{user}/contact-confirmed", ops, {})

    return Workload(
        setup=list,
        measured=lambda i: make_event(
            "fx.order.attributed",
            {"order_id": f"o-{i}", "buyer_id": f"c-{i}", "distributor_id": f"q-{i % 200}",
             "basis": "binding", "paid_at": now().isoformat(), "lines": order_lines(i)},
            time=now(),
        ),
        http_setup=apply_and_confirm,
    )  # fmt: skip


def commission() -> Workload:
    return Workload(
        setup=list,
        measured=lambda i: make_event(
            "fx.order.attributed",
            {"order_id": f"o-{i}", "buyer_id": f"c-{i}", "distributor_id": f"d-{i % 500}",
             "basis": "binding", "paid_at": now().isoformat(), "lines": order_lines(i)},
            time=now(),
        ),
    )  # fmt: skip


def payout() -> Workload:
    return Workload(
        setup=list,
        measured=lambda i: make_event(
            "fx.commission.settled",
            {"commission_id": f"c-{i}", "distributor_id": f"d-{i % 500}", "order_id": f"o-{i}",
             "line_id": "l1", "amount_fen": 1280},
            time=now(),
        ),
    )  # fmt: skip


WORKLOADS = {
    "referral-binding": referral_binding,
    "qualification": qualification,
    "commission": commission,
    "payout": payout,
}


def post(port: int, path: str, token: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


async def publish(bootstrap: str, ns: str, events: list[Event], topic: str | None = None) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        sends = []
        for event in events:
            value, headers = encode(event)
            key = key_for(event.type, event.data).encode()
            target = topic or ns + EVENT_TOPIC[event.type]
            sends.append(await producer.send(target, value=value, key=key, headers=headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            try:
                rss = self.process.memory_info().rss
                for child in self.process.children(recursive=True):
                    rss += child.memory_info().rss
                self.peak = max(self.peak, rss)
            except psutil.Error:
                return
            await asyncio.sleep(0.05)

    def cpu(self) -> float:
        """CPU seconds of the process and its children so far."""
        try:
            times = [self.process.cpu_times()]
            times += [child.cpu_times() for child in self.process.children(recursive=True)]
        except psutil.Error:
            return float("nan")
        return float(sum(t.user + t.system for t in times))

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def passthrough(bootstrap: str, ns: str, n: int, paced: int, rate: int) -> Result:
    """The limit: a bare aiokafka consume → produce → commit loop in its own process."""
    in_topic, out_topic = ns + "passthrough.in", ns + "passthrough.out"
    await ensure_topics(bootstrap, [in_topic, out_topic], 3)
    backlog = [commission().measured(i) for i in range(n)]
    await publish(bootstrap, ns, backlog, in_topic)
    args = [sys.executable, __file__, "--passthrough-worker", bootstrap, in_topic, out_topic,
            ns + "passthrough", str(n), str(n + paced)]  # fmt: skip
    proc = await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.PIPE, limit=2**26)
    assert proc.stdout is not None
    with RssSampler(proc.pid) as rss:
        drained = json.loads(await proc.stdout.readline())
        cpu = rss.cpu()
        sent = await publish_paced(
            bootstrap, ns, [commission().measured(n + i) for i in range(paced)], rate, in_topic
        )
        output = json.loads(await proc.stdout.readline())
        await proc.wait()
    latencies = [(output[i] - sent[i]) * 1000 for i in sent if i in output]
    return Result(
        "passthrough (bare aiokafka)", n, drained["seconds"], latencies, rss.peak / 2**20,
        cpu_seconds=cpu - drained["startup_cpu"],
    )  # fmt: skip


async def passthrough_worker(
    bootstrap: str, in_topic: str, out_topic: str, group: str, backlog: int, total: int
) -> None:
    consumer = AIOKafkaConsumer(
        in_topic, bootstrap_servers=bootstrap, group_id=group,
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500,
        fetch_max_wait_ms=50,  # as the services' consumers (fx_common.edge)
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await consumer.start()
    await producer.start()
    startup_cpu = time.process_time()
    done, first = 0, 0.0
    published: dict[str, float] = {}
    while done < total:
        batch = await consumer.getmany(timeout_ms=50, max_records=500)
        sends = []
        for part in batch.values():
            for record in part:
                first = first or time.time()
                sends.append(
                    await producer.send(
                        out_topic, record.value, record.key, headers=list(record.headers)
                    )
                )
        await asyncio.gather(*sends)
        await consumer.commit()
        stamp = time.time()
        for part in batch.values():
            for record in part:
                event_id = dict(record.headers)["ce_id"].decode()
                published[event_id] = stamp
        before, done = done, done + sum(len(part) for part in batch.values())
        if before < backlog <= done:
            print(json.dumps({"seconds": stamp - first, "startup_cpu": startup_cpu}), flush=True)
    print(json.dumps(published), flush=True)
    await consumer.stop()
    await producer.stop()


async def publish_paced(
    bootstrap: str, ns: str, events: list[Event], rate: int, topic: str | None = None
) -> dict[str, float]:
    """Publish at `rate` events/s, stamping each event's ce_time with its send time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    sent: dict[str, float] = {}
    try:
        started = time.time()
        for index, event in enumerate(events):
            delay = started + index / rate - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            stamped = Event(event.id, event.type, event.source, now(), event.data)
            value, headers = encode(stamped)
            key = key_for(event.type, event.data).encode()
            sent[event.id] = time.time()
            await producer.send(
                topic or ns + EVENT_TOPIC[event.type], value=value, key=key, headers=headers
            )
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def run_service(
    bootstrap: str, ns: str, name: str, n: int, paced: int, rate: int, url: str
) -> Result:
    workload = WORKLOADS[name]()
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": url,
        "FX_TOPIC_NAMESPACE": ns,
        "FX_HTTP_PORT": str(port),
        "FX_JWT_SECRET": JWT_SECRET,
        "FX_LOG_LEVEL": "WARNING",
        "FX_MIGRATE": "auto",
    }
    proc = spawn(name, env)
    await asyncio.to_thread(wait_ready, port, proc)
    if workload.http_setup:
        await asyncio.to_thread(workload.http_setup, port)
    setup = workload.setup()
    await publish(bootstrap, ns, setup)
    await wait_inbox(url, len(setup))
    await wait_outbox_drained(url)
    await asyncio.to_thread(stop, proc)

    backlog = [workload.measured(i) for i in range(n)]
    await publish(bootstrap, ns, backlog)
    proc = spawn(name, env)
    try:
        with RssSampler(proc.pid) as rss:
            await asyncio.to_thread(wait_ready, port, proc)
            cpu = rss.cpu()
            await wait_inbox(url, len(setup) + n)
            await wait_outbox_drained(url)
            cpu = rss.cpu() - cpu
            seconds = drain_seconds(url, {e.id for e in backlog})
            events = [workload.measured(n + i) for i in range(paced)]
            sent = await publish_paced(bootstrap, ns, events, rate)
            await wait_inbox(url, len(setup) + n + paced)
            await wait_outbox_drained(url)
        done = completion_times(url, set(sent))
        latencies = [(done[i] - sent[i]) * 1000 for i in sent if i in done]
        return Result(
            name, n, seconds, latencies, rss.peak / 2**20, cpu, store_kind(url),
            store_contents(url),
        )  # fmt: skip
    finally:
        await asyncio.to_thread(stop, proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(60)


def spawn(name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(REPO / ".venv" / "bin" / f"fx-{name}")], env=env)


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("service not ready")


async def wait_inbox(url: str, expected: int) -> None:
    deadline = time.time() + 300
    while (scalar(url, "SELECT count(*) FROM fx_inbox") or 0) < expected:
        if time.time() > deadline:
            raise TimeoutError(f"inbox stuck below {expected}")
        await asyncio.sleep(0.1)


async def wait_outbox_drained(url: str) -> None:
    while scalar(url, "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"):
        await asyncio.sleep(0.1)


def completion_times(url: str, ids: set[str]) -> dict[str, float]:
    """Per input event: when its first output was published, else when it was processed."""
    engine = create_engine(url)
    with engine.connect() as conn:
        inbox = conn.execute(text("SELECT ce_id, processed_at FROM fx_inbox")).all()
        outbox = conn.execute(
            text("SELECT cause_id, min(published_at) FROM fx_outbox GROUP BY cause_id")
        ).all()
    engine.dispose()
    done = {ce_id: parse(at).timestamp() for ce_id, at in inbox if ce_id in ids}
    done.update({cause: parse(at).timestamp() for cause, at in outbox if cause in ids})
    return done


def drain_seconds(url: str, ids: set[str]) -> float:
    engine = create_engine(url)
    with engine.connect() as conn:
        inbox = conn.execute(text("SELECT ce_id, processed_at FROM fx_inbox")).all()
    engine.dispose()
    first = min(parse(at).timestamp() for ce_id, at in inbox if ce_id in ids)
    return float(max(completion_times(url, ids).values()) - first)


def store_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def store_contents(url: str) -> dict[str, int]:
    """Rows per table (Alembic's own left out)."""
    engine = create_engine(url)
    try:
        tables = sorted(t for t in inspect(engine).get_table_names() if t != "alembic_version")
        with engine.connect() as conn:
            return {t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)
                    for t in tables}  # fmt: skip
    finally:
        engine.dispose()


def default_save_path() -> Path:
    return REPO / "benchmarks" / "results" / f"{now():%Y%m%dT%H%M%SZ}.json"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--services", default=",".join(WORKLOADS))
    parser.add_argument("--paced", type=int, default=2000, help="events of the latency phase")
    parser.add_argument("--rate", type=int, default=500, help="events/s of the latency phase")
    parser.add_argument("--save", type=Path, help="JSON file of the results (default: "
                        "benchmarks/results/<timestamp>.json)")  # fmt: skip
    parser.add_argument("--compare", type=Path, help="a saved run to print ratios against")
    parser.add_argument(
        "--stores",
        default="sqlite",
        help="sqlite, postgres or both (sqlite,postgres): the table per store",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "FX_TEST_POSTGRES_URL", "postgresql+psycopg://fx:fx@127.0.0.1:5432/fx_test"
        ),
        help="a Postgres server the bench creates (and drops) a database per run on",
    )
    parser.add_argument(
        "--growth",
        help="sizes, e.g. 5000,200000: each service on SQLite with "
        "a backlog of each size, a fresh store each, printed as the growth",
    )
    parser.add_argument("--passthrough-worker", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.passthrough_worker:
        bootstrap, in_topic, out_topic, group, backlog, total = args.passthrough_worker
        await passthrough_worker(bootstrap, in_topic, out_topic, group, int(backlog), int(total))
        return
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    ns = f"bench-{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, [ns + t for t in all_topics()], 3)
    print(f"benchmark on {bootstrap}, namespace {ns!r}, {args.events} events per path",
          flush=True)  # fmt: skip
    try:
        await run(args, bootstrap, ns)
    finally:
        await delete_namespace(bootstrap, ns)


async def delete_namespace(bootstrap: str, ns: str) -> None:
    """The shared broker keeps no benchmark's topics."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        doomed = [t for t in await admin.list_topics() if t.startswith(ns)]
        if doomed:
            await admin.delete_topics(doomed)
    finally:
        await admin.close()


async def run(args: argparse.Namespace, bootstrap: str, ns: str) -> None:
    limit = await passthrough(bootstrap, ns, args.events, args.paced, args.rate)
    print(f"passthrough: {limit.rate:.0f} events/s", flush=True)
    results: list[Result] = []
    growth: dict[str, list[Result]] = {}
    services = args.services.split(",")
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as databases:

        def store_url(store: str, name: str, tag: str) -> str:
            if store == "sqlite":
                return f"sqlite:///{Path(tmp) / f'{name}-{tag}.db'}"
            return databases.enter_context(fresh_postgres_database(args.postgres_url, "fx_bench"))

        for store in args.stores.split(","):
            for name in services:
                # Its own namespace: one service's outputs are another's inputs.
                own = f"{ns}{store}.{name}."
                await ensure_topics(bootstrap, [own + t for t in all_topics()], 3)
                url = store_url(store, name, "main")
                result = await run_service(
                    bootstrap, own, name, args.events, args.paced, args.rate, url
                )
                label = name if store == "sqlite" else f"{name} ({store})"
                print(f"{label}: {result.rate:.0f} events/s", flush=True)
                results.append(result)
        for name in services if args.growth else []:
            for size in sorted(int(x) for x in args.growth.split(",")):
                url = store_url("sqlite", name, f"growth{size}")
                own = f"{ns}growth{size}.{name}."
                await ensure_topics(bootstrap, [own + t for t in all_topics()], 3)
                run = await run_service(bootstrap, own, name, size, args.paced, args.rate, url)
                print(f"{name} at {size}: {run.rate:.0f} events/s", flush=True)
                growth.setdefault(name, []).append(run)
    report(limit, results, args.rate)
    report_stores(results)
    report_growth(growth)
    save(args.save or default_save_path(), args, limit, results, growth)
    if args.compare:
        compare(args.compare, limit, results)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
