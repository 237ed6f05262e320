"""The walking-skeleton scenario: a candidate shares, a customer visits and buys three times,
the candidate qualifies, the orders complete, the after-sales hold passes on the simulated
clock, and the commission lands in the payout ledger. With FX_COMMISSION_TIERS=2 a second
customer of the candidate applies, qualifies on own orders and earns the candidate (their
recruiter) a tier-2 commission on each (tier-2 rate FX_TIER2_DEFAULT_RATE_BPS, 5 % here).

    uv run python -m demo.scenario        (needs the broker: KAFKA_BOOTSTRAP_SERVERS)
    uv run python -m demo.scenario --keep (then the cluster and the console stay up: Ctrl-C)
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
from typing import Any, Protocol

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from demo.cluster import Cluster
from demo.keep import stay_up
from fx_common.contracts import topics
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode, encode, make_event
from fx_common.http import issue_token
from fx_common.money import format_cny

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SHARER, CUSTOMER = "u-lin", "c-wang"  # qualifies with three orders; buys three times
FAILING, OTHER = "u-zhao", "c-li"  # one referred order, then the window closes short
LAPSING = "c-chen"  # bound to u-lin, never buys: the protection lapses
RECRUIT = "c-zhou"  # FX_COMMISSION_TIERS=2: bound to u-lin, applies, qualifies on own orders
WITHDRAWAL = 5000
OUTPUT_TOPICS = (
    topics.QUALIFICATION, topics.BINDINGS, topics.ATTRIBUTIONS, topics.COMMISSIONS, topics.PAYOUTS,
)  # fmt: skip


class Endpoints(Protocol):
    """Where the scenario finds the cluster: demo.cluster.Cluster, or a compose project."""

    bootstrap: str
    namespace: str
    ports: dict[str, int]
    jwt_secret: str


@dataclass
class Outcome:
    events: list[tuple[str, Event]] = field(default_factory=list)
    balance: dict[str, int] = field(default_factory=dict)
    team: list[dict[str, Any]] = field(default_factory=list)

    def types(self) -> set[str]:
        return {event.type for _, event in self.events}


class Scenario:
    def __init__(
        self, cluster: Endpoints, say: Callable[[str], None] = print, tiers: int = 1
    ) -> None:
        self.cluster = cluster
        self.tiers = tiers
        self.ns = cluster.namespace
        self.say = say
        self.producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap, enable_idempotence=True, acks="all"
        )
        self.http = httpx.AsyncClient(timeout=10)
        self.traces: dict[str, str] = {}  # "<ce_type>:<order or visitor id>" → trace id

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.cluster.ports[service]}{path}"

    def token(self, sub: str, role: str = "distributor") -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.cluster.jwt_secret, sub, role)}"}

    async def publish(self, ce_type: str, data: dict[str, Any], at: datetime) -> None:
        """Publish as the mall would, each event with its own W3C trace (`self.traces`)."""
        trace = uuid.uuid4().hex
        self.traces[f"{ce_type}:{data.get('order_id') or data.get('visitor_id')}"] = trace
        event = make_event(
            ce_type, data, time=at, source="/mall/demo",
            traceparent=f"00-{trace}-{uuid.uuid4().hex[:16]}-01",
        )  # fmt: skip
        value, headers = encode(event)
        key = key_for(ce_type, event.data).encode()
        await self.producer.send_and_wait(
            self.ns + EVENT_TOPIC[ce_type], value=value, key=key, headers=headers
        )

    async def set_clock(self, moment: datetime) -> None:
        self.say(f"⏱  simulated clock → {moment:%Y-%m-%d %H:%M} UTC")
        await self.publish("fx.clock.set", {"now": moment.isoformat()}, moment)
        await self.clock_reached(moment)

    async def clock_reached(self, moment: datetime, timeout_s: float = 60) -> None:
        """Wait until every service's GET /v1/clock reads `moment` or later (the move reached
        each one's clock follower), instead of guessing with a sleep. Services without a
        published port (compose's commission replicas) are not asked."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        behind = [service for service in topics.SERVICES if service in self.cluster.ports]
        while behind:
            readings = [await self._clock_of(service) for service in behind]
            behind = [s for s, now in zip(behind, readings, strict=True) if not now or now < moment]
            if behind and asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the clock move to {moment} did not reach {behind}")
            await asyncio.sleep(0.1 if behind else 0)

    async def _clock_of(self, service: str) -> datetime | None:
        try:
            answer = await self.http.get(self.url(service, "/v1/clock"))
        except httpx.HTTPError:
            return None
        if answer.status_code != 200:
            return None
        return datetime.fromisoformat(answer.json()["now"].replace("Z", "+00:00"))

    async def run(self) -> Outcome:
        await self.producer.start()
        try:
            return await self._run()
        finally:
            await self.producer.stop()
            await self.http.aclose()

    async def apply_and_confirm(self, user: str) -> None:
        for url, who in (
            ("/v1/applications", self.token(user)),
            (f"/v1/applications/{user}/contact-confirmed", self.token("ops-1", "ops")),
        ):
            response = await self.http.post(self.url("qualification", url), headers=who, json={})
            response.raise_for_status()

    async def pay(self, order_id: str, buyer: str, at: datetime, fen: int = 25800) -> None:
        self.say(f"🛒 {buyer} pays {order_id} ({format_cny(fen)}) on {at:%m-%d}")
        lines = [{"line_id": "l-1", "sku": "tea-oolong", "category": "oolong", "quantity": 2,
                  "paid_amount_fen": fen}]  # fmt: skip
        data = {"order_id": order_id, "buyer_id": buyer, "currency": "CNY", "lines": lines}
        await self.publish("mall.order.paid", data, at)

    async def count(self, ce_type: str, expected: int) -> Outcome:
        return await self.wait_for(
            lambda o: sum(e.type == ce_type for _, e in o.events) >= expected
        )

    async def _run(self) -> Outcome:
        await self.set_clock(T0)
        self.say(f"📝 {SHARER} and {FAILING} apply; ops confirms their WeChat contact")
        await self.apply_and_confirm(SHARER)
        await self.apply_and_confirm(FAILING)
        await self.count("fx.distributor.assessment_started", 2)

        self.say(f"🔗 {SHARER} and {FAILING} share teas; {CUSTOMER}, {LAPSING} and {OTHER} visit")
        for share, sharer in (("s-1", SHARER), ("s-2", FAILING)):
            data = {"share_id": share, "sharer_id": sharer, "product_sku": "tea-oolong"}
            await self.publish("mall.share.created", data, T0)
        visits = [("s-1", SHARER, CUSTOMER), ("s-1", SHARER, LAPSING), ("s-2", FAILING, OTHER)]
        visits += [("s-1", SHARER, RECRUIT)] if self.tiers == 2 else []
        for minutes, (share, sharer, visitor) in enumerate(visits, 1):
            data = {"share_id": share, "sharer_id": sharer, "visitor_id": visitor}
            await self.publish("mall.share.visited", data, T0 + timedelta(minutes=minutes))
        await self.count("fx.binding.created", 3)

        for n in (1, 2, 3):
            await self.pay(f"o-{n}", CUSTOMER, T0 + timedelta(days=n))
        await self.pay("o-4", OTHER, T0 + timedelta(days=2), fen=19800)
        await self.wait_for(lambda o: "fx.distributor.qualified" in o.types())
        await self.count("fx.commission.accrued", 4)
        if self.tiers == 2:
            await self.second_tier()

        self.say(f"📦 {CUSTOMER} confirms receipt of o-1..o-3 on 03-07")
        for n in (1, 2, 3):
            data = {"order_id": f"o-{n}", "buyer_id": CUSTOMER}
            await self.publish("mall.order.completed", data, T0 + timedelta(days=5))
        await self.count("fx.order.completed", 3)
        await asyncio.sleep(1)  # the commission service books the completions
        await self.set_clock(T0 + timedelta(days=13))
        await self.count("fx.commission.settled", 3)
        await self.balance()

        self.say(f"🏧 {SHARER} withdraws {format_cny(WITHDRAWAL)} to Alipay")
        response = await self.http.post(
            self.url("payout", "/v1/withdrawals"),
            headers=self.token(SHARER) | {"Idempotency-Key": "demo-withdrawal-1"},
            json={"amount_fen": WITHDRAWAL, "method": "alipay", "account": "13800138000"},
        )
        response.raise_for_status()
        await self.count("fx.withdrawal.approved", 1)

        self.say(f"↩️  {CUSTOMER} returns o-3 on 03-16, after its commission settled")
        refund = {"order_id": "o-3", "buyer_id": CUSTOMER, "refund_id": "r-1",
                  "lines": [{"line_id": "l-1", "refund_amount_fen": 25800}]}  # fmt: skip
        await self.publish("mall.order.refunded", refund, T0 + timedelta(days=14))
        await self.count("fx.commission.reversed", 1)

        await self.set_clock(T0 + timedelta(days=31))
        await self.wait_for(lambda o: "fx.distributor.assessment_failed" in o.types())
        await self.count("fx.commission.voided", 1)
        await self.set_clock(T0 + timedelta(days=200))
        outcome = await self.count("fx.binding.released", 3)
        outcome.balance = await self.balance()
        outcome.team = await self.team() if self.tiers == 2 else []
        return outcome

    async def second_tier(self) -> None:
        """FX_COMMISSION_TIERS=2: u-lin's customer c-zhou applies (u-lin is recorded as the
        recruiter), qualifies on three own orders, and each earns u-lin a tier-2 line."""
        await self.set_clock(T0 + timedelta(days=3, hours=1))
        self.say(f"👥 {RECRUIT}, bound to {SHARER}, applies: {SHARER} is the recruiter")
        await self.apply_and_confirm(RECRUIT)
        await self.count("fx.recruiter.recorded", 1)
        # c-zhou shares too; the binding of its visitor also tells that referral-binding has
        # read c-zhou's assessment start, so c-zhou's own orders are c-zhou's (basis self).
        at = T0 + timedelta(days=3, minutes=90)
        await self.publish("mall.share.created", {"share_id": "s-3", "sharer_id": RECRUIT}, at)
        visit = {"share_id": "s-3", "sharer_id": RECRUIT, "visitor_id": "c-sun"}
        await self.publish("mall.share.visited", visit, at)
        await self.count("fx.binding.created", 5)
        for n in (1, 2, 3):
            await self.pay(f"o-z{n}", RECRUIT, T0 + timedelta(days=3, hours=1 + n), fen=25800)
        await self.count("fx.commission.accrued", 10)  # 4 + 3 own lines + 3 tier-2 lines
        await self.wait_for(
            lambda o: sum(e.type == "fx.distributor.qualified" for _, e in o.events) >= 2
        )
        self.say(f"📦 {RECRUIT} confirms receipt of o-z1..o-z3 on 03-07")
        for n in (1, 2, 3):
            data = {"order_id": f"o-z{n}", "buyer_id": RECRUIT}
            await self.publish("mall.order.completed", data, T0 + timedelta(days=5))
        await self.count("fx.order.completed", 3)

    async def team(self) -> list[dict[str, Any]]:
        response = await self.http.get(
            self.url("commission", f"/v1/distributors/{SHARER}/team"), headers=self.token(SHARER)
        )
        response.raise_for_status()
        return list(response.json()["items"])

    async def balance(self) -> dict[str, int]:
        for _ in range(100):
            response = await self.http.get(
                self.url("payout", f"/v1/distributors/{SHARER}/balance"), headers=self.token(SHARER)
            )
            if response.status_code == 200 and response.json().get("available_fen") is not None:
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
    print("\n" + "\n".join(report_lines(outcome)))


def report_lines(outcome: Outcome) -> list[str]:
    """What each distributor earned and why, and what became of each binding."""
    data = [(e.type.removeprefix("fx."), e.time, e.data.model_dump()) for _, e in outcome.events]
    lines = ["What each distributor earned, and why:"]
    for user in sorted({d["user_id"] for t, _, d in data if t.startswith("distributor.")}):
        status = [t.split(".")[1] for t, _, d in data
                  if t.startswith("distributor.") and d["user_id"] == user][-1]  # fmt: skip
        lines.append(f"  {user}: {status}")
        orders: dict[str, list[str]] = {}
        for ce_type, at, d in data:
            if ce_type.startswith("commission.") and d["distributor_id"] == user:
                step = ce_type.split(".")[1]
                amount = (
                    f" {format_cny(d['amount_fen'])}" if d.get("amount_fen") is not None else ""
                )
                line = d["order_id"]
                if d.get("tier") == 2:
                    line += f" (tier 2, {d['source_distributor_id']}'s order)"
                orders.setdefault(line, []).append(f"{step}{amount} ({at:%m-%d})")
        for order_id, steps in sorted(orders.items()):
            lines.append(f"    {order_id}: " + " → ".join(steps))
    lines.append("Bindings (protection 180 days, extended by every order):")
    for ce_type, at, d in data:
        if ce_type != "binding.created":
            continue
        of_binding = [(t, a, e) for t, a, e in data if e.get("binding_id") == d["binding_id"]]
        extended = sum(t == "binding.extended" for t, _, _ in of_binding)
        released = [(a, e["reason"]) for t, a, e in of_binding if t == "binding.released"]
        end = f"released {released[0][0]:%Y-%m-%d} ({released[0][1]})" if released else "active"
        lines.append(
            f"  {d['customer_id']} → {d['distributor_id']}: bound {at:%m-%d}, "
            f"extended {extended}×, {end}"
        )
    for member in outcome.team:
        tier2 = {k: format_cny(v) for k, v in member["tier2"].items() if v}
        lines.append(
            f"{SHARER}'s team: {member['distributor_id']} ({member['status']}, "
            f"{member['orders']} orders) brought tier-2 commission {tier2 or 'none'}"
        )
    balance = {k: format_cny(v) for k, v in outcome.balance.items() if k.endswith("_fen")}
    lines.append(
        f"{SHARER}'s balance: available {balance['available_fen']}, "
        f"on hold {balance['on_hold_fen']}, paid out {balance['paid_out_fen']}"
    )
    return lines


async def main(keep: bool = False) -> int:
    """The scenario; with `keep` (`make demo KEEP=1`) the cluster and the console stay up."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    namespace = f"demo-{uuid.uuid4().hex[:6]}."
    tiers = 2 if os.environ.get("FX_COMMISSION_TIERS", "1").strip() == "2" else 1
    env = {"FX_CLOCK": "simulated", "FX_LOG_LEVEL": "WARNING"}
    if tiers == 2:  # the demo's tier-2 rate, unless one is configured: 5 %
        env["FX_TIER2_DEFAULT_RATE_BPS"] = os.environ.get("FX_TIER2_DEFAULT_RATE_BPS", "500")
    with tempfile.TemporaryDirectory(prefix="fx-demo-") as tmp:
        cluster = Cluster(bootstrap, Path(tmp), namespace=namespace, extra_env=env)
        print(f"Starting the four services (topics prefixed {namespace!r}, simulated clock)…")
        cluster.start_all()
        try:
            print_report(await Scenario(cluster, tiers=tiers).run())
            if keep:
                await stay_up(cluster)
        finally:
            cluster.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(keep="--keep" in sys.argv[1:])))
