"""Binding modes end to end on the real broker: referral-binding as a process with
FX_BINDING_MODE=permanent or overwrite on a simulated clock. Two distributors share with one
customer, the customer pays, the clock jumps 400 days; what comes out on fx.bindings.v1 and
fx.attributions.v1 is each mode's, the read API agrees, and a replay of the input topics into
an empty store (the same mode) publishes the very same events."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster
from fx_common import db
from fx_common.contracts.topics import (
    ATTRIBUTIONS,
    BINDINGS,
    CLOCK,
    MALL_ORDERS,
    MALL_SHARES,
    QUALIFICATION,
)
from fx_common.envelope import Event, decode, make_event
from fx_common.http import issue_token
from fx_common.replay import replay_service
from referral_binding.app import ReferralBindingSettings, spec_for
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)
SECRET = "binding-modes-flow-secret-of-32-bytes!"
OUTBOX = (
    "SELECT ce_id, topic, key, value FROM fx_outbox"
    " WHERE cause_id IN (SELECT ce_id FROM fx_inbox) ORDER BY ce_id"
)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(db.normalise_url(url))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


async def applied(url: str, events: list[Event], timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    ids = ", ".join(f"'{e.id}'" for e in events)
    sql = f"SELECT count(*) FROM fx_inbox WHERE ce_id IN ({ids})"
    while (await asyncio.to_thread(rows, url, sql))[0][0] < len(events):
        assert asyncio.get_running_loop().time() < deadline, "events not applied"
        await asyncio.sleep(0.2)


async def drained(url: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    sql = "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"
    while (await asyncio.to_thread(rows, url, sql))[0][0] > 0:
        assert asyncio.get_running_loop().time() < deadline, "outbox not drained"
        await asyncio.sleep(0.2)


def story(records: list[Any]) -> list[tuple[str, dict[str, Any], datetime]]:
    told = []
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = decode(r.value, r.headers)
        told.append((event.type, event.data.model_dump(mode="json", exclude_none=True), event.time))
    return told


def visit(share: str, sharer: str, customer: str, at: datetime) -> Event:
    data = {"share_id": share, "sharer_id": sharer, "visitor_id": customer}
    return make_event("mall.share.visited", data, time=at, source="/mall/shares")


@pytest.mark.parametrize("mode", ["permanent", "overwrite"])
async def test_each_binding_mode_end_to_end_and_its_replay(
    mode: str, bootstrap: str, unique: str, tmp_path: Path
) -> None:
    namespace = f"bm-{mode}-{unique}."
    cluster = Cluster(
        bootstrap,
        tmp_path,
        namespace=namespace,
        jwt_secret=SECRET,
        extra_env={
            "FX_CLOCK": "simulated",
            "FX_CLOCK_START": T0.isoformat(),
            "FX_BINDING_MODE": mode,
            "FX_BINDING_CACHE_TTL_S": "0",
        },
    )
    url = cluster.database_url("referral-binding")
    d1, d2, c1 = (f"{name}-{unique}" for name in ("d1", "d2", "c1"))
    qualified = [
        make_event("fx.distributor.qualified", {"user_id": d, "order_ids": []},
                   time=T0 - H, source="/fx/qualification")
        for d in (d1, d2)
    ]  # fmt: skip
    line = {"line_id": "l-1", "sku": "tea", "quantity": 1, "paid_amount_fen": 25800}
    order = make_event(
        "mall.order.paid",
        {"order_id": f"o-{unique}", "buyer_id": c1, "currency": "CNY", "lines": [line]},
        time=T0 + 3 * H,
        source="/mall/orders",
    )
    visits = [visit(f"s1-{unique}", d1, c1, T0 + H), visit(f"s2-{unique}", d2, c1, T0 + 2 * H)]
    later = T0 + timedelta(days=400)
    clock = make_event("fx.clock.set", {"now": later.isoformat()}, time=later, source="/fx/fxctl")
    try:
        cluster.start("referral-binding")
        cluster.wait_ready("referral-binding")
        await publish(bootstrap, namespace + QUALIFICATION, qualified)
        await applied(url, qualified)
        await publish(bootstrap, namespace + MALL_SHARES, visits[:1])
        await applied(url, visits[:1])
        await publish(bootstrap, namespace + MALL_SHARES, visits[1:])
        await publish(bootstrap, namespace + MALL_ORDERS, [order])
        await applied(url, [*visits, order])
        await publish(bootstrap, namespace + CLOCK, [clock])
        await applied(url, [clock])
        await drained(url)
        base = f"http://127.0.0.1:{cluster.ports['referral-binding']}"
        mall = {"Authorization": f"Bearer {issue_token(SECRET, 'checkout', 'mall')}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            now = await api.get(f"/v1/customers/{c1}/binding", headers=mall)
    finally:
        codes = cluster.stop_all()
    assert set(codes.values()) == {0}, f"unexpected exit: {codes}"

    bindings = story(await read_all(bootstrap, namespace + BINDINGS, expect=5, timeout=30))
    [attributed] = story(await read_all(bootstrap, namespace + ATTRIBUTIONS, expect=1))
    kinds = [(t.removeprefix("fx.binding."), d["distributor_id"], at) for t, d, at in bindings]
    if mode == "permanent":
        # d1 keeps c1 for good: d2's visit is contested, the order extends nothing, 400 days
        # later the binding still protects.
        assert kinds == [("created", d1, T0 + H)]
        assert bindings[0][1]["protected_until"] == "2199-12-31T00:00:00Z"
        assert attributed[1]["distributor_id"] == d1
        assert (now.status_code, now.json()["distributor_id"]) == (200, d1)
    else:
        # d2's later visit takes c1 over; the order is d2's and extends d2's protection, which
        # expires 180 days after the order.
        assert kinds == [
            ("created", d1, T0 + H),
            ("released", d1, T0 + 2 * H),
            ("created", d2, T0 + 2 * H),
            ("extended", d2, T0 + 3 * H),
            ("released", d2, T0 + 3 * H + timedelta(days=180)),
        ]
        assert [d.get("reason") for _, d, _ in bindings] == [
            None, "overwritten", None, None, "expired",
        ]  # fmt: skip
        assert attributed[1]["distributor_id"] == d2
        assert now.status_code == 404
    assert attributed[1]["basis"] == "binding"

    settings = ReferralBindingSettings(binding_mode=mode, redis_url="")
    rebuilt = f"sqlite:///{tmp_path / 'replay.db'}"
    result = await replay_service(
        spec_for(settings), bootstrap, rebuilt, namespace=namespace, simulated_clock=True
    )
    assert (result.dead_lettered, result.duplicates) == (0, 0)
    live = rows(url, OUTBOX)
    assert len(live) == len(bindings) + 1
    assert rows(rebuilt, OUTBOX) == live
