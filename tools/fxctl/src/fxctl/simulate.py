"""`fxctl simulate`: a realistic tea mall on the upstream topics, for demos and load.

Distributors share products, customers open the shares and buy 1-3 lines of tea; orders
complete a few days later, some are refunded. The story is a pure function of the seed and
the start time, event ids included: re-running the same story publishes the same events,
which the services' inboxes skip.
"""

from __future__ import annotations

import asyncio
import random
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fx_common.contracts.mall_orders import ORDER_COMPLETED, ORDER_PAID, ORDER_REFUNDED
from fx_common.contracts.mall_shares import SHARE_CREATED, SHARE_VISITED
from fx_common.contracts.registry import EVENT_TOPIC
from fx_common.envelope import Event, make_event, rfc3339
from fx_common.http import issue_token
from fx_common.money import format_cny
from fx_common.settings import ServiceSettings
from fxctl.context import Target, run, target
from fxctl.kafka_io import encoded, prepare_topics, producer
from fxctl.output import console, fail
from fxctl.parsing import parse_time

SOURCE = "/mall/simulator"
_ID_NAMESPACE = uuid.UUID("0b7d6c55-2f0e-4d8a-9a53-6c1f3e2a9b11")

# (sku, category, unit price in fen)
CATALOG: tuple[tuple[str, str, int], ...] = (
    ("tea-longjing-250g", "green", 16800),
    ("tea-biluochun-100g", "green", 9800),
    ("tea-tieguanyin-250g", "oolong", 12800),
    ("tea-dahongpao-200g", "oolong", 25800),
    ("tea-puer-raw-357g", "puer", 19800),
    ("tea-puer-ripe-100g", "puer", 6800),
    ("tea-dianhong-200g", "black", 8800),
    ("tea-jinjunmei-100g", "black", 23800),
    ("tea-baihao-yinzhen-100g", "white", 29800),
    ("teaware-gaiwan", "teaware", 5800),
)
CHANNELS = ("wechat_chat", "moments", "poster", "mini_program")


@dataclass(frozen=True)
class MallConfig:
    distributors: int
    customers: int
    orders: int
    start: datetime
    seed: int = 0
    refund_ratio: float = 0.1
    days: float = 14.0

    @property
    def prefix(self) -> str:
        return f"sim{self.seed}"

    def distributor(self, n: int) -> str:
        return f"{self.prefix}-d{n}"


@dataclass(frozen=True)
class Planned:
    at: datetime
    type: str
    data: dict[str, Any]
    id: str

    @property
    def topic(self) -> str:
        return EVENT_TOPIC[self.type]

    def event(self) -> Event:
        return make_event(self.type, self.data, time=self.at, source=SOURCE, event_id=self.id)


