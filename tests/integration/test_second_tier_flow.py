"""The second tier end to end on the real broker (FX_COMMISSION_TIERS=2): referral-binding and
commission as real processes on a simulated clock. A distributor R shares, customer D visits
(bound to R), D applies — referral-binding records R as D's recruiter (`fx.recruiter.recorded`)
— and buys; commission accrues D's tier-1 line and R's tier-2 line, held while D is assessed,
released when D qualifies, settled after the after-sales hold and clawed back by a refund;
the team page shows D with the tier-2 commission D brought. A replay of each service from
offset 0, with the same settings, rebuilds the same outbox and store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select

from commission import store
from commission.app import spec_for as commission_spec
from commission.settings import CommissionSettings
from demo.cluster import Cluster
from fx_common import db
from fx_common.contracts.topics import (
    ATTRIBUTIONS,
    CLOCK,
    COMMISSIONS,
    MALL_ORDERS,
    MALL_SHARES,
    QUALIFICATION,
)
from fx_common.envelope import Event, decode, make_event
from fx_common.http import issue_token
from fx_common.replay import replay_service
from referral_binding.app import ReferralBindingSettings
from referral_binding.app import spec_for as referral_binding_spec
from tests.integration.test_commission_flow import OUTBOX, ledger, rows
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
SECRET = "second-tier-flow-secret-of-32-bytes-long"
TIERS = {"FX_COMMISSION_TIERS": "2", "FX_TIER2_DEFAULT_RATE_BPS": "500"}


def ev(ce_type: str, at: datetime, data: dict[str, Any]) -> Event:
    source = {"mall": "/mall/test", "fx.distributor": "/fx/qualification"}
    origin = next(v for k, v in source.items() if ce_type.startswith(k))
    return make_event(ce_type, data, time=at, source=origin)


def recruiters(url: str) -> list[dict[str, Any]]:
    """commission's recruiters as stored (types processed: SQLite and Postgres compare)."""
    engine = db.make_engine(url)
    try:
        with Session(engine) as session:
            return [row.model_dump() for row in session.exec(select(store.RecruiterRecord))]
    finally:
        engine.dispose()


def clock(now: datetime) -> Event:
    return make_event("fx.clock.set", {"now": now.isoformat()}, time=now, source="/fxctl")


async def decoded(bootstrap: str, topic: str, expect: int) -> list[Event]:
    records = await read_all(bootstrap, topic, expect=expect)
    assert len(records) == expect, [decode(r.value, r.headers).type for r in records]
    return [decode(r.value, r.headers) for r in records]


def tiered(events: list[Event]) -> list[tuple[str, int, str, int | None]]:
    """(kind, tier, earner, amount) of each commission event, in event-time order."""
    return [
        (e.type.removeprefix("fx.commission."), e.data.tier, e.data.distributor_id,  # type: ignore[attr-defined]
         e.data.amount_fen)  # type: ignore[attr-defined]
        for e in sorted(events, key=lambda e: (e.time, e.data.tier))  # type: ignore[attr-defined]
    ]  # fmt: skip


