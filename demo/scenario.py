"""The walking-skeleton scenario: a candidate shares, a customer visits and buys three times,
the candidate qualifies, the orders complete, the after-sales hold passes on the simulated
clock, and the commission lands in the payout ledger.

    uv run python -m demo.scenario        (needs the broker: KAFKA_BOOTSTRAP_SERVERS)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from demo.cluster import Cluster
from fx_common.contracts import topics
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode, encode, make_event
from fx_common.http import issue_token
from fx_common.money import format_cny

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHARER, CUSTOMER = "u-lin", "c-wang"
OUTPUT_TOPICS = (
    topics.QUALIFICATION, topics.BINDINGS, topics.ATTRIBUTIONS, topics.COMMISSIONS, topics.PAYOUTS,
)  # fmt: skip


@dataclass
class Outcome:
    events: list[tuple[str, Event]] = field(default_factory=list)
    balance: dict[str, int] = field(default_factory=dict)

    def types(self) -> set[str]:
        return {event.type for _, event in self.events}


class Scenario:
    def __init__(self, cluster: Cluster, say: Callable[[str], None] = print) -> None:
        self.cluster = cluster
        self.ns = cluster.namespace
        self.say = say
        self.producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap, enable_idempotence=True, acks="all"
        )
        self.http = httpx.AsyncClient(timeout=10)

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.cluster.ports[service]}{path}"

    def token(self, sub: str, role: str = "distributor") -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.cluster.jwt_secret, sub, role)}"}

    async def publish(self, ce_type: str, data: dict[str, Any], at: datetime) -> None:
        event = make_event(ce_type, data, time=at, source="/mall/demo")
        value, headers = encode(event)
        key = key_for(ce_type, event.data).encode()
        await self.producer.send_and_wait(
            self.ns + EVENT_TOPIC[ce_type], value=value, key=key, headers=headers
        )

    async def set_clock(self, moment: datetime) -> None:
        self.say(f"⏱  simulated clock → {moment:%Y-%m-%d %H:%M} UTC")
        await self.publish("fx.clock.set", {"now": moment.isoformat()}, moment)

    async def run(self) -> Outcome:
        await self.producer.start()
        try:
            return await self._run()
        finally:
            await self.producer.stop()
            await self.http.aclose()

    async def _run(self) -> Outcome:
        await self.set_clock(T0)
        await asyncio.sleep(2)  # every replica's clock follower sees the move
        self.say(f"📝 {SHARER} applies to become a distributor; ops confirms the WeChat contact")
        response = await self.http.post(
            self.url("qualification", "/v1/applications"), headers=self.token(SHARER), json={}
        )
        response.raise_for_status()
        response = await self.http.post(
            self.url("qualification", f"/v1/applications/{SHARER}/contact-confirmed"),
            headers=self.token("ops-1", "ops"),
            json={},
        )
        response.raise_for_status()
        await self.wait_for(lambda o: "fx.distributor.assessment_started" in o.types())

        self.say(f"🔗 {SHARER} shares a tea; {CUSTOMER} opens the share")
        share = {"share_id": "s-1", "sharer_id": SHARER}
        await self.publish("mall.share.created", share | {"product_sku": "tea-oolong"}, T0)
        await self.publish(
            "mall.share.visited", share | {"visitor_id": CUSTOMER}, T0 + timedelta(minutes=10)
        )
        await self.wait_for(lambda o: "fx.binding.created" in o.types())

        for n in (1, 2, 3):
            paid_at = T0 + timedelta(days=n)
            self.say(f"🛒 {CUSTOMER} pays order o-{n} ({format_cny(25800)}) on {paid_at:%m-%d}")
            await self.publish(
                "mall.order.paid",
                {
                    "order_id": f"o-{n}",
                    "buyer_id": CUSTOMER,
                    "currency": "CNY",
                    "lines": [
                        {
                            "line_id": "l-1",
                            "sku": "tea-oolong",
                            "category": "oolong",
                            "quantity": 2,
                            "paid_amount_fen": 25800,
                        }
                    ],
                },
                paid_at,
            )
        await self.wait_for(lambda o: "fx.distributor.qualified" in o.types())
        for n in (1, 2, 3):
            await self.publish(
                "mall.order.completed",
                {"order_id": f"o-{n}", "buyer_id": CUSTOMER},
                T0 + timedelta(days=5),
            )
        await self.wait_for(lambda o: sum(e.type == "fx.order.completed" for _, e in o.events) >= 3)
        await asyncio.sleep(1)  # the commission service books the completions
        await self.set_clock(T0 + timedelta(days=13))
        outcome = await self.wait_for(
            lambda o: sum(e.type == "fx.commission.settled" for _, e in o.events) >= 3
        )
        outcome.balance = await self.balance()
        return outcome

    async def balance(self) -> dict[str, int]:
        for _ in range(100):
            response = await self.http.get(
                self.url("payout", f"/v1/distributors/{SHARER}/balance"), headers=self.token(SHARER)
            )
            if response.status_code == 200 and response.json().get("available_fen"):
                return dict(response.json())
            await asyncio.sleep(0.2)
        raise TimeoutError(f"no balance for {SHARER}: {response.status_code} {response.text}")

    async def wait_for(self, done: Callable[[Outcome], bool], timeout: float = 60) -> Outcome:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            outcome = Outcome(events=await read_events(self.cluster.bootstrap, self.ns))
            if done(outcome):
                return outcome
            if asyncio.get_running_loop().time() > deadline:
                seen = sorted(outcome.types())
                raise TimeoutError(f"scenario stalled; events so far: {seen}")
            await asyncio.sleep(0.3)


async def read_events(bootstrap: str, ns: str) -> list[tuple[str, Event]]:
    """Every event on the namespace's output topics, in event-time order."""
    consumer = AIOKafkaConsumer(
        *(ns + t for t in OUTPUT_TOPICS), bootstrap_servers=bootstrap, group_id=None,
        enable_auto_commit=False, auto_offset_reset="earliest",
    )  # fmt: skip
    await consumer.start()
    events: list[tuple[str, Event]] = []
    try:
        while batch := await consumer.getmany(timeout_ms=300):
            for part in batch.values():
                for record in part:
                    try:
                        events.append((record.topic, decode(record.value, record.headers)))
                    except (DecodeError, UnknownEventType):
                        continue
    finally:
        await consumer.stop()
    return sorted(events, key=lambda item: item[1].time)


