"""Leaderboards on the real Redis: fed by the services' batches after commit, counted once
under redelivery, rebuilt from the stores when flushed; then through the real broker.

The first tests drive each service's batch processor (its real spec: handlers, store, the
feed) on SQLite and Postgres against the shared Redis, each in a namespace of its own; the
last one runs commission as a process on the broker with the simulated clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from aiokafka.structs import ConsumerRecord, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from commission.app import CommissionSettings
from commission.app import spec_for as commission_spec
from demo.cluster import Cluster
from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import ATTRIBUTIONS, CLOCK, MALL_SHARES, QUALIFICATION
from fx_common.envelope import Event, make_event
from fx_common.http import issue_token
from fx_common.leaderboard import Item, Period
from fx_common.leaderboard_redis import Leaderboard, snapshot
from fx_common.leaderboard_service import BoardWiring, check_once
from fx_common.replay import replay
from fx_common.runtime import ServiceSpec, processor_for
from fx_common.testing import record
from fxctl.cli import app as fxctl
from referral_binding.app import ReferralBindingSettings
from referral_binding.app import spec_for as referral_spec
from tests.kafka_helpers import publish

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday, 18:00 in Shanghai
DAY = timedelta(days=1)
HOLD = timedelta(days=7)
LINES = SAMPLES["fx.order.attributed"]["lines"]  # l-1: 2580 fen of commission, l-2: 390


def flush(namespace: str) -> int:
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{namespace}lb:*", count=1000))
    if keys:
        client.delete(*keys)
    return len(keys)


class Service:
    """A service's batch processor on a store, its board live on the shared Redis."""

    def __init__(self, spec: ServiceSpec, store_url: str) -> None:
        self.engine = db.make_engine(store_url)
        assert spec.migrations is not None
        migrations.upgrade(self.engine, spec.migrations)
        self.processor = processor_for(spec, self.engine)
        self.wiring: BoardWiring = spec.extra["leaderboard"]
        self.board: Leaderboard = self.wiring.board
        self.board.live = True
        # What the running service's watch does first: the board was never built.
        assert check_once(self.wiring, self.engine, lambda: T0) == "empty"

    def process(self, records: Sequence[ConsumerRecord[bytes, bytes]]) -> Any:
        return self.processor.process(list(records))

    def boards(self, now: datetime) -> dict[Period, list[tuple[str, int]]]:
        return {p: self.board.read(p, now, 100).top for p in Period}


@pytest.fixture
def namespace(unique: str) -> Iterator[str]:
    name = f"lb-{unique}."
    yield name
    flush(name)


def event(ce_type: str, at: datetime, event_id: str | None = None, **data: Any) -> Any:
    return record(ce_type, {**SAMPLES[ce_type], **data}, time=at, event_id=event_id)


def settles(distributor: str, order: str, paid_at: datetime) -> list[Any]:
    """Attributed, qualified, completed a day later: settles a hold after that."""
    return [
        event("fx.distributor.qualified", paid_at - DAY, user_id=distributor),
        event(
            "fx.order.attributed", paid_at, order_id=order, distributor_id=distributor,
            paid_at=paid_at.isoformat(), lines=LINES,
        ),
        event("fx.order.completed", paid_at + DAY, order_id=order, distributor_id=distributor),
    ]  # fmt: skip


def clock(now: datetime) -> Any:
    return record("fx.clock.set", {"now": now.isoformat()}, time=now, event_id=f"clock:{now}")


