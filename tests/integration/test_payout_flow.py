"""Payout as a real process on the real broker: settled commission becomes withdrawable, a
clawback after a withdrawal blocks the next one, every state change is on fx.payouts.v1, a
replay rebuilds the same ledger, and the reconcile command agrees until a row is tampered
with. Then two replicas on one Postgres database under a burst of parallel withdrawals."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from demo.cluster import REPO, Cluster
from fx_common.contracts.commissions import (
    COMMISSION_ACCRUED,
    COMMISSION_REVERSED,
    COMMISSION_SETTLED,
)
from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import COMMISSIONS, PAYOUTS
from fx_common.envelope import Event, decode, make_event
from fx_common.http import issue_token
from fx_common.replay import replay_service
from fx_common.testing import fresh_postgres_database
from payout import app as payout_app
from tests.kafka_helpers import publish, read_all

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SECRET = "payout-flow-test-secret-of-at-least-32-bytes"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
COMMISSION_ENTRIES = (
    "SELECT distributor_id, kind, amount_fen, source_event_id FROM po_ledger_entry "
    "WHERE commission_id IS NOT NULL ORDER BY source_event_id"
)
COUNTS = (
    "SELECT (SELECT count(*) FROM po_withdrawal), (SELECT count(*) FROM po_ledger_entry), "
    "(SELECT count(*) FROM fx_outbox)"
)


def commission(
    ce_type: str, distributor_id: str, commission_id: str, amount_fen: int, event_id: str
) -> Event:
    data = {
        **SAMPLES[ce_type],
        "distributor_id": distributor_id,
        "commission_id": commission_id,
        "amount_fen": amount_fen,
    }
    at = T0 + timedelta(minutes=int(event_id.rsplit("-", 1)[-1]))
    return make_event(ce_type, data, time=at, source="/fx/commission", event_id=event_id)


def headers(sub: str, role: str = "distributor", key: str | None = None) -> dict[str, str]:
    sent = {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}
    if key is not None:
        sent["Idempotency-Key"] = key
    return sent


OPS = headers("ops-1", "ops")


def withdrawal(amount_fen: Any, method: str = "wechat_wallet", account: str = OPENID) -> Any:
    return {"amount_fen": amount_fen, "method": method, "account": account}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def balance_is(client: httpx.AsyncClient, distributor_id: str, available: int) -> bool:
    response = await client.get(f"/v1/distributors/{distributor_id}/balance", headers=OPS)
    return response.status_code == 200 and response.json()["available_fen"] == available


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def execute(url: str, sql: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def reconcile(bootstrap: str, namespace: str, url: str) -> subprocess.CompletedProcess[str]:
    """The reconcile command, as an operator runs it (the installed script)."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FX_TOPIC_NAMESPACE": namespace,
        "DATABASE_URL": url,
    }
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "fx-payout-reconcile"), "--wait", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def payout_cluster(bootstrap: str, workdir: Path, namespace: str, url: str) -> Cluster:
    workdir.mkdir(parents=True, exist_ok=True)
    return Cluster(
        bootstrap,
        workdir,
        namespace=namespace,
        jwt_secret=SECRET,
        database_urls={"payout": url},
    )


def stopped_cleanly(cluster: Cluster) -> None:
    codes = cluster.stop_all()
    # SIGTERM drains and exits 0 (fx_common.http.serve).
    assert set(codes.values()) == {0}, f"unexpected exit: {codes}"
    assert "stopped cleanly" in cluster.log("payout").read_text()


# --- one replica: the whole flow -----------------------------------------------------------


