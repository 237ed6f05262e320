"""Throughput, latency and memory of each service's path, against the limit of the broker.

    uv run python benchmarks/bench.py [--events N] [--services a,b]

In one run, on the same broker: (1) a bare aiokafka consume→produce passthrough of N small
events — the limit; (2) each service as its own process (its real SQLite store) consuming N
events through the common processing model: consume → store → outbox → publish. Every run is
live: the process is up first, then the harness publishes as fast as it can, so both sides
measure the same thing. Printed: events/s, the ratio to the passthrough, p50/p99 latency
(publish of the input → publish of its first output, or → commit of the batch for payout,
which publishes nothing per event) and peak RSS. A benchmark, never a test: figures vary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import create_engine, text

from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import Event, encode, make_event
from fx_common.http import issue_token
from fx_common.runtime import all_topics, ensure_topics

REPO = Path(__file__).resolve().parents[1]
JWT_SECRET = "bench-secret"


def now() -> datetime:
    return datetime.now(UTC)


def order_lines(i: int) -> list[dict[str, Any]]:
    return [
        {"line_id": "l1", "sku": f"tea-{i % 50}", "category": "oolong", "quantity": 1,
         "paid_amount_fen": 12800},
        {"line_id": "l2", "sku": "cup", "quantity": 2, "paid_amount_fen": 3800},
    ]  # fmt: skip


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


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    latencies_ms: list[float]
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


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

    def __enter__(self) -> RssSampler:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


async def passthrough(bootstrap: str, ns: str, n: int) -> Result:
    """The limit: consume in batches, produce each record, commit — nothing else."""
    in_topic, out_topic = ns + "passthrough.in", ns + "passthrough.out"
    await ensure_topics(bootstrap, [in_topic, out_topic], 3)
    consumer = AIOKafkaConsumer(
        in_topic, bootstrap_servers=bootstrap, group_id=ns + "passthrough",
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=500,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await consumer.start()
    await producer.start()
    latencies: list[float] = []
    done = 0
    first: float | None = None

    async def consume() -> None:
        nonlocal done, first
        while done < n:
            batch = await consumer.getmany(timeout_ms=50, max_records=500)
            sends = []
            for part in batch.values():
                for record in part:
                    first = first or time.time()
                    sends.append(
                        await producer.send(
                            out_topic, record.value, record.key, headers=record.headers
                        )
                    )
            await asyncio.gather(*sends)
            await consumer.commit()
            stamp = time.time()
            for part in batch.values():
                latencies.extend((stamp - r.timestamp / 1000) * 1000 for r in part)
                done += len(part)

    with RssSampler(os.getpid()) as rss:
        task = asyncio.create_task(consume())
        await asyncio.sleep(1.0)  # joined the group
        await publish(bootstrap, ns, [commission().measured(i) for i in range(n)], in_topic)
        await task
        last = time.time()
    await consumer.stop()
    await producer.stop()
    assert first is not None
    return Result("passthrough (bare aiokafka)", n, last - first, latencies, rss.peak / 2**20)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_service(bootstrap: str, ns: str, name: str, n: int, workdir: Path) -> Result:
    workload = WORKLOADS[name]()
    url = f"sqlite:///{workdir / (name + '.db')}"
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": url,
        "FX_TOPIC_NAMESPACE": ns,
        "FX_HTTP_PORT": str(port),
        "FX_JWT_SECRET": JWT_SECRET,
        "FX_LOG_LEVEL": "WARNING",
    }
    proc = spawn(name, env)
    try:
        await asyncio.to_thread(wait_ready, port, proc)
        if workload.http_setup:
            await asyncio.to_thread(workload.http_setup, port)
        setup = workload.setup()
        await publish(bootstrap, ns, setup)
        await wait_inbox(url, len(setup))
        await asyncio.sleep(1.0)
        with RssSampler(proc.pid) as rss:
            events = [workload.measured(i) for i in range(n)]
            await publish(bootstrap, ns, events)
            await wait_inbox(url, len(setup) + n)
            await wait_outbox_drained(url)
        return measure(name, url, {e.id: e.time for e in events}, rss.peak / 2**20)
    finally:
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


def scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


async def wait_inbox(url: str, expected: int) -> None:
    deadline = time.time() + 300
    while (scalar(url, "SELECT count(*) FROM fx_inbox") or 0) < expected:
        if time.time() > deadline:
            raise TimeoutError(f"inbox stuck below {expected}")
        await asyncio.sleep(0.1)


async def wait_outbox_drained(url: str) -> None:
    while scalar(url, "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"):
        await asyncio.sleep(0.1)


def measure(name: str, url: str, sent: dict[str, datetime], rss_mb: float) -> Result:
    engine = create_engine(url)
    with engine.connect() as conn:
        inbox = conn.execute(text("SELECT ce_id, processed_at FROM fx_inbox")).all()
        outbox = conn.execute(
            text("SELECT cause_id, min(published_at) FROM fx_outbox GROUP BY cause_id")
        ).all()
    engine.dispose()
    processed = {ce_id: parse(at) for ce_id, at in inbox if ce_id in sent}
    published = {cause: parse(at) for cause, at in outbox if cause in sent}
    done = {ce_id: published.get(ce_id, at) for ce_id, at in processed.items()}
    latencies = [(done[i] - sent[i]).total_seconds() * 1000 for i in done]
    seconds = (max(done.values()) - min(processed.values())).total_seconds()
    return Result(name, len(sent), seconds, latencies, rss_mb)


def parse(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def report(limit: Result, results: list[Result]) -> None:
    print(f"\n{'path':32} {'events':>7} {'events/s':>9} {'vs limit':>8} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'peak RSS':>9}")  # fmt: skip
    for r in [limit, *results]:
        print(
            f"{r.name:32} {r.events:>7} {r.rate:>9.0f} {r.rate / limit.rate:>8.0%} "
            f"{r.percentile(50):>8.1f} {r.percentile(99):>8.1f} {r.peak_rss_mb:>7.0f}MB"
        )
    print("\ntargets: ≥ 5,000 events/s per service on SQLite, ≥ 30% of the passthrough, "
          "< 200 MB RSS")  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--services", default=",".join(WORKLOADS))
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    ns = f"bench-{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, [ns + t for t in all_topics()], 3)
    print(f"benchmark on {bootstrap}, namespace {ns!r}, {args.events} events per path",
          flush=True)  # fmt: skip
    limit = await passthrough(bootstrap, ns, args.events)
    print(f"passthrough: {limit.rate:.0f} events/s", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.services.split(","):
            result = await run_service(bootstrap, ns, name, args.events, Path(tmp))
            print(f"{name}: {result.rate:.0f} events/s", flush=True)
            results.append(result)
    report(limit, results)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
