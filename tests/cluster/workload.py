"""Orders through all four services, and an exact account of what they must have caused.

`distributors` candidates apply and are confirmed over HTTP (qualification), each shares one
link; customer c-j always buys through the link of distributor d-(j mod distributors), and each
order is completed right after it is paid. So every order is attributed to a known
distributor, every distributor qualifies (far more than 3 orders each), and every order's one
line earns floor(amount × 10 %), settled after a 2 s after-sales hold and credited in payout.
The expected balance of each distributor is the sum of its orders' commissions.

`Mall` publishes like a careful upstream: `acks=all`, idempotent, and a record whose send
failed is sent again (same `ce_id`) until acknowledged; an order's completion is sent only
after its payment was acknowledged, so per key the payment always comes first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from demo.cluster import Cluster
from fx_common.contracts import topics
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.contracts.topics import SERVICES, dlq_topic
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode, encode, make_event
from fx_common.http import issue_token

log = logging.getLogger(__name__)
RATE_BPS = 1000  # commission's default plan: 10 %
SERVICE_ENV = {
    "FX_SETTLEMENT_HOLD": "PT2S",  # settle 2 s after completion (system clock, real sweeper)
    "FX_SWEEP_INTERVAL_S": "1",
    "FX_LOG_LEVEL": "WARNING",
}


@dataclass(frozen=True)
class Order:
    order_id: str
    buyer_id: str
    distributor_id: str
    amount_fen: int

    @property
    def share_id(self) -> str:
        return "s-" + self.distributor_id

    @property
    def commission_fen(self) -> int:
        return self.amount_fen * RATE_BPS // 10_000


@dataclass
class Workload:
    orders: int
    distributors: int = 40
    customers: int = 2000

    def __post_init__(self) -> None:
        self.distributor_ids = [f"d-{k:03d}" for k in range(self.distributors)]
        self.order_list = [
            Order(
                order_id=f"o-{i:06d}",
                buyer_id=f"c-{i % self.customers:05d}",
                distributor_id=self.distributor_ids[(i % self.customers) % self.distributors],
                amount_fen=990 + (i * 7919) % 60_000,  # 9.90 … 609.89 CNY, floors vary
            )
            for i in range(self.orders)
        ]

    def expected_balances(self) -> dict[str, int]:
        balances = dict.fromkeys(self.distributor_ids, 0)
        for order in self.order_list:
            balances[order.distributor_id] += order.commission_fen
        return balances

    def expected_attribution(self) -> dict[str, str]:
        return {o.order_id: o.distributor_id for o in self.order_list}


def paid(order: Order) -> Event:
    line = {"line_id": "l-1", "sku": "tea-oolong", "category": "oolong", "quantity": 1,
            "paid_amount_fen": order.amount_fen}  # fmt: skip
    data = {"order_id": order.order_id, "buyer_id": order.buyer_id, "share_id": order.share_id,
            "currency": "CNY", "lines": [line]}  # fmt: skip
    return make_event("mall.order.paid", data, time=datetime.now(UTC))


def completed(order: Order) -> Event:
    data = {"order_id": order.order_id, "buyer_id": order.buyer_id}
    return make_event("mall.order.completed", data, time=datetime.now(UTC))


# --- the mall ------------------------------------------------------------------------------


@dataclass
class Mall:
    """An upstream that never gives up on a record and remembers when each was acknowledged."""

    bootstrap: str
    namespace: str
    acked_at: list[float] = field(default_factory=list)  # monotonic time of each ack
    failed_sends: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    # Cleared: the mall pauses between chunks (while a scenario starts processes, say).
    open_for_business: asyncio.Event = field(default_factory=asyncio.Event)
    _producer: AIOKafkaProducer | None = None

    def __post_init__(self) -> None:
        self.open_for_business.set()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        while self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, enable_idempotence=True, acks="all",
                linger_ms=5, request_timeout_ms=15_000,
            )  # fmt: skip
            try:
                await producer.start()
                self._producer = producer
            except Exception as exc:
                self.errors[type(exc).__name__] += 1
                await producer.stop()
                await asyncio.sleep(1)
        return self._producer

    async def send_all(self, events: Sequence[Event]) -> None:
        """Send until every event is acknowledged (a retry re-sends the same `ce_id`)."""
        remaining = list(events)
        while remaining:
            producer = await self._ensure_producer()
            futures: list[tuple[Event, Any]] = []
            failed: list[Event] = []
            for event in remaining:
                value, headers = encode(event)
                key = key_for(event.type, event.data).encode()
                topic = self.namespace + EVENT_TOPIC[event.type]
                try:
                    futures.append(
                        (event, await producer.send(topic, value=value, key=key, headers=headers))
                    )
                except Exception as exc:
                    self.errors[type(exc).__name__] += 1
                    failed.append(event)
            results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
            now = time.monotonic()
            for (event, _), result in zip(futures, results, strict=True):
                if isinstance(result, BaseException):
                    self.errors[type(result).__name__] += 1
                    failed.append(event)
                else:
                    self.acked_at.append(now)
            if failed:
                self.failed_sends += len(failed)
                if len(failed) == len(remaining):  # nothing got through: a fresh producer
                    self._producer = None
                    await producer.stop()
                await asyncio.sleep(0.5)
            remaining = failed

    async def run(self, workload: Workload, rate: float, chunk: int = 100) -> None:
        """Pay `rate` orders per second; complete each once its payment is acknowledged."""
        started = time.monotonic()
        completions: list[Event] = []
        try:
            for i in range(0, len(workload.order_list), chunk):
                if not self.open_for_business.is_set():
                    paused = time.monotonic()
                    await self.open_for_business.wait()
                    started += time.monotonic() - paused
                part = workload.order_list[i : i + chunk]
                await self.send_all([*completions, *(paid(o) for o in part)])
                completions = [completed(o) for o in part]
                ahead = started + (i + len(part)) / rate - time.monotonic()
                if ahead > 0:
                    await asyncio.sleep(ahead)
            await self.send_all(completions)
        finally:
            if self._producer is not None:
                await self._producer.stop()

    def acks_between(self, start: float, end: float) -> int:
        return sum(start <= t < end for t in self.acked_at)


# --- setup over HTTP ---------------------------------------------------------------------


async def enrol_distributors(cluster: Cluster, workload: Workload) -> None:
    """Apply and confirm every distributor; announce their shares; wait until referral-binding
    knows them all (an order before that would find its sharer not yet eligible)."""
    base = f"http://127.0.0.1:{cluster.ports['qualification']}/v1"
    ops = {"Authorization": f"Bearer {issue_token(cluster.jwt_secret, 'ops-1', 'ops')}"}
    async with httpx.AsyncClient(timeout=30) as http:
        for user in workload.distributor_ids:
            token = issue_token(cluster.jwt_secret, user, "distributor")
            own = {"Authorization": f"Bearer {token}"}
            (await http.post(f"{base}/applications", headers=own, json={})).raise_for_status()
            confirm = f"{base}/applications/{user}/contact-confirmed"
            (await http.post(confirm, headers=ops, json={})).raise_for_status()
    shares = [
        make_event(
            "mall.share.created",
            {"share_id": "s-" + d, "sharer_id": d, "product_sku": "tea-oolong"},
            time=datetime.now(UTC),
        )
        for d in workload.distributor_ids
    ]
    await Mall(cluster.bootstrap, cluster.namespace).send_all(shares)
    engine = reader(cluster.database_url("referral-binding"))
    try:
        deadline = time.monotonic() + 120
        while _count(engine, "SELECT count(DISTINCT user_id) FROM rb_eligibility") < len(
            workload.distributor_ids
        ) or _count(engine, "SELECT count(*) FROM rb_share") < len(workload.distributor_ids):
            if time.monotonic() > deadline:
                raise TimeoutError("referral-binding did not learn the distributors in time")
            await asyncio.sleep(0.3)
    finally:
        engine.dispose()


def reader(url: str) -> Engine:
    """An engine that only reads a service's store while the service runs. SQLite: read-only
    (`mode=ro`): it can never checkpoint or delete the WAL under the service (a running
    service's WAL was once found deleted while this process read its store read-write, and
    the service's later writes were invisible to every other reader)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///")).resolve()
        return create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    return create_engine(url)


def _count(engine: Engine, sql: str) -> int:
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar() or 0)
    except Exception:  # table not created yet
        return 0