async def test_settled_commission_is_withdrawable_and_a_clawback_blocks_the_next_withdrawal(
    bootstrap: str, unique: str, store_url: str, tmp_path: Path
) -> None:
    namespace = f"payout-{unique}."
    cluster = payout_cluster(bootstrap, tmp_path, namespace, store_url)
    cluster.start("payout")
    distributor, other = f"d-{unique}", f"d2-{unique}"
    try:
        cluster.wait_ready("payout")
        base_url = f"http://127.0.0.1:{cluster.ports['payout']}"
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as api:
            settled = [
                commission(COMMISSION_SETTLED, distributor, "c-1", 6000, "e-1"),
                commission(COMMISSION_SETTLED, distributor, "c-2", 2500, "e-2"),
                commission(COMMISSION_SETTLED, other, "c-3", 1000, "e-3"),
            ]
            accrued = make_event(COMMISSION_ACCRUED, SAMPLES[COMMISSION_ACCRUED], time=T0)
            # e-1 twice: a redelivery credits once; an accrual is not money yet.
            await publish(bootstrap, namespace + COMMISSIONS, [*settled, settled[0], accrued])
            await eventually(lambda: balance_is(api, distributor, 8500), "the credits")
            await eventually(lambda: balance_is(api, other, 1000), "the other credit")

            first = await api.post(
                "/v1/withdrawals", json=withdrawal(5000), headers=headers(distributor, key="w-1")
            )
            assert (first.status_code, first.json()["status"]) == (201, "approved")
            again = await api.post(
                "/v1/withdrawals", json=withdrawal(5000), headers=headers(distributor, key="w-1")
            )
            assert (again.status_code, again.json()) == (200, first.json())
            withdrawal_id = first.json()["withdrawal_id"]
            paid = await api.post(
                f"/v1/withdrawals/{withdrawal_id}/mark-paid",
                json={"transfer_ref": "wx-8d1f"},
                headers=OPS,
            )
            assert (paid.status_code, paid.json()["transfer_ref"]) == (200, "wx-8d1f")

            # The order behind c-1 was refunded after the money left: the whole 6000 comes back.
            clawback = commission(COMMISSION_REVERSED, distributor, "c-1", 6000, "e-4")
            await publish(bootstrap, namespace + COMMISSIONS, [clawback])
            await eventually(lambda: balance_is(api, distributor, -2500), "the clawback")
            balance = await api.get(f"/v1/distributors/{distributor}/balance", headers=OPS)
            assert balance.json() == {
                "available_fen": -2500,
                "on_hold_fen": 0,
                "paid_out_fen": 5000,
            }

            refused = await api.post(
                "/v1/withdrawals", json=withdrawal(1000), headers=headers(distributor, key="w-2")
            )
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "insufficient_balance"
            assert "-2500 fen" in refused.json()["error"]["message"]
            page = await api.get(
                f"/v1/distributors/{distributor}/withdrawal-page", headers=headers(distributor)
            )
            assert (page.json()["can_withdraw"], page.json()["blocked_reason"]) == (
                False,
                "negative_balance",
            )
            assert [w["status"] for w in page.json()["history"]] == ["paid"]

            await refuses_bad_input_and_writes_nothing(
                api, store_url, distributor, other, withdrawal_id
            )

        payouts = await read_all(bootstrap, namespace + PAYOUTS, expect=3)
        events = [decode(r.value, r.headers) for r in payouts]
        assert [e.type for e in events] == [
            "fx.withdrawal.requested",
            "fx.withdrawal.approved",
            "fx.withdrawal.paid",
        ]
        assert {r.key for r in payouts} == {distributor.encode()}
        assert {e.source for e in events} == {"/fx/payout"}
        assert {e.data.withdrawal_id for e in events} == {withdrawal_id}  # type: ignore[attr-defined]
        assert events[-1].data.transfer_ref == "wx-8d1f"  # type: ignore[attr-defined]

        # The live ledger's commission entries: replay must rebuild exactly these.
        live = rows(store_url, COMMISSION_ENTRIES)
        assert live == [
            (distributor, "credit", 6000, "e-1"),
            (distributor, "credit", 2500, "e-2"),
            (other, "credit", 1000, "e-3"),
            (distributor, "debit", -6000, "e-4"),
        ]
        rebuilt = f"sqlite:///{tmp_path / 'replay.db'}"
        result = await replay_service(payout_app.SPEC, bootstrap, rebuilt, namespace=namespace)
        assert (result.records, result.applied, result.duplicates) == (6, 4, 1)
        assert rows(rebuilt, COMMISSION_ENTRIES) == live

        checked = await asyncio.to_thread(reconcile, bootstrap, namespace, store_url)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "no difference" in checked.stdout
    finally:
        stopped_cleanly(cluster)

    execute(store_url, "UPDATE po_ledger_entry SET amount_fen = 2600 WHERE source_event_id = 'e-2'")
    tampered = await asyncio.to_thread(reconcile, bootstrap, namespace, store_url)
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "event e-2: booked as entry" in tampered.stdout
    assert (
        "commission c-2: ledger credited 2600 and debited 0 fen; the events settled 2500 and "
        "reversed 0 fen"
    ) in tampered.stdout
    assert f"distributor {distributor}: ledger credited 8600" in tampered.stdout


