"""Commission as a real process on the real broker, with the simulated clock.

1. Escrow and its outcomes, in event-time order: commission accrues held while the
   distributor is assessed, is released when they qualify and voided when another fails;
   a completed order settles only once the clock passes the 7-day hold; a refund after
   settlement is clawed back; a record violating the contract is dead-lettered. A replay
   from offset 0 into a fresh store reproduces the same outbox, event for event.
2. Arrival order and the plan: a plan version created over HTTP prices the orders paid
   from its effective time (each commission records the version); a refund and a
   completion arriving before their attribution are kept and applied when it arrives. A
   replay (plan versions copied first: they come from HTTP, not from a topic) rebuilds the
   same ledger although it reads the facts in event-time order, not in arrival order.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlmodel import Session, col, select

from commission import app as commission_app
from commission import store
from commission.domain import commission_id_for
from demo.cluster import Cluster
from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import ATTRIBUTIONS, CLOCK, COMMISSIONS, QUALIFICATION, dlq_topic
from fx_common.envelope import Event, decode, encode, make_event
from fx_common.http import issue_token
from fx_common.replay import replay_service
from tests.kafka_helpers import header, publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOLD = timedelta(days=7)
SECRET = "commission-flow-test-secret-of-32-bytes"
LINES = SAMPLES["fx.order.attributed"]["lines"]  # l-1: 25800 fen of oolong ×2; l-2: 3900 fen
# Events caused by consumed records (HTTP commands are not on any topic a replay reads).
OUTBOX = (
    "SELECT ce_id, topic, key, value FROM fx_outbox"
    " WHERE cause_id IN (SELECT ce_id FROM fx_inbox) ORDER BY ce_id"
)


def event(ce_type: str, at: datetime, **data: Any) -> Event:
    source = "/fx/qualification" if ce_type.startswith("fx.distributor") else "/fx/referral-binding"
    return make_event(ce_type, {**SAMPLES[ce_type], **data}, time=at, source=source)


def attributed(order_id: str, distributor: str, paid_at: datetime, lines: Any = LINES) -> Event:
    return event(
        "fx.order.attributed", paid_at, order_id=order_id, distributor_id=distributor,
        paid_at=paid_at.isoformat(), lines=lines,
    )  # fmt: skip


def clock(now: datetime) -> Event:
    return make_event("fx.clock.set", {"now": now.isoformat()}, time=now, source="/fxctl")


def authorised(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db.normalise_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def ledger(url: str) -> list[dict[str, Any]]:
    """Every commission as stored (types processed, so SQLite and Postgres compare)."""
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            query = select(store.CommissionRecord).order_by(
                col(store.CommissionRecord.commission_id)
            )
            return [row.model_dump() for row in session.exec(query)]
    finally:
        engine.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def processed(url: str, *events: Event) -> None:
    """The service applied these events (their ids are in its inbox)."""
    ids = ", ".join(f"'{e.id}'" for e in events)

    async def check() -> bool:
        found = await asyncio.to_thread(
            rows, url, f"SELECT ce_id FROM fx_inbox WHERE ce_id IN ({ids})"
        )
        return len(found) == len(events)

    await eventually(check, f"{len(events)} events to be processed")


async def commission_events(bootstrap: str, namespace: str, expect: int) -> list[Event]:
    records = await read_all(bootstrap, namespace + COMMISSIONS, expect=expect)
    assert len(records) == expect, [decode(r.value, r.headers).type for r in records]
    events = [decode(r.value, r.headers) for r in records]
    return sorted(events, key=lambda e: (e.time, data(e).order_id, data(e).line_id))


def data(event: Event) -> Any:
    """The commission event's data (any commission event type)."""
    return event.data


def summary(events: list[Event]) -> list[tuple[str, str, str, int | None]]:
    """(kind, order, line, amount) in event-time order."""
    return [
        (
            e.type.removeprefix("fx.commission."),
            data(e).order_id,
            data(e).line_id,
            data(e).amount_fen,
        )
        for e in events
    ]


