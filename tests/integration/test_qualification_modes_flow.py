"""Qualification modes end to end on the real broker: qualification and referral-binding as
processes. qualification runs in `everyone`, then is restarted in `appointed`, then in
`everyone` with the contact step (same store: a switch of FX_QUALIFICATION_MODE); what each
mode qualified comes out on fx.qualification.v1 with its `via` (and who appointed, and why),
nobody already qualified changes across the switches, and referral-binding binds the
customers of every distributor so qualified."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster
from fx_common.contracts.bindings import BINDING_CREATED
from fx_common.contracts.topics import BINDINGS, MALL_SHARES, QUALIFICATION
from fx_common.envelope import Event, decode, make_event
from fx_common.http import issue_token
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
SECRET = "qualification-modes-flow-secret-of-32-bytes"


def token(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


def count(url: str, sql: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(sql)).scalar_one())
    finally:
        engine.dispose()


async def applied(url: str, events: list[Event], timeout: float = 60) -> None:
    """Wait until the service owning `url` has committed every one of `events`."""
    deadline = asyncio.get_running_loop().time() + timeout
    ids = ", ".join(f"'{e.id}'" for e in events)
    sql = f"SELECT count(*) FROM fx_inbox WHERE ce_id IN ({ids})"
    while await asyncio.to_thread(count, url, sql) < len(events):
        assert asyncio.get_running_loop().time() < deadline, "events not applied"
        await asyncio.sleep(0.2)


def restart(cluster: Cluster, **env: str) -> None:
    if "qualification" in cluster.procs:
        assert cluster.stop("qualification") == 0
    cluster.start("qualification", **env)
    cluster.wait_ready("qualification")


async def view(api: httpx.AsyncClient, user: str) -> dict[str, Any]:
    response = await api.get(f"/v1/distributors/{user}", headers=token("ops-1", "ops"))
    assert response.status_code == 200, response.text
    found = dict(response.json())
    del found["days_left"], found["progress"]  # they follow the clock
    return found


async def test_each_mode_qualifies_its_way_and_a_switch_changes_nobody_qualified(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    namespace = f"qfm-{unique}."
    cluster = Cluster(
        bootstrap,
        tmp_path,
        namespace=namespace,
        jwt_secret=SECRET,
        extra_env={"FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat()},
    )
    ann, cat, dan = (f"{name}-{unique}" for name in ("ann", "cat", "dan"))
    ops = token("ops-7", "ops")
    try:
        cluster.start("referral-binding")
        restart(cluster, FX_QUALIFICATION_MODE="everyone")
        cluster.wait_ready("referral-binding")
        url = f"http://127.0.0.1:{cluster.ports['qualification']}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as api:
            # everyone: ann's application qualifies her at once.
            answer = await api.post("/v1/applications", json={}, headers=token(ann))
            assert (answer.status_code, answer.json()["status"]) == (200, "qualified")
            ann_before = await view(api, ann)
            assert ann_before["qualified_via"] == "everyone"

            # appointed: applications are closed, ops appoint cat.
            restart(cluster, FX_QUALIFICATION_MODE="appointed")
            closed = await api.post("/v1/applications", json={}, headers=token(cat))
            assert (closed.status_code, closed.json()["error"]["code"]) == (
                409,
                "applications_closed",
            )
            appoint = f"/v1/distributors/{cat}/appoint"
            answer = await api.post(appoint, json={"reason": "tea club host"}, headers=ops)
            assert (answer.status_code, answer.json()["appointed_by"]) == (200, "ops-7")
            assert await view(api, ann) == ann_before

            # everyone with the contact step: dan waits for the confirmation.
            restart(cluster, FX_QUALIFICATION_MODE="everyone", FX_QUALIFICATION_CONTACT_STEP="true")
            answer = await api.post("/v1/applications", json={}, headers=token(dan))
            assert answer.json()["status"] == "applied"
            confirm = f"/v1/applications/{dan}/contact-confirmed"
            assert (await api.post(confirm, headers=ops)).json()["status"] == "qualified"
            off = await api.post(appoint, json={"reason": "again"}, headers=ops)
            assert (off.status_code, off.json()["error"]["code"]) == (409, "appointments_off")
            assert await view(api, ann) == ann_before
            assert (await view(api, cat))["appoint_reason"] == "tea club host"

        records = await read_all(bootstrap, namespace + QUALIFICATION, expect=5, timeout=60)
        told = sorted(
            (r.key.decode() if r.key else "", e.type, e.data.model_dump(exclude_none=True))
            for r in records
            for e in [decode(r.value, r.headers)]
        )
        everyone = {"order_ids": [], "via": "everyone"}
        appointed = {"via": "appointed", "appointed_by": "ops-7", "reason": "tea club host"}
        assert told == sorted(
            [
                (ann, "fx.distributor.applied", {"user_id": ann}),
                (ann, "fx.distributor.qualified", {"user_id": ann, **everyone}),
                (cat, "fx.distributor.qualified", {"user_id": cat, "order_ids": [], **appointed}),
                (dan, "fx.distributor.applied", {"user_id": dan}),
                (dan, "fx.distributor.qualified", {"user_id": dan, **everyone}),
            ]
        )

        # Downstream: referral-binding takes each of them as a distributor.
        visits = [
            make_event(
                "mall.share.visited",
                {"share_id": f"s-{d}", "sharer_id": d, "visitor_id": f"c-{d}"},
                time=T0 + timedelta(hours=1),
                source="/mall/shares",
            )
            for d in (ann, cat, dan)
        ]
        await publish(bootstrap, namespace + MALL_SHARES, visits)
        await applied(cluster.database_url("referral-binding"), visits)
        bindings = await read_all(bootstrap, namespace + BINDINGS, expect=3, timeout=60)
        created = {
            (e.data.model_dump()["customer_id"], e.data.model_dump()["distributor_id"])
            for r in bindings
            for e in [decode(r.value, r.headers)]
            if e.type == BINDING_CREATED
        }
        assert created == {(f"c-{d}", d) for d in (ann, cat, dan)}
    finally:
        codes = cluster.stop_all()
    assert set(codes.values()) == {0}, f"unexpected exit: {codes}"
