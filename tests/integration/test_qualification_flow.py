"""Qualification as a real process on the real broker, on a simulated clock: users apply over
HTTP, the contact is confirmed by ops or by the signed WeCom-style webhook, attributed orders
and refunds arrive on fx.attributions.v1, the clock closes the windows; every transition
comes out on fx.qualification.v1, and duplicates and replays change nothing."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster
from fx_common.contracts.attributions import ATTRIBUTED_ORDER_REFUNDED, ORDER_ATTRIBUTED
from fx_common.contracts.topics import ATTRIBUTIONS, CLOCK, QUALIFICATION
from fx_common.envelope import Event, decode, make_event
from fx_common.http import issue_token
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)  # the simulated clock's start: every confirmation
DEADLINE = T0 + timedelta(days=30)
SECRET = "qualification-flow-test-secret-of-32-bytes"
WEBHOOK_SECRET = "qualification-flow-wecom-secret"
FEN = 25800
COUNTS = (
    "SELECT (SELECT count(*) FROM qf_qualification), (SELECT count(*) FROM qf_order), "
    "(SELECT count(*) FROM qf_refund), (SELECT count(*) FROM qf_history), "
    "(SELECT count(*) FROM fx_outbox)"
)


def token(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


OPS = token("ops-1", "ops")


def attributed(distributor: str, order_id: str, paid_at: datetime, basis: str = "binding") -> Event:
    data = {
        "order_id": order_id,
        "buyer_id": f"buyer-of-{order_id}",
        "distributor_id": distributor,
        "basis": basis,
        "paid_at": paid_at.isoformat(),
        "lines": [{"line_id": "l-1", "sku": "tea-oolong", "quantity": 1, "paid_amount_fen": FEN}],
    }
    return make_event(ORDER_ATTRIBUTED, data, time=paid_at, source="/fx/referral-binding")


def refunded(distributor: str, order_id: str, refund_id: str, at: datetime) -> Event:
    data = {
        "order_id": order_id,
        "distributor_id": distributor,
        "refund_id": refund_id,
        "lines": [{"line_id": "l-1", "refund_amount_fen": FEN}],
    }
    return make_event(ATTRIBUTED_ORDER_REFUNDED, data, time=at, source="/fx/referral-binding")


def clock_set(now: datetime) -> Event:
    return make_event("fx.clock.set", {"now": now.isoformat()}, time=now, source="/fx/fxctl")


def again_under_a_new_id(event: Event) -> Event:
    """The same business event re-sent by its producer (a replay): same data, new ce_id."""
    return make_event(event.type, event.data, time=event.time, source=event.source)


def signed_callback(user_id: str, at: datetime, secret: str) -> tuple[bytes, dict[str, str]]:
    body = {"user_id": user_id, "external_contact_id": f"wm-{user_id}", "nonce": "n-1"}
    raw = json.dumps(body | {"timestamp": int(at.timestamp())}).encode()
    message = f"{int(at.timestamp())}.n-1.".encode() + raw
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "X-Fx-Signature": f"sha256={signature}"}


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def processed(url: str, events: list[Event]) -> Callable[[], Awaitable[bool]]:
    """Whether every event's id is in the service's inbox (its batch committed)."""
    ids = ", ".join(f"'{event.id}'" for event in events)

    async def check() -> bool:
        found = await asyncio.to_thread(
            rows, url, f"SELECT count(*) FROM fx_inbox WHERE ce_id IN ({ids})"
        )
        return found == [(len(events),)]

    return check


def outbox_drained(url: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        pending = "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"
        return await asyncio.to_thread(rows, url, pending) == [(0,)]

    return check


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def by_user(bootstrap: str, topic: str, expect: int, timeout: float = 60) -> dict[str, Any]:
    """The topic's events per key (user), in publishing order, and how many there were."""
    records = await read_all(bootstrap, topic, expect=expect, timeout=timeout)
    per_user: dict[str, list[Event]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert record.key is not None
        per_user[record.key.decode()].append(decode(record.value, record.headers))
    return {"count": len(records), "events": dict(per_user)}


def story(events: list[Event]) -> list[tuple[str, Any]]:
    """Each event's type (without the `fx.distributor.` prefix) and what it says."""
    told: list[tuple[str, Any]] = []
    for event in events:
        data = event.data.model_dump(mode="json", exclude_none=True)  # as on the wire
        del data["user_id"]
        told.append((event.type.removeprefix("fx.distributor."), data))
    return told


async def test_candidates_qualify_fail_and_count_only_what_the_rules_allow(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    namespace = f"qf-{unique}."
    cluster = Cluster(
        bootstrap,
        tmp_path,
        namespace=namespace,
        jwt_secret=SECRET,
        extra_env={
            "FX_CLOCK": "simulated",
            "FX_CLOCK_START": T0.isoformat(),
            "FX_WECOM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        },
        database_urls={"qualification": store_url},
    )
    ann, bob, cat, dan = (f"{name}-{unique}" for name in ("ann", "bob", "cat", "dan"))
    cluster.start("qualification")
    try:
        cluster.wait_ready("qualification")
        base_url = f"http://127.0.0.1:{cluster.ports['qualification']}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            for user in (ann, bob, cat, dan):
                applied = await api.post("/v1/applications", json={}, headers=token(user))
                assert applied.status_code == 200, applied.text

            # ann's contact is confirmed by the customer-service system's signed callback; a
            # forged one is refused first and changes nothing.
            before = rows(store_url, COUNTS)
            forged = signed_callback(ann, T0, "a-guessed-secret")
            response = await api.post(
                "/v1/webhooks/wecom/contact-added", content=forged[0], headers=forged[1]
            )
            assert (response.status_code, response.json()["error"]["code"]) == (
                401,
                "invalid_signature",
            )
            assert rows(store_url, COUNTS) == before
            raw, headers = signed_callback(ann, T0, WEBHOOK_SECRET)
            response = await api.post(
                "/v1/webhooks/wecom/contact-added", content=raw, headers=headers
            )
            assert (response.status_code, response.json()["status"]) == (200, "assessing")
            for user in (bob, cat, dan):
                response = await api.post(f"/v1/applications/{user}/contact-confirmed", headers=OPS)
                assert (response.status_code, response.json()["status"]) == (200, "assessing")

            events = [
                # ann: three referred orders inside the window qualify her.
                attributed(ann, f"o-{ann}-1", T0 + timedelta(days=1)),
                attributed(ann, f"o-{ann}-2", T0 + timedelta(days=2), basis="share_link"),
                attributed(ann, f"o-{ann}-3", T0 + timedelta(days=3)),
                # bob: one order, then the window closes.
                attributed(bob, f"o-{bob}-1", T0 + timedelta(days=2)),
                # cat: paid one second after her deadline, processed before the clock gets there.
                attributed(cat, f"o-{cat}-1", DEADLINE + timedelta(seconds=1)),
                # dan: a full refund inside the window takes an order out of the count; he
                # qualifies with two more, and a refund after that changes nothing.
                attributed(dan, f"o-{dan}-1", T0 + timedelta(days=1)),
                attributed(dan, f"o-{dan}-2", T0 + timedelta(days=2)),
                refunded(dan, f"o-{dan}-1", "r-1", T0 + timedelta(days=3)),
                attributed(dan, f"o-{dan}-3", T0 + timedelta(days=4)),
                attributed(dan, f"o-{dan}-4", T0 + timedelta(days=5)),
                refunded(dan, f"o-{dan}-3", "r-3", T0 + timedelta(days=6)),
            ]
            await publish(bootstrap, namespace + ATTRIBUTIONS, events)
            await eventually(processed(store_url, events), "the attributions and refunds")

            async def view(user: str) -> dict[str, Any]:
                response = await api.get(f"/v1/distributors/{user}", headers=token(user))
                assert response.status_code == 200, response.text
                return dict(response.json())

            bob_now = await view(bob)
            assert (bob_now["status"], bob_now["progress"]) == ("assessing", "1 of 3, 30 days left")
            cat_now = await view(cat)
            assert (cat_now["status"], cat_now["qualifying_orders"]) == ("assessing", 0)
            assert [(await view(u))["status"] for u in (ann, dan)] == ["qualified", "qualified"]

            after_deadline = DEADLINE + timedelta(minutes=1)
            clock = clock_set(after_deadline)
            await publish(bootstrap, namespace + CLOCK, [clock])
            await eventually(processed(store_url, [clock]), "the clock move")
            for user in (bob, cat):
                failed = await view(user)
                assert (failed["status"], failed["days_left"]) == ("failed", None)

            due = await api.get("/v1/candidates?status=failed", headers=OPS)
            assert [c["user_id"] for c in due.json()["items"]] == sorted([bob, cat])

            await eventually(outbox_drained(store_url), "the outbox relay")
            published = await by_user(bootstrap, namespace + QUALIFICATION, expect=21)
            assert published["count"] == 21
            deadline = DEADLINE.isoformat().replace("+00:00", "Z")
            started = ("assessment_started", {"deadline": deadline, "required_orders": 3})

            def progressed(count: int) -> tuple[str, Any]:
                return ("assessment_progressed", {"qualifying_orders": count, "required_orders": 3})

            told = {user: story(e) for user, e in published["events"].items()}
            assert told[ann] == [
                ("applied", {}),
                started,
                progressed(1),
                progressed(2),
                progressed(3),
                ("qualified", {"order_ids": [f"o-{ann}-{n}" for n in (1, 2, 3)]}),
            ]
            assert told[bob] == [
                ("applied", {}),
                started,
                progressed(1),
                ("assessment_failed", {"qualifying_orders": 1}),
            ]
            assert told[cat] == [
                ("applied", {}),
                started,
                ("assessment_failed", {"qualifying_orders": 0}),
            ]
            assert told[dan] == [
                ("applied", {}),
                started,
                progressed(1),
                progressed(2),
                progressed(1),
                progressed(2),
                progressed(3),
                ("qualified", {"order_ids": [f"o-{dan}-{n}" for n in (2, 3, 4)]}),
            ]
            failed_at = published["events"][bob][-1].time
            assert failed_at == DEADLINE, "a candidate fails at the deadline, not when noticed"
            assert {e.source for events in published["events"].values() for e in events} == {
                "/fx/qualification"
            }

            # Duplicates (the same ce_ids again) and a replay (the same events re-sent under
            # new ids, the clock set to the same moment again) change nothing.
            views = {user: await view(user) for user in (ann, bob, cat, dan)}
            stored = rows(store_url, COUNTS)
            replayed = [again_under_a_new_id(e) for e in events]
            replayed_clock = clock_set(after_deadline)
            await publish(bootstrap, namespace + ATTRIBUTIONS, [*events, *replayed])
            await publish(bootstrap, namespace + CLOCK, [clock, replayed_clock])
            # Per partition, the duplicates come before the replay: once the replay's ids
            # are in the inbox, the duplicates were consumed too.
            await eventually(processed(store_url, [*replayed, replayed_clock]), "the replay")
            await eventually(outbox_drained(store_url), "the outbox relay")
            assert rows(store_url, COUNTS) == stored
            assert {user: await view(user) for user in views} == views
            again = await by_user(bootstrap, namespace + QUALIFICATION, expect=22, timeout=5)
            assert again["count"] == 21
    finally:
        codes = cluster.stop_all()
    # SIGTERM drains and exits 0 (fx_common.http.serve).
    assert set(codes.values()) == {0}, f"unexpected exit: {codes}"
    assert "stopped cleanly" in cluster.log("qualification").read_text()