async def test_a_recruiter_earns_the_second_tier_end_to_end_and_replays_the_same(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    ns = f"tier2-{unique}."
    r, d = f"r-{unique}", f"d-{unique}"
    rb_url = f"sqlite:///{tmp_path / 'rb.db'}"
    cluster = Cluster(
        bootstrap, tmp_path, namespace=ns, jwt_secret=SECRET,
        extra_env={"FX_CLOCK": "simulated", "FX_CLOCK_START": (T0 - 10 * DAY).isoformat(),
                   "FX_BINDING_CACHE_TTL_S": "0", **TIERS},
        database_urls={"commission": store_url, "referral-binding": rb_url},
    )  # fmt: skip
    cluster.start("referral-binding")
    cluster.start("commission")
    try:
        cluster.wait_ready("referral-binding")
        cluster.wait_ready("commission")
        # Each step waits for its effect, so arrival order is event-time order.
        recruiter = ev("fx.distributor.qualified", T0 - 10 * DAY, {"user_id": r, "order_ids": []})
        await publish(bootstrap, ns + QUALIFICATION, [recruiter])
        visit = {"share_id": f"s-{unique}", "sharer_id": r, "visitor_id": d}
        await asyncio.sleep(1)  # both services read R's qualification first (event time)
        await publish(bootstrap, ns + MALL_SHARES, [ev("mall.share.visited", T0 - 9 * DAY, visit)])
        await decoded(bootstrap, ns + "fx.bindings.v1", 1)
        applied = ev("fx.distributor.applied", T0 - 8 * DAY, {"user_id": d})
        window = {"user_id": d, "deadline": (T0 + 20 * DAY).isoformat(), "required_orders": 3}
        started = ev("fx.distributor.assessment_started", T0 - 8 * DAY + timedelta(hours=1), window)
        await publish(bootstrap, ns + QUALIFICATION, [applied, started])
        [recorded] = await decoded(bootstrap, ns + ATTRIBUTIONS, 1)
        assert recorded.type == "fx.recruiter.recorded"
        assert (recorded.data.distributor_id, recorded.data.recruiter_id) == (d, r)  # type: ignore[attr-defined]
        await asyncio.sleep(1)
        line = {"line_id": "l-1", "sku": "tea", "quantity": 1, "paid_amount_fen": 10000}
        paid = {"order_id": f"o-{unique}", "buyer_id": d, "currency": "CNY", "lines": [line]}
        await publish(bootstrap, ns + MALL_ORDERS, [ev("mall.order.paid", T0, paid)])
        accrued = await decoded(bootstrap, ns + COMMISSIONS, 2)
        assert tiered(accrued) == [("accrued", 1, d, 1000), ("accrued", 2, r, 500)]
        assert {e.data.status for e in accrued} == {"held"}  # type: ignore[attr-defined]
        second = next(e.data for e in accrued if e.data.tier == 2)  # type: ignore[attr-defined]
        assert second.source_distributor_id == d  # type: ignore[attr-defined]

        qualified = ev("fx.distributor.qualified", T0 + DAY, {"user_id": d, "order_ids": []})
        await publish(bootstrap, ns + QUALIFICATION, [qualified])
        await decoded(bootstrap, ns + COMMISSIONS, 4)
        done = {"order_id": f"o-{unique}", "buyer_id": d}
        await publish(bootstrap, ns + MALL_ORDERS, [ev("mall.order.completed", T0 + 2 * DAY, done)])
        await decoded(bootstrap, ns + ATTRIBUTIONS, 3)
        await asyncio.sleep(1)
        await publish(bootstrap, ns + CLOCK, [clock(T0 + 9 * DAY)])
        await decoded(bootstrap, ns + COMMISSIONS, 6)
        refund = {"order_id": f"o-{unique}", "buyer_id": d, "refund_id": "rf-1",
                  "lines": [{"line_id": "l-1", "refund_amount_fen": 4000}]}  # fmt: skip
        await publish(
            bootstrap, ns + MALL_ORDERS, [ev("mall.order.refunded", T0 + 10 * DAY, refund)]
        )
        everything = await decoded(bootstrap, ns + COMMISSIONS, 8)
        assert tiered(everything) == [
            ("accrued", 1, d, 1000), ("accrued", 2, r, 500),
            ("released", 1, d, 1000), ("released", 2, r, 500),
            ("settled", 1, d, 1000), ("settled", 2, r, 500),
            ("reversed", 1, d, 400), ("reversed", 2, r, 200),
        ]  # fmt: skip
        keys = {rec.key for rec in await read_all(bootstrap, ns + COMMISSIONS, expect=8)}
        assert keys == {d.encode(), r.encode()}

        base = f"http://127.0.0.1:{cluster.ports['commission']}"
        auth = {"Authorization": f"Bearer {issue_token(SECRET, r, 'distributor')}"}
        async with httpx.AsyncClient(base_url=base, timeout=30) as api:
            team = (await api.get(f"/v1/distributors/{r}/team", headers=auth)).json()
            listed = (await api.get(f"/v1/distributors/{r}/commissions", headers=auth)).json()
        [member] = team["items"]
        assert (member["distributor_id"], member["status"], member["orders"]) == (d, "qualified", 1)
        assert (member["tier2"]["settled"], member["tier2"]["reversed"]) == (300, 200)
        assert [(c["tier"], c["source_distributor_id"]) for c in listed["items"]] == [(2, d)]
    finally:
        cluster.stop_all()

    rebuilt = f"sqlite:///{tmp_path / 'commission-replay.db'}"
    settings = CommissionSettings(commission_tiers=2, tier2_default_rate_bps=500)
    await replay_service(
        commission_spec(settings), bootstrap, rebuilt, namespace=ns, simulated_clock=True
    )
    assert len(rows(store_url, OUTBOX)) == 8
    assert rows(rebuilt, OUTBOX) == rows(store_url, OUTBOX)
    assert ledger(rebuilt) == ledger(store_url)
    assert recruiters(rebuilt) == recruiters(store_url) != []

    rb_rebuilt = f"sqlite:///{tmp_path / 'rb-replay.db'}"
    await replay_service(
        referral_binding_spec(ReferralBindingSettings(redis_url="")), bootstrap, rb_rebuilt,
        namespace=ns, simulated_clock=True,
    )  # fmt: skip
    assert rows(rb_rebuilt, OUTBOX) == rows(rb_url, OUTBOX)
    recorded_rows = "SELECT * FROM rb_recruiter"
    assert rows(rb_rebuilt, recorded_rows) == rows(rb_url, recorded_rows) != []
