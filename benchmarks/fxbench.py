"""Helpers shared by the replay, scale-out and HTTP benchmarks (`replay_bench.py`,
`scale_bench.py`, `http_bench.py`): workloads, publishing, service processes, store counts,
the machine's load, and saving a run as JSON with the comparison to the previous one."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import psutil
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import create_engine, text

from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import Event, encode, make_event
from fx_common.runtime import all_topics, ensure_topics

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
JWT_SECRET = "bench-only-secret-for-local-benchmarks"
# Fresh topics answer "not leader" for a moment; the producer retries, the warning is noise.
logging.getLogger("aiokafka").setLevel(logging.ERROR)


def now() -> datetime:
    return datetime.now(UTC)


def order_lines(i: int) -> list[dict[str, Any]]:
    return [
        {"line_id": "l1", "sku": f"tea-{i % 50}", "category": "oolong", "quantity": 1,
         "paid_amount_fen": 12800},
        {"line_id": "l2", "sku": "cup", "quantity": 2, "paid_amount_fen": 3800},
    ]  # fmt: skip


def distributors(count: int, at: datetime) -> list[Event]:
    """`count` distributors in assessment (d-K), each with a share (s-K)."""
    deadline = (at + timedelta(days=30)).isoformat()
    return [
        make_event("fx.distributor.assessment_started",
                   {"user_id": f"d-{k}", "deadline": deadline, "required_orders": 3}, time=at)
        for k in range(count)
    ] + [
        make_event("mall.share.created", {"share_id": f"s-{k}", "sharer_id": f"d-{k}"}, time=at)
        for k in range(count)
    ]  # fmt: skip


def paid(i: int, buyers: int = 5000, shares: int = 100) -> Event:
    """A mall order of buyer c-(i mod buyers) through share s-(i mod shares)."""
    return make_event(
        "mall.order.paid",
        {"order_id": f"o-{i}", "buyer_id": f"c-{i % buyers}", "share_id": f"s-{i % shares}",
         "currency": "CNY", "lines": order_lines(i)},
        time=now(),
    )  # fmt: skip


def attributed(i: int, distributor_count: int = 500) -> Event:
    return make_event(
        "fx.order.attributed",
        {"order_id": f"o-{i}", "buyer_id": f"c-{i}", "distributor_id": f"d-{i % distributor_count}",
         "basis": "binding", "paid_at": now().isoformat(), "lines": order_lines(i)},
        time=now(),
    )  # fmt: skip


def settled(i: int) -> Event:
    return make_event(
        "fx.commission.settled",
        {"commission_id": f"c-{i}", "distributor_id": f"d-{i % 500}", "order_id": f"o-{i}",
         "line_id": "l1", "amount_fen": 1280},
        time=now(),
    )  # fmt: skip


async def publish(bootstrap: str, ns: str, events: Iterable[Event]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    await producer.start()
    try:
        sends = []
        for event in events:
            value, headers = encode(event)
            key = key_for(event.type, event.data).encode()
            target = ns + EVENT_TOPIC[event.type]
            sends.append(await producer.send(target, value=value, key=key, headers=headers))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One service process (`fx-<name>`) on its own HTTP port, its log in `log`."""

    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.name, self.port = name, free_port()
        self._log: IO[bytes] = log.open("ab")
        full = {**os.environ, "FX_HTTP_PORT": str(self.port), **env}
        binary = str(REPO / ".venv" / "bin" / f"fx-{name}")
        self.proc = subprocess.Popen([binary], env=full, stdout=self._log, stderr=self._log)
        self.log = log

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.proc.returncode}); see {self.log}")
            try:
                url = f"http://127.0.0.1:{self.port}/readyz"
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout}s; see {self.log}")

    def cpu_seconds(self) -> float:
        try:
            times = psutil.Process(self.proc.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def service_env(bootstrap: str, ns: str, url: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "DATABASE_URL": url,
        "FX_TOPIC_NAMESPACE": ns,
        "FX_JWT_SECRET": JWT_SECRET,
        "FX_ENV": "dev",
        "FX_LOG_LEVEL": "WARNING",
        "FX_MIGRATE": "auto",
        "FX_KAFKA_SESSION_TIMEOUT_MS": "6000",
    }


def scalar(url: str, sql: str) -> Any:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


async def wait_until(url: str, sql: str, expected: int, timeout: float = 600) -> None:
    """Until `sql` (a count) reaches `expected` in the store at `url`."""
    deadline = time.monotonic() + timeout
    while (scalar(url, sql) or 0) < expected:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{sql!r} stuck below {expected}")
        await asyncio.sleep(0.2)


def parse(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def drain_times(url: str, ids: set[str]) -> tuple[float, float, float]:
    """Of `ids`: when the first was processed, when the last was, and when the last output they
    caused was published (the last processed when they caused none)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        inbox = conn.execute(text("SELECT ce_id, processed_at FROM fx_inbox")).all()
        outbox = conn.execute(
            text("SELECT cause_id, max(published_at) FROM fx_outbox GROUP BY cause_id")
        ).all()
    engine.dispose()
    processed = [parse(at).timestamp() for ce_id, at in inbox if ce_id in ids]
    published = [parse(at).timestamp() for cause, at in outbox if cause in ids and at]
    return min(processed), max(processed), max([*processed, *published])


def drain_seconds(url: str, ids: set[str]) -> float:
    """From the first of `ids` processed to the last output they caused being published."""
    first, _, last = drain_times(url, ids)
    return last - first


def machine() -> dict[str, Any]:
    return {"cores": psutil.cpu_count(), "load_average": list(os.getloadavg())}


def machine_note(before: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.1f}" for x in before["load_average"])
    return (
        f"machine: {before['cores']} cores shared with other work (load average {load} at the "
        "start): absolute figures move with the load, ratios hold better"
    )


def previous_run(kind: str, exclude: Path | None = None) -> Path | None:
    runs = sorted(p for p in RESULTS.glob(f"{kind}-*.json") if p != exclude)
    return runs[-1] if runs else None


def save_and_compare(
    kind: str, document: dict[str, Any], rate_key: str, save: Path | None, compare: Path | None
) -> None:
    """Save the run (default benchmarks/results/<kind>-<UTC stamp>.json) and print each
    result's `rate_key` beside the previous saved run of the same kind (or `compare`)."""
    path = save or RESULTS / f"{kind}-{now():%Y%m%dT%H%M%SZ}.json"
    before_path = compare or previous_run(kind, exclude=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"at": now().isoformat(), **document}, indent=2) + "\n")
    print(f"\nsaved {path}")
    if before_path is None or not before_path.exists():
        print("no previous run to compare with")
        return
    before = json.loads(before_path.read_text())
    print(f"compared with {before_path.name} ({before['at']})")
    print(f"{'result':32} {'before':>9} {'now':>9} {'ratio':>7}")
    for name, result in document["results"].items():
        old = before.get("results", {}).get(name)
        value = result[rate_key]
        if not old or not old.get(rate_key):
            print(f"{name:32} {'-':>9} {value:>9.0f} {'-':>7}")
            continue
        print(f"{name:32} {old[rate_key]:>9.0f} {value:>9.0f} {value / old[rate_key]:>7.0%}")


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return str(described["state"]), len(described["members"])
    finally:
        await admin.close()


async def wait_group(bootstrap: str, group: str, members: int, timeout: float = 120) -> None:
    """Until the consumer group is Stable with `members` members (partitions assigned)."""
    deadline = time.monotonic() + timeout
    while (state := await group_state(bootstrap, group)) != ("Stable", members):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{group}: {state}, expected Stable with {members} members")
        await asyncio.sleep(0.5)


@asynccontextmanager
async def namespace(bootstrap: str, kind: str, partitions: int) -> AsyncIterator[str]:
    """A fresh topic namespace with every topic (`partitions` each), deleted afterwards: the
    shared broker keeps no benchmark's topics."""
    ns = f"bench-{kind}-{uuid.uuid4().hex[:8]}."
    await ensure_topics(bootstrap, [ns + t for t in all_topics()], partitions)
    try:
        yield ns
    finally:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            doomed = [t for t in await admin.list_topics() if t.startswith(ns)]
            if doomed:
                await admin.delete_topics(doomed)
        finally:
            await admin.close()
