"""A late visit on the real broker: referral-binding and commission as processes, the order
processed before its earlier-dated visit (the share pipeline lagging). The visit binds as of
its time, the order is attributed to the sharer, and the commission accrues and settles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster
from fx_common.contracts.topics import ATTRIBUTIONS, CLOCK, COMMISSIONS, MALL_ORDERS, MALL_SHARES
from fx_common.contracts.topics import QUALIFICATION as QUALIFICATIONS
from fx_common.envelope import Event, decode, make_event
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
H = timedelta(hours=1)


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


async def applied(url: str, event: Event, timeout: float = 60) -> None:
    """Wait until the service owning `url` has committed `event`."""
    deadline = asyncio.get_running_loop().time() + timeout
    sql = f"SELECT count(*) FROM fx_inbox WHERE ce_id = '{event.id}'"
    while await asyncio.to_thread(count, url, sql) == 0:
        assert asyncio.get_running_loop().time() < deadline, f"{event.type} not applied"
        await asyncio.sleep(0.2)


async def test_order_first_visit_second_then_the_commission_settles(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    namespace = f"late-{unique}."
    simulated = {"FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat()}
    cluster = Cluster(bootstrap, tmp_path, namespace=namespace, extra_env=simulated)
    rb_url = cluster.database_url("referral-binding")

    def topic(name: str) -> str:
        return namespace + name

    try:
        for service in ("referral-binding", "commission"):
            cluster.start(service)
        for service in ("referral-binding", "commission"):
            cluster.wait_ready(service)
        qualified = make_event("fx.distributor.qualified",
                               {"user_id": "d-1", "order_ids": ["x-1", "x-2", "x-3"]},
                               time=T0 - timedelta(days=3), source="/fx/qualification")  # fmt: skip
        share = make_event("mall.share.created", {"share_id": "s-1", "sharer_id": "d-1"},
                           time=T0 - timedelta(days=1), source="/mall/shares")  # fmt: skip
        await publish(bootstrap, topic(QUALIFICATIONS), [qualified])
        await publish(bootstrap, topic(MALL_SHARES), [share])
        await applied(rb_url, share)

        line = {"line_id": "l-1", "sku": "tea", "quantity": 1, "paid_amount_fen": 25800}
        order = make_event("mall.order.paid", {"order_id": "o-1", "buyer_id": "c-1",
                                               "currency": "CNY", "lines": [line]},
                           time=T0 + 2 * H)  # fmt: skip
        await publish(bootstrap, topic(MALL_ORDERS), [order])
        await applied(rb_url, order)
        unattributed = "SELECT count(*) FROM rb_order WHERE distributor_id IS NULL"
        assert await asyncio.to_thread(count, rb_url, unattributed) == 1

        visit = make_event("mall.share.visited",
                           {"share_id": "s-1", "sharer_id": "d-1", "visitor_id": "c-1"},
                           time=T0, source="/mall/shares")  # fmt: skip
        await publish(bootstrap, topic(MALL_SHARES), [visit])
        [attributed] = await read_all(bootstrap, topic(ATTRIBUTIONS), expect=1)
        event = decode(attributed.value, attributed.headers)
        assert (event.type, event.time) == ("fx.order.attributed", T0 + 2 * H)
        assert (event.data.distributor_id, event.data.basis) == ("d-1", "binding")  # type: ignore[attr-defined]

        done = make_event("mall.order.completed", {"order_id": "o-1", "buyer_id": "c-1"},
                          time=T0 + timedelta(days=3))  # fmt: skip
        await publish(bootstrap, topic(MALL_ORDERS), [done])
        later = T0 + timedelta(days=12)
        clock = make_event("fx.clock.set", {"now": later.isoformat()}, time=later,
                           source="/fx/fxctl")  # fmt: skip
        # The completion reaches commission before the clock moves past the hold.
        assert len(await read_all(bootstrap, topic(ATTRIBUTIONS), expect=2)) == 2
        cm_url = cluster.database_url("commission")
        deadline = asyncio.get_running_loop().time() + 60
        while await asyncio.to_thread(count, cm_url, "SELECT count(*) FROM cm_completion") == 0:
            assert asyncio.get_running_loop().time() < deadline, "completion not applied"
            await asyncio.sleep(0.2)
        await publish(bootstrap, topic(CLOCK), [clock])

        records = await read_all(bootstrap, topic(COMMISSIONS), expect=2, timeout=90)
        story = [decode(r.value, r.headers) for r in records]
        assert [(e.type, e.data.amount_fen) for e in story] == [  # type: ignore[attr-defined]
            ("fx.commission.accrued", 2580),
            ("fx.commission.settled", 2580),
        ]
        assert story[0].data.distributor_id == "d-1"  # type: ignore[attr-defined]
        assert story[0].data.status == "pending"  # type: ignore[attr-defined]
    finally:
        codes = cluster.stop_all()
    assert set(codes.values()) <= {0, -15}, codes
