"""No poison record stops a partition: referral-binding and commission as real processes on the
real broker; one record of each kind the contract refuses (or that would overflow the domain
or the stores) sits in the middle of a partition of mall.orders.v1 / mall.shares.v1. Each is
dead-lettered with a clear message while the rest of its partition and the other partitions
flow through to commission; ignored types are counted, not dead-lettered."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from demo.cluster import Cluster
from fx_common.contracts.topics import (
    ATTRIBUTIONS,
    COMMISSIONS,
    MALL_ORDERS,
    MALL_SHARES,
    QUALIFICATION,
    dlq_topic,
)
from fx_common.envelope import Event, decode, encode, make_event
from tests.kafka_helpers import header, publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 2, 9, tzinfo=UTC)
BUYERS = [f"b-{n}" for n in range(12)]


def paid(order_id: str, buyer: str, fen: int = 25800, event_id: str | None = None) -> Event:
    line = {"line_id": "l-1", "sku": "tea", "quantity": 1, "paid_amount_fen": fen}
    data = {"order_id": order_id, "buyer_id": buyer, "share_id": "s-1", "currency": "CNY",
            "lines": [line]}  # fmt: skip
    return make_event("mall.order.paid", data, time=T0 + timedelta(hours=1), event_id=event_id)


def raw(event: Event, *, value: bytes | None = None, **attrs: str) -> tuple[bytes, bytes, Any]:
    """The event as (key, value, headers), with headers or the value replaced."""
    encoded, headers = encode(event)
    headers = [(k, attrs[k[3:]].encode() if k[3:] in attrs else v) for k, v in headers]
    key = json.loads(encoded).get("buyer_id") or json.loads(encoded).get("visitor_id")
    return key.encode(), value if value is not None else encoded, headers


def poison() -> tuple[list[tuple[bytes, bytes, Any]], list[tuple[bytes, bytes, Any]]]:
    """(on mall.orders.v1, on mall.shares.v1): one record of each kind, all keyed b-0."""
    order = paid("o-poison", "b-0")
    value, _ = encode(order)
    visit = make_event("mall.share.visited",
                       {"share_id": "s-1", "sharer_id": "d-1", "visitor_id": "b-0"},
                       time=T0)  # fmt: skip
    clock = make_event("fx.clock.set", {"now": "2027-03-01T00:00:00Z"}, time=T0)
    _, clock_headers = encode(clock)
    orders = [
        raw(order, value=b"{not json", id="p-json"),
        raw(order, value=value.replace(b'"paid_amount_fen":25800', b'"paid_amount_fen":-5'),
            id="p-negative"),
        raw(order, value=value.replace(b'"paid_amount_fen":25800',
                                       b'"paid_amount_fen":9223372036854775808'), id="p-2e63"),
        raw(order, id="p-millis", time="1770022800000"),
        raw(order, id="p-typo", type="mall.order.payed"),
        (b"b-0", encode(clock)[0], [(k, b"p-clock" if k == "ce_id" else v)
                                    for k, v in clock_headers]),
        raw(paid("o-b-0-0", "b-0", fen=99999, event_id="e-o-b-0-0")),  # the id, other content
        raw(order, id="p-cancelled", type="mall.order.cancelled"),  # ignored on purpose
    ]  # fmt: skip
    shares = [raw(visit, id="p-9999", time="9999-12-30T00:00:00Z")]
    return orders, shares


def read_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_each_poison_is_dead_lettered_and_every_partition_flows(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    namespace = f"poison-{unique}."
    simulated = {"FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat()}
    cluster = Cluster(bootstrap, tmp_path, namespace=namespace, extra_env=simulated)
    try:
        for service in ("referral-binding", "commission"):
            cluster.start(service)
        for service in ("referral-binding", "commission"):
            cluster.wait_ready(service)
        started = make_event("fx.distributor.assessment_started",
                             {"user_id": "d-1", "deadline": (T0 + timedelta(days=30)).isoformat(),
                              "required_orders": 3}, time=T0 - timedelta(days=1))  # fmt: skip
        await publish(bootstrap, namespace + QUALIFICATION, [started])
        share = make_event("mall.share.created", {"share_id": "s-1", "sharer_id": "d-1"},
                           time=T0 - timedelta(days=1))  # fmt: skip
        await publish(bootstrap, namespace + MALL_SHARES, [share])
        await asyncio.sleep(2)  # the sharer is known before the orders arrive

        before = [paid(f"o-{b}-0", b, event_id=f"e-o-{b}-0") for b in BUYERS]
        after = [paid(f"o-{b}-1", b) for b in BUYERS]
        orders, shares = poison()
        await publish(bootstrap, namespace + MALL_ORDERS, before, raw=orders)
        await publish(bootstrap, namespace + MALL_SHARES, [], raw=shares)
        await publish(bootstrap, namespace + MALL_ORDERS, after)

        # Every good order is attributed, then accrues commission downstream.
        wanted = len(before) + len(after)
        accrued = await read_all(bootstrap, namespace + COMMISSIONS, expect=wanted, timeout=120)
        accrued_orders = {decode(r.value, r.headers).data.order_id for r in accrued}  # type: ignore[attr-defined]
        assert accrued_orders == {e.data.order_id for e in before + after}  # type: ignore[attr-defined]
        inputs = await read_all(bootstrap, namespace + MALL_ORDERS, expect=wanted + len(orders))
        assert len({r.partition for r in inputs}) == 3, "the buyers spread over every partition"
        attributed = await read_all(bootstrap, namespace + ATTRIBUTIONS, expect=wanted)
        assert len(attributed) == wanted

        dead = await read_all(bootstrap, namespace + dlq_topic("referral-binding"), expect=8)
        errors = {header(r, "ce_id"): (header(r, "fx_error_type"), header(r, "fx_error_message"))
                  for r in dead}  # fmt: skip
        assert {k: v[0] for k, v in errors.items()} == {
            "p-json": "invalid_json",
            "p-negative": "contract_violation",
            "p-2e63": "contract_violation",
            "p-millis": "invalid_envelope",
            "p-typo": "unknown_type",
            "p-clock": "wrong_topic",
            "e-o-b-0-0": "duplicate_id_conflict",
            "p-9999": "invalid_envelope",
        }
        assert "less than or equal to 9007199254740991" in str(errors["p-2e63"][1])
        assert "looks like epoch milliseconds" in str(errors["p-millis"][1])
        assert "outside the accepted range" in str(errors["p-9999"][1])
        assert "accepted only on fx.clock.v1" in str(errors["p-clock"][1])
        same_partition = {r.partition for r in dead if header(r, "fx_original_topic")
                          == namespace + MALL_ORDERS}  # fmt: skip
        assert len(same_partition) == 1  # all keyed b-0: one partition, which kept flowing

        metrics_url = f"http://127.0.0.1:{cluster.ports['referral-binding']}/metrics"
        metrics = await asyncio.to_thread(read_text, metrics_url)
        assert ('fx_ignored_events_total{reason="documented",service="referral-binding",'
                'type="mall.order.cancelled"} 1.0') in metrics  # fmt: skip
        assert "ignoring events of type 'mall.order.cancelled'" in (
            cluster.log("referral-binding").read_text()
        )
    finally:
        codes = cluster.stop_all()
    assert set(codes.values()) <= {0, -15}, codes