class _Story:
    def __init__(self, config: MallConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.end = config.start + timedelta(days=config.days)
        self.events: list[tuple[datetime, int, str, dict[str, Any]]] = []

    def add(self, at: datetime, ce_type: str, data: dict[str, Any]) -> None:
        self.events.append((at, len(self.events), ce_type, data))

    def between(self, earliest: datetime, latest: datetime) -> datetime:
        span = max((latest - earliest).total_seconds(), 0.0)
        return earliest + timedelta(seconds=round(self.rng.uniform(0, span)))

    def shares(self) -> list[tuple[str, str, datetime]]:
        config, made = self.config, []
        early = config.start + (self.end - config.start) * 0.3
        for d in range(1, config.distributors + 1):
            sharer = config.distributor(d)
            for k in range(1, self.rng.randint(1, 3) + 1):
                share_id, at = f"{config.prefix}-s{d}-{k}", self.between(config.start, early)
                sku = self.rng.choice(CATALOG)[0]
                channel = self.rng.choice(CHANNELS)
                self.add(
                    at,
                    SHARE_CREATED,
                    {"share_id": share_id, "sharer_id": sharer, "product_sku": sku}
                    | {"channel": channel},
                )
                made.append((share_id, sharer, at))
        return made

    def visits(self, shares: list[tuple[str, str, datetime]]) -> dict[str, tuple[str, datetime]]:
        visited: dict[str, tuple[str, datetime]] = {}
        for c in range(1, self.config.customers + 1):
            if not shares or self.rng.random() >= 0.85:
                continue
            customer = f"{self.config.prefix}-c{c}"
            share_id, sharer, shared_at = self.rng.choice(shares)
            at = shared_at + timedelta(minutes=self.rng.randint(1, 48 * 60))
            self.add(
                at,
                SHARE_VISITED,
                {"share_id": share_id, "sharer_id": sharer, "visitor_id": customer},
            )
            visited[customer] = (share_id, at)
        return visited

    def orders(self, visited: dict[str, tuple[str, datetime]]) -> None:
        config, rng = self.config, self.rng
        for n in range(1, config.orders + 1):
            buyer = f"{config.prefix}-c{rng.randint(1, max(config.customers, 1))}"
            share_id, visited_at = visited.get(buyer, (None, config.start))
            paid_at = self.between(visited_at + timedelta(minutes=5), self.end)
            order_id = f"{config.prefix}-o{n}"
            lines: list[dict[str, Any]] = []
            for i, (sku, category, price) in enumerate(rng.sample(CATALOG, rng.randint(1, 3))):
                quantity = rng.randint(1, 3)
                lines.append(
                    {"line_id": f"l-{i + 1}", "sku": sku, "category": category}
                    | {"quantity": quantity, "paid_amount_fen": price * quantity}
                )
            paid: dict[str, Any] = {"order_id": order_id, "buyer_id": buyer, "currency": "CNY"}
            if share_id is not None and rng.random() < 0.3:
                paid["share_id"] = share_id
            paid |= {"lines": lines, "shipping_fen": rng.choice((0, 0, 1000))}
            self.add(paid_at, ORDER_PAID, paid)
            ids = {"order_id": order_id, "buyer_id": buyer}
            if rng.random() < config.refund_ratio:
                line = rng.choice(lines)
                amount = line["paid_amount_fen"] // rng.choice((1, 2))
                refunded_at = paid_at + timedelta(hours=rng.randint(2, 120))
                refund: dict[str, Any] = {"refund_id": f"{config.prefix}-r{n}"}
                refund["lines"] = [{"line_id": line["line_id"], "refund_amount_fen": amount}]
                self.add(refunded_at, ORDER_REFUNDED, ids | refund)
                if len(lines) == 1 and amount == line["paid_amount_fen"]:
                    continue  # fully refunded: never completed
                paid_at = refunded_at
            self.add(paid_at + timedelta(hours=rng.randint(72, 240)), ORDER_COMPLETED, ids)


def generate(config: MallConfig) -> list[Planned]:
    """The whole story in event-time order; the same config always gives the same events."""
    story = _Story(config)
    story.orders(story.visits(story.shares()))
    ordered = sorted(story.events, key=lambda e: (e[0], e[1]))
    return [
        Planned(at, ce_type, data, str(uuid.uuid5(_ID_NAMESPACE, f"{config.prefix}|{seq}")))
        for at, seq, ce_type, data in ordered
    ]


def _post(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode()


def make_candidates(base_url: str, secret: str, users: list[str]) -> None:
    """Each distributor applies, then ops confirms its contact: it becomes a candidate.

    409 (already applied or confirmed) is fine: a simulation may be re-run.
    """
    ops = issue_token(secret, "ops-fxctl-simulator", "ops")
    for user in users:
        for path, token in (
            ("/v1/applications", issue_token(secret, user, "distributor")),
            (f"/v1/applications/{user}/contact-confirmed", ops),
        ):
            status, body = _post(base_url.rstrip("/") + path, token)
            if status not in (200, 201, 409):
                raise RuntimeError(f"POST {path} for {user}: {status} {body}")


async def publish_story(
    where: Target, planned: list[Planned], rate: float, advance: Callable[[], None]
) -> None:
    await prepare_topics(where)
    async with producer(where.bootstrap) as kafka:
        sends = []
        started = time.monotonic()
        for n, item in enumerate(planned):
            if rate > 0:
                delay = started + n / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            key, value, headers = encoded(item.event())
            sends.append(
                await kafka.send(where.topic(item.topic), value=value, key=key, headers=headers)
            )
            advance()
        await asyncio.gather(*sends)


def print_summary(config: MallConfig, planned: list[Planned], candidates: bool) -> None:
    counts = Counter(item.type for item in planned)
    paid = sum(
        line["paid_amount_fen"]
        for item in planned
        if item.type == ORDER_PAID
        for line in item.data["lines"]
    )
    table = Table(title=f"simulated mall (seed {config.seed})")
    table.add_column("what")
    table.add_column("count", justify="right")
    for ce_type in (SHARE_CREATED, SHARE_VISITED, ORDER_PAID, ORDER_COMPLETED, ORDER_REFUNDED):
        table.add_row(ce_type, str(counts[ce_type]))
    table.add_row("events published", str(len(planned)), style="bold")
    out = console()
    out.print(table)
    window = f"{rfc3339(config.start)} … {rfc3339(planned[-1].at)}" if planned else "-"
    out.print(
        f"{config.distributors} distributor(s) ({config.prefix}-d1…), {config.customers} "
        f"customer(s), {counts[ORDER_PAID]} order(s) worth {format_cny(paid)}; "
        f"event time {window}",
        soft_wrap=True,
    )
    if candidates:
        out.print(f"{config.distributors} distributor(s) applied and confirmed as candidates")


def simulate(
    ctx: typer.Context,
    distributors: Annotated[int, typer.Option(min=1, help="Distributors who share.")] = 5,
    customers: Annotated[int, typer.Option(min=1, help="Customers who visit and buy.")] = 50,
    orders: Annotated[int, typer.Option(min=0, help="Orders paid.")] = 100,
    rate: Annotated[float, typer.Option(min=0, help="Events per second (0: flat out).")] = 50.0,
    refund_ratio: Annotated[
        float, typer.Option(min=0, max=1, help="Share of orders refunded.")
    ] = 0.1,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: random; printed).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Event time of the story's start, RFC 3339 (default: now).")
    ] = None,
    days: Annotated[float, typer.Option(min=0.01, help="Length of the story in days.")] = 14.0,
    qualification_url: Annotated[
        str | None,
        typer.Option(help="qualification's base URL: make the distributors candidates first."),
    ] = None,
    jwt_secret: Annotated[
        str, typer.Option(envvar="FX_JWT_SECRET", help="Secret to sign the HTTP tokens.")
    ] = ServiceSettings.model_fields["jwt_secret"].default,
) -> None:
    """Generate a realistic mall on mall.shares.v1 and mall.orders.v1 at a given rate."""
    where = target(ctx)
    try:
        begin = parse_time(start) if start else datetime.now(UTC).replace(second=0, microsecond=0)
    except ValueError as exc:
        fail(str(exc))
    config = MallConfig(
        distributors=distributors,
        customers=customers,
        orders=orders,
        start=begin,
        seed=seed if seed is not None else random.SystemRandom().randrange(1_000_000),
        refund_ratio=refund_ratio,
        days=days,
    )
    planned = generate(config)
    if qualification_url:
        users = [config.distributor(n) for n in range(1, distributors + 1)]
        try:
            make_candidates(qualification_url, jwt_secret, users)
        except (RuntimeError, OSError) as exc:
            fail(f"qualification API: {exc}", code=1)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console()) as progress:
        task = progress.add_task("publishing", total=len(planned))
        run(where, publish_story(where, planned, rate, lambda: progress.advance(task)))
    print_summary(config, planned, candidates=bool(qualification_url))
    console().print(
        f"the same story again: --seed {config.seed} --start {rfc3339(config.start)}", style="dim"
    )