async def refuses_bad_input_and_writes_nothing(
    api: httpx.AsyncClient, store_url: str, distributor: str, other: str, withdrawal_id: str
) -> None:
    """Bad input on the running process: a clear 4xx each time, and no row written."""
    before = rows(store_url, COUNTS)
    me, mine = headers(distributor, key="bad-1"), headers(distributor)
    post, done = "/v1/withdrawals", f"/v1/withdrawals/{withdrawal_id}"
    bad_bodies = [
        (withdrawal(-100), "invalid_request"),
        (withdrawal(1000.5), "invalid_request"),
        (withdrawal("1000"), "invalid_request"),
        (withdrawal(1000, "paypal"), "invalid_request"),
        (withdrawal(1000, "bank_card", "4111"), "invalid_account"),
        (withdrawal(1000, "alipay", "12345"), "invalid_account"),
    ]
    cases: list[tuple[str, Any, dict[str, str], int, str]] = [
        (post, body, me, 422, code) for body, code in bad_bodies
    ]
    cases += [
        (post, withdrawal(1000), mine, 400, "idempotency_key_required"),
        # the paid withdrawal's key, with another body
        (post, withdrawal(4000), headers(distributor, key="w-1"), 422, "idempotency_key_reused"),
        (post, {**withdrawal(1000), "distributor_id": other}, me, 403, "forbidden"),
        (post, withdrawal(1000), {"Idempotency-Key": "k"}, 401, "unauthenticated"),
        (f"{done}/mark-paid", {"transfer_ref": "x"}, mine, 403, "forbidden"),
        (f"{done}/reject", {"reason": "late"}, OPS, 409, "invalid_transition"),
    ]
    for url, body, sent, status, code in cases:
        response = await api.post(url, json=body, headers=sent)
        outcome = (response.status_code, response.json()["error"]["code"])
        assert outcome == (status, code), f"{url} {body}: {response.text}"
    page = await api.get(f"/v1/distributors/{other}/withdrawal-page", headers=mine)
    assert page.status_code == 403
    assert rows(store_url, COUNTS) == before


# --- two replicas on one Postgres database --------------------------------------------------

# (distributor, idempotency key, amount, replica), in sending order
Burst = list[tuple[str, str, int, int]]