def test_earned_board_counts_each_settlement_once_and_a_flush_is_rebuilt_the_same(
    store_url: str, namespace: str, tmp_path: Path
) -> None:
    settings = CommissionSettings(
        database_url=store_url, redis_url=REDIS_URL, topic_namespace=namespace
    )
    service = Service(commission_spec(settings), store_url)
    batch = [
        *settles("d-a", "o-1", T0),
        *settles("d-b", "o-2", T0 + timedelta(hours=6)),  # paid at midnight in Shanghai
        *settles("d-c", "o-3", T0 - 20 * DAY),  # settled last month
    ]
    service.process(batch)
    # d-a settles on Tuesday 10 March at 18:00 in Shanghai, d-b at midnight after it.
    settle_day = T0 + DAY + HOLD + timedelta(hours=6, minutes=30)
    service.process([clock(settle_day)])
    boards = service.boards(settle_day)
    assert boards[Period.ALL] == [("d-a", 2970), ("d-b", 2970), ("d-c", 2970)]
    assert boards[Period.DAY] == [("d-b", 2970)]
    assert boards[Period.WEEK] == boards[Period.MONTH] == [("d-a", 2970), ("d-b", 2970)]
    next_monday = service.boards(T0 + 14 * DAY)
    assert next_monday[Period.WEEK] == [] and len(next_monday[Period.MONTH]) == 2
    later = settle_day + DAY

    # Redelivered, the batch is skipped by the inbox; a retried push is counted once.
    outcome = service.process([*batch, clock(settle_day)])
    assert outcome.applied == 0 and outcome.duplicates == len(batch) + 1
    with snapshot(service.engine) as connection:
        count = service.wiring.source.items(connection)
    assert count == 6 and service.board.board_items() == 6
    again = [Item(f"x-{n}", "d-a", settle_day, 2970) for n in range(2)]
    assert service.board.push(again) == 2 and service.board.push(again) == 0
    assert service.board.status(service.engine, service.wiring.source).state == "ahead"
    assert check_once(service.wiring, service.engine, lambda: later) == "ahead"

    # A clawback after settlement lowers the period the commission settled in.
    refund = event(
        "fx.order.refunded", later, order_id="o-2", distributor_id="d-b",
        lines=[{"line_id": "l-1", "refund_amount_fen": 12900}],
    )  # fmt: skip
    service.process([refund])
    expected = service.boards(later)
    assert expected[Period.ALL] == [("d-a", 2970), ("d-c", 2970), ("d-b", 1680)]
    assert expected[Period.WEEK] == [("d-a", 2970), ("d-b", 1680)]
    assert expected[Period.DAY] == []
    assert service.board.status(service.engine, service.wiring.source).state == "ok"

    assert flush(namespace) > 0
    assert service.boards(later)[Period.ALL] == []
    assert check_once(service.wiring, service.engine, lambda: later) == "empty"
    assert service.boards(later) == expected
    assert service.board.status(service.engine, service.wiring.source).state == "ok"
    reading = service.board.read(Period.ALL, later, 2, "d-b")
    assert (reading.my_rank, reading.my_score, reading.members) == (3, 1680, 3)

    # A replay (fxctl replay: the spec in another process, no watch) builds another store
    # and feeds nothing: the board is the same.
    records = [*batch, clock(settle_day), refund]
    merged: dict[TopicPartition, list[Any]] = {}
    for r in records:
        merged.setdefault(TopicPartition(r.topic, 0), []).append(r)
    replayed = replay(commission_spec(settings), f"sqlite:///{tmp_path / 'replay.db'}", merged)
    assert replayed.applied == len(records)
    assert service.boards(later) == expected and service.board.board_items() == 7