# --- progress and stalls ---------------------------------------------------------------


@dataclass
class Progress:
    """Samples every store's applied (inbox) and published (outbox) rows twice a second."""

    urls: dict[str, str]
    samples: list[tuple[float, int]] = field(default_factory=list)
    marks: list[tuple[float, str]] = field(default_factory=list)

    def mark(self, what: str) -> None:
        self.marks.append((time.monotonic(), what))

    def total(self, engines: dict[str, Engine]) -> int:
        return sum(
            _count(e, "SELECT count(*) FROM fx_inbox")
            + _count(e, "SELECT count(published_at) FROM fx_outbox")
            for e in engines.values()
        )

    async def run(self, stop: asyncio.Event) -> None:
        engines = {s: reader(u) for s, u in self.urls.items()}
        try:
            while not stop.is_set():
                value = await asyncio.to_thread(self.total, engines)
                self.samples.append((time.monotonic(), value))
                await asyncio.sleep(0.5)
        finally:
            for engine in engines.values():
                engine.dispose()

    def longest_stall(self, since: float) -> float:
        """Longest time after `since` during which no store applied or published anything."""
        longest, last_change, last_value = 0.0, since, None
        for at, value in self.samples:
            if at < since:
                last_value = value
                continue
            if value != last_value:
                longest = max(longest, at - last_change)
                last_change, last_value = at, value
        return longest

    def first_progress_after(self, moment: float) -> float | None:
        """Seconds from `moment` until the stores moved again."""
        before = [v for at, v in self.samples if at <= moment]
        base = before[-1] if before else 0
        for at, value in self.samples:
            if at > moment and value > base:
                return at - moment
        return None