async def test_two_replicas_on_one_postgres_never_overdraw_nor_withdraw_a_key_twice(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    namespace = f"payout-replicas-{unique}."
    rich, modest = f"d-{unique}", f"d2-{unique}"
    credited = {rich: 20000, modest: 5000}
    with fresh_postgres_database(server) as url:
        replicas = [payout_cluster(bootstrap, tmp_path / n, namespace, url) for n in "ab"]
        try:
            for replica in replicas:  # one at a time: the first creates the schema
                replica.start("payout")
                replica.wait_ready("payout")
            settled = [
                commission(COMMISSION_SETTLED, rich, "c-1", 12000, "e-1"),
                commission(COMMISSION_SETTLED, rich, "c-2", 8000, "e-2"),
                commission(COMMISSION_SETTLED, modest, "c-3", 5000, "e-3"),
            ]
            await publish(bootstrap, namespace + COMMISSIONS, settled)
            burst = plan_burst(rich, modest)
            answers, elapsed, balances = await withdraw_in_parallel(replicas, credited, burst)

            statuses = Counter(a.status_code for a in answers)
            print(f"\n{len(burst)} withdrawals over 2 replicas in {elapsed:.2f}s: {statuses}")
            server_errors = [a.text for a in answers if a.status_code >= 500]
            assert set(statuses) <= {200, 201, 409}, server_errors
            refusals = {a.json()["error"]["code"] for a in answers if a.status_code == 409}
            assert refusals <= {"insufficient_balance"}
            assert statuses[200] > 0, "no shared key was retried after it created a withdrawal"
            each_key_made_at_most_one_withdrawal(burst, answers)

            stored = rows(
                url, "SELECT distributor_id, idempotency_key, amount_fen FROM po_withdrawal"
            )
            assert len(stored) == statuses[201]
            for distributor, total in credited.items():
                held = sum(amount for d, _, amount in stored if d == distributor)
                assert held <= total, f"{distributor} overdrawn: {held} > {total}"
                assert balances[distributor] == {
                    "available_fen": total - held,
                    "on_hold_fen": held,
                    "paid_out_fen": 0,
                }
            # 1000 fen at a time takes exactly what is there.
            assert sum(1 for d, *_ in stored if d == modest) == 5
            refused_a_thousand = any(
                a.status_code == 409 and (d, amount) == (rich, 1000)
                for (d, _, amount, _), a in zip(burst, answers, strict=True)
            )
            assert not refused_a_thousand or balances[rich]["available_fen"] < 1000

            # Each withdrawal was requested and approved on the topic, whichever replica took it.
            payouts = await read_all(bootstrap, namespace + PAYOUTS, expect=2 * len(stored))
            assert len({decode(r.value, r.headers).id for r in payouts}) == 2 * len(stored)
            checked = await asyncio.to_thread(reconcile, bootstrap, namespace, url)
            assert checked.returncode == 0, checked.stdout + checked.stderr
        finally:
            for replica in replicas:
                stopped_cleanly(replica)


def plan_burst(rich: str, modest: str) -> Burst:
    """Far more than either balance holds, in six rounds. Each round sends every shared key
    once (five per distributor, each round to the other replica), then new keys: ten of the
    rich distributor, four of the modest one."""
    burst: Burst = []
    for round_ in range(6):
        burst += [
            (d, f"retry-{k}", 1000, (k + round_) % 2) for d in (rich, modest) for k in range(5)
        ]
        burst += [(rich, f"k-{round_}-{i}", (1000, 1500, 2500)[i % 3], i % 2) for i in range(10)]
        burst += [(modest, f"k-{round_}-{i}", 1000, i % 2) for i in range(4)]
    return burst


async def withdraw_in_parallel(
    replicas: list[Cluster], credited: dict[str, int], burst: Burst
) -> tuple[list[httpx.Response], float, dict[str, Any]]:
    """Send the whole burst at once, alternating replicas; then read each balance."""
    clients = [
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{r.ports['payout']}",
            timeout=120,
            limits=httpx.Limits(max_connections=len(burst)),
        )
        for r in replicas
    ]
    try:
        for client in clients:
            for distributor, amount in credited.items():
                await eventually(
                    partial(balance_is, client, distributor, amount), "credits on each replica"
                )
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                clients[replica].post(
                    "/v1/withdrawals", json=withdrawal(amount), headers=headers(d, key=key)
                )
                for d, key, amount, replica in burst
            )
        )
        elapsed = time.monotonic() - started
        balances = {}
        for distributor in credited:
            response = await clients[-1].get(f"/v1/distributors/{distributor}/balance", headers=OPS)
            balances[distributor] = response.json()
        return answers, elapsed, balances
    finally:
        for client in clients:
            await client.aclose()


def each_key_made_at_most_one_withdrawal(burst: Burst, answers: list[httpx.Response]) -> None:
    by_key: dict[tuple[str, str], list[httpx.Response]] = defaultdict(list)
    for (distributor, key, _, _), answer in zip(burst, answers, strict=True):
        by_key[(distributor, key)].append(answer)
    for sent_as, tries in by_key.items():
        made = [t for t in tries if t.status_code in (200, 201)]
        assert sum(t.status_code == 201 for t in tries) <= 1, sent_as
        assert len({t.json()["withdrawal_id"] for t in made}) <= 1, sent_as
        # The balance only shrinks during the burst: a key refused once is refused every time.
        assert not made or len(made) == len(tries), f"{sent_as}: refused, then created"