def test_a_tier2_line_counts_on_the_earned_board_for_the_recruiter_it_is_paid_to(
    tmp_path: Path, namespace: str
) -> None:
    store_url = f"sqlite:///{tmp_path / 'tiers.db'}"
    settings = CommissionSettings(
        database_url=store_url, redis_url=REDIS_URL, topic_namespace=namespace,
        commission_tiers=2, tier2_default_rate_bps=500,
    )  # fmt: skip
    service = Service(commission_spec(settings), store_url)
    recruited = event(
        "fx.recruiter.recorded", T0 - 2 * DAY, distributor_id="d-a", recruiter_id="r-1",
        applied_at=(T0 - 2 * DAY).isoformat(),
    )  # fmt: skip
    qualified = event("fx.distributor.qualified", T0 - 3 * DAY, user_id="r-1")
    service.process([qualified, recruited, *settles("d-a", "o-1", T0)])
    service.process([clock(T0 + DAY + HOLD)])
    # d-a earns 10 % of the lines (2580 + 390), its recruiter 5 % (1290 + 195).
    assert service.boards(T0 + DAY + HOLD)[Period.ALL] == [("d-a", 2970), ("r-1", 1485)]
    flush(namespace)
    assert check_once(service.wiring, service.engine, lambda: T0 + DAY + HOLD) == "empty"
    assert service.boards(T0 + DAY + HOLD)[Period.ALL] == [("d-a", 2970), ("r-1", 1485)]


def test_customers_board_counts_bindings_created_once(store_url: str, namespace: str) -> None:
    settings = ReferralBindingSettings(
        database_url=store_url, redis_url="", topic_namespace=namespace
    )
    settings = settings.model_copy(update={"redis_url": REDIS_URL, "binding_cache_ttl_s": 0})
    service = Service(referral_spec(settings), store_url)
    sharers = {"s-a": "d-a", "s-b": "d-b"}
    batch = [
        event("fx.distributor.qualified", T0 - DAY, user_id=sharer) for sharer in sharers.values()
    ]
    for n, (share, sharer) in enumerate([("s-a", "d-a")] * 3 + [("s-b", "d-b")] * 2):
        batch.append(
            event(
                "mall.share.visited", T0 + timedelta(minutes=n), share_id=share,
                sharer_id=sharer, visitor_id=f"buyer-{n}",
            )
        )  # fmt: skip
    service.process(batch)
    expected = {p: [("d-a", 3), ("d-b", 2)] for p in Period}
    assert service.boards(T0) == expected
    assert service.board.read(Period.DAY, T0 + DAY, 10).top == []  # a new day
    assert service.process(batch).applied == 0
    assert service.boards(T0) == expected
    flush(namespace)
    assert check_once(service.wiring, service.engine, lambda: T0) == "empty"
    assert service.boards(T0) == expected


class Concurrent:
    """A source whose store read lets two pushes in while the rebuild runs: one of a change
    the read holds (counted by the rebuild), one of a change committed after it."""

    def __init__(self, board: Leaderboard, rows: Mapping[str, int]) -> None:
        self.board, self.rows = board, rows

    def recent(self, connection: sa.Connection, since: datetime) -> list[tuple[str, datetime, int]]:
        self.board.push([Item("in-store", "d-a", T0, 100), Item("after", "d-b", T0, 40)])
        return [("d-a", T0, 100)]

    def totals(self, connection: sa.Connection) -> Mapping[str, int]:
        return {"d-a": 100}

    def items(self, connection: sa.Connection) -> int:
        return 1

    def present(self, connection: sa.Connection, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i == "in-store"}


