"""qualification rebuilds by replay, on the real broker: users apply, are confirmed and revoked
over HTTP, attributed orders and the clock arrive on topics; `fxctl replay qualification
--compare` into a fresh store finds no difference, and the rebuilt store answers the same reads.

The HTTP commands reach the replay because each accepted one is recorded as
`fx.qualification.command_accepted` on `fx.qualification.commands.v1` in its transaction; the
live consumer reads those records back and drops them as already applied."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, create_engine
from sqlmodel import Session
from typer.testing import CliRunner

from demo.cluster import Cluster
from fx_common.contracts.qualification import COMMAND_ACCEPTED
from fx_common.contracts.topics import ATTRIBUTIONS, CLOCK, QUALIFICATION_COMMANDS
from fx_common.envelope import decode
from fxctl.cli import app
from qualification import store
from qualification.domain import Status
from tests.integration.test_qualification_flow import (
    OPS,
    attributed,
    clock_set,
    eventually,
    outbox_drained,
    processed,
    rows,
    token,
)
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, 9, tzinfo=UTC)
SECRET = "qualification-flow-test-secret-of-32-bytes"  # the flow's tokens (`token`, `OPS`)
LIVE_ONLY = "SELECT count(*) FROM fx_outbox WHERE ce_id IS NULL"  # dead letters


def fxctl(bootstrap: str, namespace: str, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["--bootstrap", bootstrap, "--namespace", namespace, *args])
    assert result.exit_code == code, f"fxctl {' '.join(args)}: {result.output}{result.exception!r}"
    return result.stdout


def consumed(bootstrap: str, namespace: str, topic: str) -> bool:
    """qualification's group has committed everything on `topic`."""
    listed = fxctl(bootstrap, namespace, "topics", "--json").splitlines()
    state = next((r for r in map(json.loads, listed) if r["topic"] == namespace + topic), None)
    group = namespace + "fx-qualification"
    return state is not None and any(
        g["group"] == group and g["lag"] == 0 and g["committed"] > 0 for g in state["groups"]
    )


def reads(engine: Engine, users: list[str]) -> dict[str, Any]:
    """What the store answers: each user's qualification and history, and the candidates."""
    with Session(engine) as session:
        return {
            "qualifications": {u: store.load(session, u, for_update=False) for u in users},
            "history": {
                u: [(h.seq, h.ce_type, h.at, h.data) for h in store.history(session, u)]
                for u in users
            },
            "candidates": {
                status: store.candidates(
                    session, status=status, deadline_before=None, offset=0, limit=50
                )
                for status in Status
            },
        }


async def test_http_commands_and_events_rebuild_by_replay_with_no_difference(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    namespace = f"qfr-{unique}."
    cluster = Cluster(
        bootstrap,
        tmp_path,
        namespace=namespace,
        jwt_secret=SECRET,
        extra_env={"FX_CLOCK": "simulated", "FX_CLOCK_START": T0.isoformat()},
        database_urls={"qualification": store_url},
    )
    ann, bob, cat, dan = users = [f"{name}-{unique}" for name in ("ann", "bob", "cat", "dan")]
    cluster.start("qualification")
    try:
        cluster.wait_ready("qualification")
        base_url = f"http://127.0.0.1:{cluster.ports['qualification']}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            for user in users:
                body = {"wechat_id": f"wx-{user}"} if user == ann else {}
                applied = await api.post("/v1/applications", json=body, headers=token(user))
                assert applied.status_code == 200, applied.text
            again = await api.post("/v1/applications", json={}, headers=token(ann))
            assert again.status_code == 200  # idempotent: no command event
            for user in (ann, bob, cat):
                confirmed = await api.post(
                    f"/v1/applications/{user}/contact-confirmed", headers=OPS
                )
                assert (confirmed.status_code, confirmed.json()["status"]) == (200, "assessing")

            orders = [attributed(ann, f"o-{ann}-{n}", T0 + timedelta(days=n)) for n in (1, 2, 3)]
            orders.append(attributed(bob, f"o-{bob}-1", T0 + timedelta(days=2)))
            await publish(bootstrap, namespace + ATTRIBUTIONS, orders)
            await eventually(processed(store_url, orders), "the attributed orders")

            after_deadline = T0 + timedelta(days=30, minutes=1)
            clock = clock_set(after_deadline)
            await publish(bootstrap, namespace + CLOCK, [clock])
            await eventually(processed(store_url, [clock]), "the clock move")
            revoked = await api.post(
                f"/v1/distributors/{ann}/revoke", json={"reason": "fake orders"}, headers=OPS
            )
            assert (revoked.status_code, revoked.json()["status"]) == (200, "revoked")
            views = {u: (await api.get(f"/v1/distributors/{u}", headers=OPS)).json() for u in users}
        assert [views[u]["status"] for u in users] == ["revoked", "failed", "failed", "applied"]

        await eventually(outbox_drained(store_url), "the outbox relay")
        commands = await read_all(bootstrap, namespace + QUALIFICATION_COMMANDS, expect=8)
        decoded = [decode(r.value, r.headers) for r in commands]
        assert {e.type for e in decoded} == {COMMAND_ACCEPTED}
        assert sorted(e.data.command for e in decoded) == sorted(  # type: ignore[attr-defined]
            ["apply"] * 4 + ["confirm_contact"] * 3 + ["revoke"]
        )
        # The live consumer read its own commands back and dropped them as applied.
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(consumed, bootstrap, namespace, QUALIFICATION_COMMANDS):
            assert time.monotonic() < deadline, "qualification never consumed its commands"
            await asyncio.sleep(0.5)
        assert rows(store_url, LIVE_ONLY) == [(0,)]
        assert views[ann]["history"][-1]["type"] == "fx.distributor.revoked"
    finally:
        cluster.stop_all()

    rebuilt = f"sqlite:///{tmp_path / 'rebuilt.db'}"
    replayed = await asyncio.to_thread(
        fxctl, bootstrap, namespace, "replay", "qualification", "--store", rebuilt,
        "--compare", store_url, "--simulated-clock", "--clock-start", T0.isoformat(),
    )  # fmt: skip
    # 8 commands, 4 orders, 1 clock move; 15 events (ann 7, bob 4, cat 3, dan 1).
    assert "replayed 13 record(s)" in replayed and "0 dead-lettered" in replayed, replayed
    assert "identical: 15 outbox row(s) match the live store" in replayed, replayed

    live, fresh = create_engine(store_url), create_engine(rebuilt)
    try:
        answered = reads(fresh, users)
        assert answered == reads(live, users)
        assert answered["qualifications"][dan] is not None
        assert len(answered["history"][ann]) == 7
    finally:
        live.dispose()
        fresh.dispose()