def commission_cluster(bootstrap: str, workdir: Path, namespace: str, url: str) -> Cluster:
    return Cluster(
        bootstrap,
        workdir,
        namespace=namespace,
        jwt_secret=SECRET,
        extra_env={"FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat()},
        database_urls={"commission": url},
    )


def stopped_cleanly(cluster: Cluster) -> None:
    codes = cluster.stop_all()
    # SIGTERM drains and exits 0 (fx_common.http.serve).
    assert set(codes.values()) == {0}, f"unexpected exit: {codes}"
    assert "stopped cleanly" in cluster.log("commission").read_text()


async def test_escrow_release_void_settlement_after_the_hold_clawback_and_replay(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    namespace = f"commission-{unique}."
    qualification, attributions = namespace + QUALIFICATION, namespace + ATTRIBUTIONS
    candidate, failing = f"d-{unique}", f"f-{unique}"
    cluster = commission_cluster(bootstrap, tmp_path, namespace, store_url)
    cluster.start("commission")
    try:
        cluster.wait_ready("commission")
        # Each step waits for the previous one, so arrival order is event-time order and the
        # replay (which reads in event-time order) must produce the very same events.
        started = [
            event("fx.distributor.assessment_started", T0 - 5 * DAY, user_id=user)
            for user in (candidate, failing)
        ]
        await publish(bootstrap, qualification, started)
        await processed(store_url, *started)
        orders = [
            attributed("o-1", candidate, T0),
            attributed("o-2", failing, T0 + timedelta(minutes=1), lines=LINES[:1]),
        ]
        await publish(bootstrap, attributions, orders)
        held = await commission_events(bootstrap, namespace, 3)
        assert summary(held) == [
            ("accrued", "o-1", "l-1", 2580), ("accrued", "o-1", "l-2", 390),
            ("accrued", "o-2", "l-1", 2580),
        ]  # fmt: skip
        assert {data(e).status for e in held} == {"held"}

        outcomes = [
            event("fx.distributor.qualified", T0 + DAY, user_id=candidate, order_ids=["o-1"]),
            event("fx.distributor.assessment_failed", T0 + DAY, user_id=failing),
        ]
        await publish(bootstrap, qualification, outcomes)
        decided = await commission_events(bootstrap, namespace, 6)
        assert sorted(summary(decided[3:])) == [
            ("released", "o-1", "l-1", 2580), ("released", "o-1", "l-2", 390),
            ("voided", "o-2", "l-1", 2580),
        ]  # fmt: skip

        completed = event("fx.order.completed", T0 + 2 * DAY, distributor_id=candidate)
        await publish(bootstrap, attributions, [completed])
        await processed(store_url, completed)
        almost = clock(T0 + 2 * DAY + HOLD - timedelta(seconds=1))
        await publish(bootstrap, namespace + CLOCK, [almost])
        await processed(store_url, almost)
        assert rows(store_url, "SELECT count(*) FROM fx_outbox WHERE ce_type LIKE '%settled'") == [
            (0,)
        ]
        await publish(bootstrap, namespace + CLOCK, [clock(T0 + 2 * DAY + HOLD)])
        settled = await commission_events(bootstrap, namespace, 8)
        assert summary(settled[6:]) == [
            ("settled", "o-1", "l-1", 2580), ("settled", "o-1", "l-2", 390),
        ]  # fmt: skip
        assert {e.time for e in settled[6:]} == {T0 + 2 * DAY + HOLD}

        refund = event(
            "fx.order.refunded", T0 + 10 * DAY, distributor_id=candidate,
            lines=[{"line_id": "l-1", "refund_amount_fen": 12900}],
        )  # fmt: skip
        bad_value, bad_headers = encode(event("fx.order.refunded", T0 + 10 * DAY, refund_id="r-x"))
        value = json.loads(bad_value)
        value["lines"][0]["refund_amount_fen"] = -12900
        negative = (candidate.encode(), json.dumps(value).encode(), bad_headers)
        await publish(bootstrap, attributions, [refund], raw=[negative])
        everything = await commission_events(bootstrap, namespace, 9)
        assert summary(everything[8:]) == [("reversed", "o-1", "l-1", 1290)]
        assert data(everything[8]).refund_id == "r-1"
        [letter] = await read_all(bootstrap, namespace + dlq_topic("commission"), expect=1)
        assert header(letter, "fx_error_type") == "contract_violation"

        # Every fen accounted, per line: accrued − voided − reversed = what is kept.
        assert {data(e).plan_version for e in everything} == {0}
        assert {e.source for e in everything} == {"/fx/commission"}
        keys = {r.key for r in await read_all(bootstrap, namespace + COMMISSIONS, expect=9)}
        assert keys == {candidate.encode(), failing.encode()}
        kept = {(c["order_id"], c["line_id"]): c for c in ledger(store_url)}
        assert {k: (c["status"], c["amount_fen"]) for k, c in kept.items()} == {
            ("o-1", "l-1"): ("settled", 1290),
            ("o-1", "l-2"): ("settled", 390),
            ("o-2", "l-1"): ("voided", 0),
        }
        for (order_id, line_id), c in kept.items():

            def total(kind: str, o: str = order_id, line: str = line_id) -> int:
                return sum(
                    data(e).amount_fen
                    for e in everything
                    if e.type == f"fx.commission.{kind}"
                    and (data(e).order_id, data(e).line_id) == (o, line)
                )

            assert total("accrued") - total("voided") - total("reversed") == c["amount_fen"]

        base = f"http://127.0.0.1:{cluster.ports['commission']}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            commission_id = commission_id_for("o-1", "l-1")
            audit = await api.get(
                f"/v1/distributors/{candidate}/commissions/{commission_id}/audit",
                headers=authorised(candidate),
            )
            assert audit.status_code == 200, audit.text
            body = audit.json()
            assert [c["kind"] for c in body["changes"]] == [
                "accrued", "released", "frozen", "settled", "reversed",
            ]  # fmt: skip
            assert {f["position"]["topic"] for f in body["facts"]} == {qualification, attributions}
            totals = await api.get(
                f"/v1/distributors/{candidate}/summary", headers=authorised(candidate)
            )
            assert totals.json()["all_time"] == {
                "held": 0, "pending": 0, "frozen": 0, "settled": 1680, "reversed": 1290,
                "voided": 0,
            }  # fmt: skip
    finally:
        stopped_cleanly(cluster)

    rebuilt = f"sqlite:///{tmp_path / 'replay.db'}"
    result = await replay_service(
        commission_app.SPEC, bootstrap, rebuilt, namespace=namespace, simulated_clock=True
    )
    assert (result.dead_lettered, result.duplicates) == (1, 0)
    live = rows(store_url, OUTBOX)
    assert len(live) == 9
    assert rows(rebuilt, OUTBOX) == live
    assert ledger(rebuilt) == ledger(store_url)


async def test_a_plan_edited_over_http_and_facts_arriving_before_their_order(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    namespace = f"commission-plan-{unique}."
    attributions = namespace + ATTRIBUTIONS
    distributor = f"d-{unique}"
    cluster = commission_cluster(bootstrap, tmp_path, namespace, store_url)
    cluster.start("commission")
    try:
        cluster.wait_ready("commission")
        base = f"http://127.0.0.1:{cluster.ports['commission']}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            ops = authorised("ops-1", "ops")
            plan = {
                "default_rate_bps": 1000,
                "categories": {"oolong": {"rate_bps": 1500}},
                "skus": {"cup-glass": {"fen_per_unit": 100}},
                "effective_from": (T0 + timedelta(hours=1)).isoformat(),
            }
            refused = await api.put("/v1/plan", json=plan, headers=authorised(distributor))
            assert refused.status_code == 403
            invalid = await api.put(
                "/v1/plan", json={**plan, "skus": {"cup-glass": {"rate_bps": 10001}}}, headers=ops
            )
            assert invalid.status_code == 422
            created = await api.put("/v1/plan", json=plan, headers={**ops, "If-Match": '"0"'})
            assert (created.status_code, created.json()["version"]) == (200, 1)
            now = await api.get("/v1/plan", headers=ops)
            assert now.json()["version"] == 0  # the clock is still at T0

            await publish(
                bootstrap,
                namespace + QUALIFICATION,
                [event("fx.distributor.qualified", T0 - DAY, user_id=distributor)],
            )
            # The refund and the completion of o-late arrive before its attribution.
            early = [
                event(
                    "fx.order.refunded", T0 + 3 * DAY, order_id="o-late",
                    distributor_id=distributor, refund_id="r-1",
                    lines=[{"line_id": "l-1", "refund_amount_fen": 12900}],
                ),
                event(
                    "fx.order.completed", T0 + 2 * DAY, order_id="o-late",
                    distributor_id=distributor,
                ),
            ]  # fmt: skip
            await publish(bootstrap, attributions, early)
            await processed(store_url, *early)
            assert rows(store_url, "SELECT count(*) FROM cm_commission") == [(0,)]
            await publish(
                bootstrap,
                attributions,
                [
                    attributed("o-early", distributor, T0 + timedelta(minutes=59)),
                    attributed("o-late", distributor, T0 + 2 * timedelta(hours=1)),
                ],
            )
            accrued = await commission_events(bootstrap, namespace, 5)
            versions = {(data(e).order_id, data(e).line_id): data(e).plan_version for e in accrued}
            assert versions == {
                ("o-early", "l-1"): 0, ("o-early", "l-2"): 0,
                ("o-late", "l-1"): 1, ("o-late", "l-2"): 1,
            }  # fmt: skip
            assert sorted(summary(accrued)) == [
                ("accrued", "o-early", "l-1", 2580),  # 10 % (version 0)
                ("accrued", "o-early", "l-2", 390),
                ("accrued", "o-late", "l-1", 3870),  # oolong at 15 % (version 1)
                ("accrued", "o-late", "l-2", 100),  # 100 fen per cup
                ("adjusted", "o-late", "l-1", 1935),  # half of l-1 refunded
            ]
            assert {data(e).status for e in accrued if e.type.endswith("accrued")} == {"pending"}

            await publish(bootstrap, namespace + CLOCK, [clock(T0 + 2 * DAY + HOLD)])
            settled = await commission_events(bootstrap, namespace, 7)
            assert sorted(summary(settled[5:])) == [
                ("settled", "o-late", "l-1", 1935), ("settled", "o-late", "l-2", 100),
            ]  # fmt: skip

            async def version_in_force_is_1() -> bool:
                response = await api.get("/v1/plan", headers=ops)
                return bool(response.json()["version"] == 1)

            await eventually(version_in_force_is_1, "the clock to pass the new version's start")
            history = (await api.get("/v1/plan/versions", headers=ops)).json()
            assert [(v["version"], v["created_by"]) for v in history["versions"]] == [
                (0, None), (1, "ops-1"),
            ]  # fmt: skip
            commission_id = commission_id_for("o-late", "l-1")
            audit = await api.get(
                f"/v1/distributors/{distributor}/commissions/{commission_id}/audit", headers=ops
            )
            body = audit.json()
            assert body["plan"]["categories"] == {
                "oolong": {"rate_bps": 1500, "fen_per_unit": None}
            }
            assert [f["kind"] for f in body["facts"]] == [
                "qualification", "attributed", "completed", "refunded",
            ]  # fmt: skip
    finally:
        stopped_cleanly(cluster)

    # Plan versions come from HTTP: a replay starts from a copy of them (see the README).
    rebuilt = f"sqlite:///{tmp_path / 'replay.db'}"
    live_engine, rebuilt_engine = db.make_engine(store_url), db.make_engine(rebuilt)
    try:
        migrations.upgrade(rebuilt_engine, commission_app.HISTORY)
        assert store.copy_plan_versions(live_engine, rebuilt_engine) == 1
    finally:
        live_engine.dispose()
        rebuilt_engine.dispose()
    await replay_service(
        commission_app.SPEC, bootstrap, rebuilt, namespace=namespace, simulated_clock=True
    )
    # The replay reads in event-time order (the attribution before its refund), the live run
    # in arrival order: the events differ in their causes, the ledger does not.
    assert ledger(rebuilt) == ledger(store_url)