def describe(event: Event) -> str:
    data = event.data.model_dump(exclude_none=True)
    fields = ", ".join(
        f"{k}={format_cny(v) if k.endswith('_fen') else v}"
        for k, v in data.items()
        if k not in ("lines",)
    )
    return f"{event.time:%m-%d %H:%M}  {event.type:38} {fields}"


def print_report(outcome: Outcome) -> None:
    print("\nWhat happened (every event the services published, in event time):")
    for _topic, event in outcome.events:
        print("  " + describe(event))
    print(f"\n💰 {SHARER}'s balance: available {format_cny(outcome.balance['available_fen'])}, "
          f"on hold {format_cny(outcome.balance['on_hold_fen'])}, "
          f"paid out {format_cny(outcome.balance['paid_out_fen'])}")  # fmt: skip


async def main() -> int:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    namespace = f"demo-{uuid.uuid4().hex[:6]}."
    with tempfile.TemporaryDirectory(prefix="fx-demo-") as tmp:
        cluster = Cluster(
            bootstrap, Path(tmp), namespace=namespace,
            extra_env={"FX_CLOCK": "simulated", "FX_LOG_LEVEL": "WARNING"},
        )  # fmt: skip
        print(f"Starting the four services (topics prefixed {namespace!r}, simulated clock)…")
        cluster.start_all()
        try:
            outcome = await Scenario(cluster).run()
        finally:
            cluster.stop_all()
    print_report(outcome)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