def test_a_rebuild_counts_once_the_changes_pushed_while_it_runs(
    namespace: str, tmp_path: Any
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    board = Leaderboard(REDIS_URL, namespace, "earned", timedelta(hours=8))
    board.push([Item("stale", "d-z", T0, 999)])
    done = board.rebuild(engine, Concurrent(board, {}), T0)
    assert (done.items, done.total, done.pending_applied) == (1, 100, 1)
    assert board.read(Period.ALL, T0, 10).top == [("d-a", 100), ("d-b", 40)]
    assert board.read(Period.DAY, T0, 10).top == [("d-a", 100), ("d-b", 40)]
    assert board.board_items() == 2
    # The stale member is gone; the pushed ids stay counted.
    assert board.push([Item("after", "d-b", T0, 40)]) == 0
    engine.dispose()


# ---------------------------------------------------------------- through the broker

SECRET = "leaderboard-test-secret-of-32-bytes!"


def bearer(sub: str, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


def envelope(ce_type: str, at: datetime, **data: Any) -> Event:
    source = "/fx/qualification" if ce_type.startswith("fx.distributor") else "/fx/referral-binding"
    if ce_type.startswith("mall."):
        source = "/mall"
    return make_event(ce_type, {**SAMPLES[ce_type], **data}, time=at, source=source)


async def board_of(url: str, path: str, who: dict[str, str]) -> Any:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.get(url + path, headers=who)


async def until(url: str, path: str, who: dict[str, str], expected: Any, what: str) -> Any:
    deadline = time.monotonic() + 60
    while True:
        answer = await board_of(url, path, who)
        found = answer.json() if answer.status_code == 200 else answer.text
        if answer.status_code == 200 and expected(found):
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {found}"
        await asyncio.sleep(0.3)


async def consumed(cluster: Cluster, service: str, events: Sequence[Event]) -> None:
    """The service applied these events (their ids are in its inbox)."""
    engine = db.make_engine(cluster.database_url(service))
    inbox = sa.text("SELECT count(*) FROM fx_inbox WHERE ce_id IN :ids").bindparams(
        sa.bindparam("ids", expanding=True)
    )
    deadline = time.monotonic() + 60
    try:
        while True:
            with engine.connect() as connection:
                found = connection.execute(inbox, {"ids": [e.id for e in events]}).scalar_one()
            if found == len(events):
                return
            assert time.monotonic() < deadline, f"{service} did not apply {len(events)} events"
            await asyncio.sleep(0.2)
    finally:
        engine.dispose()


def entries(board: Any) -> list[tuple[int, str, int]]:
    return [(e["rank"], e["distributor_id"], e["score"]) for e in board["entries"]]


async def test_both_boards_through_the_broker_redelivered_flushed_and_rebuilt_by_fxctl(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    namespace = f"lbk-{unique}."
    settle = T0 + DAY + HOLD
    cluster = Cluster(
        bootstrap, tmp_path, namespace=namespace, jwt_secret=SECRET,
        extra_env={
            "FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat(), "REDIS_URL": REDIS_URL,
            "FX_LEADERBOARD_CHECK_S": "1", "FX_BINDING_CACHE_TTL_S": "0",
        },
    )  # fmt: skip
    urls = {s: f"http://127.0.0.1:{cluster.ports[s]}" for s in ("commission", "referral-binding")}
    ops = bearer("ops-1", "ops")
    try:
        for service in urls:
            cluster.start(service)
        for service in urls:
            cluster.wait_ready(service)
        qualified = [
            envelope("fx.distributor.qualified", T0 - DAY, user_id=d) for d in ("d-a", "d-b")
        ]
        attributed = [
            envelope(
                "fx.order.attributed", T0, order_id=f"o-{d}", distributor_id=d,
                paid_at=T0.isoformat(), lines=LINES if d == "d-a" else LINES[:1],
            )
            for d in ("d-a", "d-b")
        ] + [
            envelope("fx.order.completed", T0 + DAY, order_id=f"o-{d}", distributor_id=d)
            for d in ("d-a", "d-b")
        ]  # fmt: skip
        visits = [
            envelope(
                "mall.share.visited", T0 + timedelta(minutes=n), share_id=f"s-{d}",
                sharer_id=d, visitor_id=f"buyer-{n}",
            )
            for n, d in enumerate(["d-b", "d-b", "d-a"])
        ]  # fmt: skip
        # Each step waits for the one it depends on (topics are read independently).
        await publish(bootstrap, namespace + QUALIFICATION, qualified)
        await consumed(cluster, "referral-binding", qualified)
        await consumed(cluster, "commission", qualified)
        await publish(bootstrap, namespace + ATTRIBUTIONS, attributed)
        await publish(bootstrap, namespace + MALL_SHARES, visits)
        await consumed(cluster, "commission", attributed)
        tick = make_event("fx.clock.set", {"now": settle.isoformat()}, time=settle, source="/fxctl")
        await publish(bootstrap, namespace + CLOCK, [tick])

        earned_path = "/v1/leaderboards/earned?period=all"
        customers_path = "/v1/leaderboards/customers?period=month"
        earned = await until(
            urls["commission"], earned_path, ops, lambda b: b["members"] == 2, "settlements"
        )
        assert entries(earned) == [(1, "d-a", 2970), (2, "d-b", 2580)]
        assert earned["unit"] == "fen" and earned["period_id"] == "all"
        customers = await until(
            urls["referral-binding"], customers_path, ops, lambda b: b["members"] == 2, "bindings"
        )
        assert entries(customers) == [(1, "d-b", 2), (2, "d-a", 1)]
        assert customers["period_id"] == "2026-03"  # the clock's now: 10 March

        # The same records again (same ids), then one new visit: only the visit counts.
        marker = envelope(
            "mall.share.visited", T0 + DAY, share_id="s-d-a", sharer_id="d-a", visitor_id="buyer-9"
        )
        await publish(bootstrap, namespace + QUALIFICATION, qualified)
        await publish(bootstrap, namespace + ATTRIBUTIONS, attributed)
        await publish(bootstrap, namespace + MALL_SHARES, [*visits, marker])
        await publish(bootstrap, namespace + CLOCK, [tick])
        customers = await until(
            urls["referral-binding"], customers_path, ops,
            lambda b: entries(b) == [(1, "d-a", 2), (1, "d-b", 2)], "the marker visit",
        )  # fmt: skip
        await asyncio.sleep(1.0)
        assert entries((await board_of(urls["commission"], earned_path, ops)).json()) == [
            (1, "d-a", 2970), (2, "d-b", 2580),
        ]  # fmt: skip

        # A distributor: its own rank, the others masked; nobody else's; bad input is a 422.
        mine = (
            await board_of(
                urls["commission"], "/v1/distributors/d-b/leaderboards/earned?period=all",
                bearer("d-b", "distributor"),
            )
        ).json()  # fmt: skip
        assert (mine["rank"], mine["score"]) == (2, 2580)
        assert [(e["distributor"], e["me"]) for e in mine["top"]] == [
            ("d***a", False),
            ("d***b", True),
        ]
        other = await board_of(
            urls["commission"],
            "/v1/distributors/d-a/leaderboards/earned",
            bearer("d-b", "distributor"),
        )
        assert other.status_code == 403 and other.json()["error"]["code"] == "forbidden"
        bad = await board_of(urls["commission"], "/v1/leaderboards/earned?period=year", ops)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
        refused = await board_of(urls["commission"], earned_path, bearer("d-a", "distributor"))
        assert refused.status_code == 403

        # Flushed: each service's watch finds its board empty and rebuilds it the same.
        assert flush(namespace) > 0
        rebuilt = await until(
            urls["commission"], earned_path, ops, lambda b: b["members"] == 2, "the rebuild"
        )
        assert entries(rebuilt) == entries(earned)
        assert rebuilt["built_at"] is not None
        again = await until(
            urls["referral-binding"], customers_path, ops, lambda b: b["members"] == 2, "rebuild"
        )
        assert entries(again) == entries(customers)

        where = [f"--service={s}={u}" for s, u in urls.items()]
        result = CliRunner().invoke(
            fxctl, ["ops", "--secret", SECRET, *where, "leaderboard-rebuild", "--as-json"]
        )
        assert result.exit_code == 0, result.output
        done = {answer["board"]: answer for answer in json.loads(result.output)}
        assert (done["earned"]["items"], done["earned"]["total"]) == (3, 5550)
        assert (done["customers"]["items"], done["customers"]["total"]) == (4, 4)
        status = (await board_of(urls["commission"], "/v1/leaderboards/earned/status", ops)).json()
        assert (status["state"], status["board_items"], status["store_items"]) == ("ok", 3, 3)
    finally:
        codes = cluster.stop_all()
        flush(namespace)
    assert set(codes.values()) == {0}, codes


class Rows:
    """A store holding exactly these items (as a service's source reads them)."""

    def __init__(self, items: Sequence[Item]) -> None:
        self.items_: dict[str, Item] = {}
        for item in items:
            self.items_.setdefault(item.id, item)  # an id is one change: the first stands

    def recent(self, connection: sa.Connection, since: datetime) -> list[tuple[str, datetime, int]]:
        return [(i.member, i.at, i.delta) for i in self.items_.values() if i.at >= since]

    def totals(self, connection: sa.Connection) -> Mapping[str, int]:
        totals: dict[str, int] = {}
        for item in self.items_.values():
            totals[item.member] = totals.get(item.member, 0) + item.delta
        return totals

    def items(self, connection: sa.Connection) -> int:
        return len(self.items_)

    def present(self, connection: sa.Connection, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.items_}


changes = st.lists(
    st.builds(
        Item,
        id=st.integers(0, 30).map(str),
        member=st.sampled_from(["d-a", "d-b", "d-c", "d-d"]),
        at=st.integers(0, 40 * 24).map(lambda h: T0 - timedelta(days=30) + timedelta(hours=h)),
        delta=st.integers(-2000, 5000),  # a clawback may be pushed before its settlement
    ),
    max_size=40,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=changes, batch=st.integers(1, 7))
def test_the_fed_boards_are_the_boards_a_rebuild_computes(
    items: list[Item], batch: int, tmp_path: Path, unique: str
) -> None:
    """Pushed in batches, some items twice (a redelivery), the boards equal those a rebuild
    computes from a store holding each item once, for every period around now."""
    namespace = f"lbp-{unique}-{uuid.uuid4().hex[:6]}."
    board = Leaderboard(REDIS_URL, namespace, "earned", timedelta(hours=8))
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        stored = Rows(items)
        board.rebuild(engine, Rows([]), T0)
        for start in range(0, len(items), batch):
            board.push(items[start : start + batch])
        board.push(items[: batch * 2])
        now = T0 + timedelta(days=10)
        fed = {p: board.read(p, now, 100).top for p in Period}
        assert board.status(engine, stored).state == "ok"
        board.rebuild(engine, stored, now)
        assert {p: board.read(p, now, 100).top for p in Period} == fed
        client = redis.Redis.from_url(REDIS_URL)
        assert all(client.ttl(key) == -1 for key in client.smembers(board.index))  # no expiry
    finally:
        engine.dispose()
        flush(namespace)


def test_a_batch_commits_when_redis_is_down_and_the_board_is_rebuilt_after(
    tmp_path: Path, namespace: str
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    down = CommissionSettings(
        database_url=store_url, redis_url="redis://127.0.0.1:1/0", topic_namespace=namespace
    )
    spec = commission_spec(down)
    engine = db.make_engine(store_url)
    assert spec.migrations is not None
    migrations.upgrade(engine, spec.migrations)
    spec.extra["leaderboard"].board.live = True
    processor = processor_for(spec, engine)
    processor.process([*settles("d-a", "o-1", T0), clock(T0 + DAY + HOLD)])
    with snapshot(engine) as connection:
        assert spec.extra["leaderboard"].source.items(connection) == 2  # both lines settled
    # Redis back: the service's next check finds the board empty and rebuilds it.
    up = CommissionSettings(database_url=store_url, redis_url=REDIS_URL, topic_namespace=namespace)
    wiring = commission_spec(up).extra["leaderboard"]
    assert check_once(wiring, engine, lambda: T0 + DAY + HOLD) == "empty"
    assert wiring.board.read(Period.ALL, T0, 10).top == [("d-a", 2970)]
    engine.dispose()