# --- the exact check ---------------------------------------------------------------------


async def read_topic(bootstrap: str, topic: str) -> tuple[list[Event], int]:
    """Every event on `topic`, from offset 0 to its end now, and how many records did not
    decode as events."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    events: list[Event] = []
    undecodable = 0
    try:
        await consumer._client.force_metadata_update()
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not parts:
            return [], 0
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    try:
                        events.append(decode(record.value, record.headers))
                    except (DecodeError, UnknownEventType):
                        undecodable += 1
        return events, undecodable
    finally:
        await consumer.stop()


@dataclass
class Report:
    orders: int
    lost: dict[str, int]
    duplicated: dict[str, int]
    wire_resends: dict[str, int]
    balances_wrong: dict[str, tuple[int, int]]
    dlq_records: int
    wrong_attributions: int
    seconds: float = 0.0
    stall_s: float = 0.0
    recovery_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def lines(self, name: str) -> list[str]:
        return [
            f"[{name}] {self.orders} orders in {self.seconds:.0f}s: "
            f"lost {sum(self.lost.values())} {self.lost}, "
            f"duplicated {sum(self.duplicated.values())} {self.duplicated}",
            f"[{name}] wrong balances {len(self.balances_wrong)}, wrong attributions "
            f"{self.wrong_attributions}, DLQ records {self.dlq_records}; re-sent on the wire "
            f"(deduplicated by the inboxes) {self.wire_resends}",
            f"[{name}] longest stall after the fault {self.stall_s:.1f}s; progress resumed "
            f"{'never' if self.recovery_s is None else f'{self.recovery_s:.1f}s'} after it"
            + "".join(f"; {k} {v}" for k, v in self.extra.items()),
        ]

    def assert_exact(self) -> None:
        assert sum(self.lost.values()) == 0, f"lost effects: {self.lost}"
        assert sum(self.duplicated.values()) == 0, f"duplicated effects: {self.duplicated}"
        assert not self.balances_wrong, f"balances (got, expected): {self.balances_wrong}"
        assert self.wrong_attributions == 0
        assert self.dlq_records == 0


async def wait_until_done(cluster: Cluster, workload: Workload, timeout: float) -> None:
    """Until payout credited every order's commission and every outbox is drained."""
    engines = {s: reader(cluster.database_url(s)) for s in SERVICES}
    deadline = time.monotonic() + timeout
    try:
        while True:
            credited = _count(
                engines["payout"],
                "SELECT count(DISTINCT commission_id) FROM po_ledger_entry WHERE kind = 'credit'",
            )
            backlog = sum(
                _count(e, "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL")
                for e in engines.values()
            )
            if credited >= workload.orders and backlog == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"after {timeout:.0f}s: {credited}/{workload.orders} credited, "
                    f"{backlog} outbox rows unpublished"
                )
            await asyncio.sleep(1)
    finally:
        for engine in engines.values():
            engine.dispose()


async def account(cluster: Cluster, workload: Workload) -> Report:
    """Compare everything the services caused with what the orders imply, exactly."""
    ns, bootstrap = cluster.namespace, cluster.bootstrap
    attributions, bad_attributions = await read_topic(bootstrap, ns + topics.ATTRIBUTIONS)
    commissions, bad_commissions = await read_topic(bootstrap, ns + topics.COMMISSIONS)
    lost: dict[str, int] = {}
    duplicated: dict[str, int] = {"undecodable": bad_attributions + bad_commissions}
    resends: dict[str, int] = {}
    for name, events in (("attributions", attributions), ("commissions", commissions)):
        ids = Counter(e.id for e in events)
        resends[name] = sum(n - 1 for n in ids.values())

    by_type: dict[str, dict[str, Any]] = {}
    for event in {e.id: e for e in attributions + commissions}.values():
        data = event.data.model_dump()
        key = data.get("commission_id") or data["order_id"]
        by_type.setdefault(event.type, {}).setdefault(key, []).append(data)
    expected = workload.expected_attribution()
    attributed = by_type.get("fx.order.attributed", {})
    wrong = sum(
        1 for order_id, items in attributed.items()
        if order_id not in expected or {d["distributor_id"] for d in items} != {expected[order_id]}
    )  # fmt: skip
    for ce_type in ("fx.order.attributed", "fx.order.completed"):
        got = by_type.get(ce_type, {})
        lost[ce_type] = len(set(expected) - set(got))
        duplicated[ce_type] = sum(len(v) - 1 for v in got.values())  # distinct ce_ids per order
    for ce_type in ("fx.commission.accrued", "fx.commission.settled"):
        got = by_type.get(ce_type, {})
        lost[ce_type] = workload.orders - len(got)
        duplicated[ce_type] = sum(len(v) - 1 for v in got.values())
    for ce_type in ("fx.commission.voided", "fx.commission.reversed", "fx.commission.adjusted"):
        duplicated[ce_type] = len(by_type.get(ce_type, {}))  # none of these may happen here

    engine = reader(cluster.database_url("payout"))
    try:
        with engine.connect() as conn:
            credits = conn.execute(
                text(
                    "SELECT distributor_id, count(*), count(DISTINCT commission_id),"
                    " sum(amount_fen) FROM po_ledger_entry WHERE kind = 'credit'"
                    " GROUP BY distributor_id"
                )
            ).all()
    finally:
        engine.dispose()
    lost["payout credits"] = workload.orders - sum(int(r[2]) for r in credits)
    duplicated["payout credits"] = sum(int(r[1]) - int(r[2]) for r in credits)
    balances = await _balances(cluster, workload.distributor_ids)
    want = workload.expected_balances()
    wrong_balances = {d: (balances.get(d, 0), v) for d, v in want.items() if balances.get(d) != v}

    dlq = 0
    for service in SERVICES:
        events, undecodable = await read_topic(bootstrap, ns + dlq_topic(service))
        dlq += len(events) + undecodable
    return Report(
        orders=workload.orders, lost=lost, duplicated=duplicated, wire_resends=resends,
        balances_wrong=wrong_balances, dlq_records=dlq, wrong_attributions=wrong,
    )  # fmt: skip


async def _balances(cluster: Cluster, distributors: Sequence[str]) -> dict[str, int]:
    """Each distributor's available balance, as payout's HTTP API answers it."""
    ops = {"Authorization": f"Bearer {issue_token(cluster.jwt_secret, 'ops-1', 'ops')}"}
    base = f"http://127.0.0.1:{cluster.ports['payout']}/v1/distributors"
    async with httpx.AsyncClient(timeout=30) as http:
        found = {}
        for d in distributors:
            response = await http.get(f"{base}/{d}/balance", headers=ops)
            response.raise_for_status()
            found[d] = int(response.json()["available_fen"])
        return found
