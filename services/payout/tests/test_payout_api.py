"""The HTTP API on a real SQLite store: withdrawals, reviews, balances, roles, bad input and
concurrent requests. The Kafka lifespan is not started; settled commission is fed through the
service's own batch processor."""

from __future__ import annotations

import dataclasses
import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Client, Response
from sqlalchemy import func
from sqlmodel import Session, SQLModel, select

from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from fx_common.testing import events_published, fresh_postgres_database, record
from payout import store
from payout.api import GATEWAY_KEY
from payout.app import HISTORY, SPEC
from payout.domain import Withdrawal
from payout.settings import PayoutSettings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
SECRET = "payout-test-secret-of-at-least-32-bytes"
OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"


class RecordingGateway:
    def __init__(self) -> None:
        self.submitted: list[Withdrawal] = []

    def submit(self, withdrawal: Withdrawal) -> None:
        self.submitted.append(withdrawal)


@dataclasses.dataclass
class Service:
    runtime: ServiceRuntime
    client: Client  # a TestClient, typed by its httpx base
    gateway: RecordingGateway

    def settle(self, distributor_id: str, amount_fen: int, commission_id: str) -> None:
        data = {
            **SAMPLES["fx.commission.settled"],
            "commission_id": commission_id,
            "distributor_id": distributor_id,
            "amount_fen": amount_fen,
        }
        event = record("fx.commission.settled", data, time=T0, event_id=f"settled-{commission_id}")
        assert self.runtime.processor.process([event]).applied == 1

    def reverse(self, distributor_id: str, amount_fen: int, event_id: str) -> None:
        data = {
            **SAMPLES["fx.commission.reversed"],
            "distributor_id": distributor_id,
            "amount_fen": amount_fen,
        }
        event = record("fx.commission.reversed", data, time=T0, event_id=event_id)
        assert self.runtime.processor.process([event]).applied == 1

    def published(self) -> list[Event]:
        events = events_published(self.runtime.engine)
        assert events == events_published(self.runtime.engine, topic="fx.payouts.v1")
        return events

    def counts(self) -> dict[str, int]:
        """How many rows each table holds: "nothing written" means these do not change."""
        tables: list[type[SQLModel]] = [
            store.WithdrawalRow,
            store.LedgerEntryRow,
            store.WithdrawalStepRow,
            db.OutboxRecord,
        ]
        with Session(self.runtime.engine) as session:
            return {
                t.__name__: session.exec(select(func.count()).select_from(t)).one() for t in tables
            }


def auth(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


OPS = auth("ops-1", "ops")


def build(tmp_path: Path, database_url: str | None = None, **overrides: Any) -> Service:
    settings = PayoutSettings(
        database_url=database_url or f"sqlite:///{tmp_path / 'payout.db'}",
        jwt_secret=SECRET,
        clock="simulated",
        clock_start=T0,
        **overrides,
    )
    gateway = RecordingGateway()
    spec = dataclasses.replace(SPEC, extra={GATEWAY_KEY: gateway})

    runtime = ServiceRuntime(spec, settings)
    migrations.upgrade(runtime.engine, HISTORY)
    return Service(runtime, TestClient(create_app(spec, runtime)), gateway)


def close(service: Service) -> None:
    service.runtime.engine.dispose()


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    built = build(tmp_path)
    yield built
    close(built)


def postgres_database() -> AbstractContextManager[str]:
    """An empty database on the test server (`make test` starts it), dropped afterwards."""
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    return fresh_postgres_database(server, "fx_t_payout")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Service]:
    """The service on each store it runs on: the account lock is dialect-specific."""
    with ExitStack() as stack:
        url = stack.enter_context(postgres_database()) if request.param == "postgres" else None
        built = build(tmp_path, database_url=url)
        stack.callback(close, built)
        yield built


def withdraw(
    service: Service,
    key: str | None,
    amount_fen: Any = 3000,
    *,
    who: str = "d-1",
    method: str = "wechat_wallet",
    account: str = OPENID,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {"amount_fen": amount_fen, "method": method, "account": account, **extra}
    sent = dict(headers if headers is not None else auth(who))
    if key is not None:
        sent["Idempotency-Key"] = key
    return service.client.post("/v1/withdrawals", json=body, headers=sent)


def balance_of(service: Service, distributor_id: str = "d-1") -> dict[str, int]:
    response = service.client.get(f"/v1/distributors/{distributor_id}/balance", headers=OPS)
    assert response.status_code == 200
    body: dict[str, int] = response.json()
    return body


def error_code(response: Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- the happy paths -----------------------------------------------------------------------


def test_a_small_withdrawal_is_held_and_approved_at_once(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    response = withdraw(service, "k-1", 3000)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "approved" and body["distributor_id"] == "d-1"
    assert (body["amount_fen"], body["fee_fen"], body["net_fen"]) == (3000, 0, 3000)
    assert body["requested_at"] == body["approved_at"] == "2026-03-01T12:00:00Z"
    assert balance_of(service) == {"available_fen": 7000, "on_hold_fen": 3000, "paid_out_fen": 0}
    events = service.published()
    assert [e.type for e in events] == ["fx.withdrawal.requested", "fx.withdrawal.approved"]
    assert all(e.time == T0 and e.subject == body["withdrawal_id"] for e in events)
    assert events[0].data.model_dump(exclude_none=True) == {
        "withdrawal_id": body["withdrawal_id"],
        "distributor_id": "d-1",
        "amount_fen": 3000,
        "fee_fen": 0,
        "method": "wechat_wallet",
        "actor": "d-1",
    }
    assert events[1].data.actor is None  # type: ignore[attr-defined]  # the service approved it
    assert [w.withdrawal_id for w in service.gateway.submitted] == [body["withdrawal_id"]]


def test_a_large_withdrawal_waits_for_ops_then_is_paid(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 80000, "c-1")
    created = withdraw(service, "k-1", 60000, method="bank_card", account="6222 0212 3456 7894")
    assert created.status_code == 201
    withdrawal = created.json()
    assert (withdrawal["status"], withdrawal["account"]) == ("requested", "6222021234567894")
    assert service.gateway.submitted == []
    wid = withdrawal["withdrawal_id"]

    approved = service.client.post(f"/v1/withdrawals/{wid}/approve", headers=OPS)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert [w.withdrawal_id for w in service.gateway.submitted] == [wid]
    paid = service.client.post(
        f"/v1/withdrawals/{wid}/mark-paid", json={"transfer_ref": "bank-tr-1"}, headers=OPS
    )
    assert paid.status_code == 200
    assert (paid.json()["status"], paid.json()["transfer_ref"]) == ("paid", "bank-tr-1")
    assert balance_of(service) == {"available_fen": 20000, "on_hold_fen": 0, "paid_out_fen": 60000}
    events = service.published()
    assert [e.type for e in events] == [
        "fx.withdrawal.requested",
        "fx.withdrawal.approved",
        "fx.withdrawal.paid",
    ]
    assert events[-1].data.transfer_ref == "bank-tr-1"  # type: ignore[attr-defined]


def test_rejection_returns_the_hold_once(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 80000, "c-1")
    wid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]
    assert balance_of(service)["available_fen"] == 20000
    rejected = service.client.post(
        f"/v1/withdrawals/{wid}/reject", json={"reason": "account name mismatch"}, headers=OPS
    )
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["reason"]) == (
        "rejected",
        "account name mismatch",
    )
    assert balance_of(service) == {"available_fen": 80000, "on_hold_fen": 0, "paid_out_fen": 0}
    before = service.counts()
    again = service.client.post(
        f"/v1/withdrawals/{wid}/reject", json={"reason": "again"}, headers=OPS
    )
    assert again.status_code == 200 and again.json()["reason"] == "account name mismatch"
    assert service.counts() == before
    late = service.client.post(f"/v1/withdrawals/{wid}/approve", headers=OPS)
    assert (late.status_code, error_code(late)) == (409, "invalid_transition")
    assert [e.type for e in service.published()][-1] == "fx.withdrawal.rejected"
    assert balance_of(service)["available_fen"] == 80000


def test_a_failed_transfer_returns_the_hold(service: Service) -> None:
    service.settle("d-1", 10000, "c-1")
    wid = withdraw(service, "k-1", 4000).json()["withdrawal_id"]
    failed = service.client.post(
        f"/v1/withdrawals/{wid}/mark-failed", json={"reason": "wallet not verified"}, headers=OPS
    )
    assert failed.status_code == 200 and failed.json()["status"] == "failed"
    assert balance_of(service) == {"available_fen": 10000, "on_hold_fen": 0, "paid_out_fen": 0}
    event = service.published()[-1]
    assert (event.type, event.data.reason) == ("fx.withdrawal.failed", "wallet not verified")  # type: ignore[attr-defined]
    paid = service.client.post(
        f"/v1/withdrawals/{wid}/mark-paid", json={"transfer_ref": "x"}, headers=OPS
    )
    assert paid.status_code == 409


def test_mark_paid_is_repeatable_with_the_same_reference_only(service: Service) -> None:
    service.settle("d-1", 10000, "c-1")
    wid = withdraw(service, "k-1", 4000).json()["withdrawal_id"]
    url = f"/v1/withdrawals/{wid}/mark-paid"
    assert service.client.post(url, json={"transfer_ref": "wx-1"}, headers=OPS).status_code == 200
    before = service.counts()
    assert service.client.post(url, json={"transfer_ref": "wx-1"}, headers=OPS).status_code == 200
    other = service.client.post(url, json={"transfer_ref": "wx-2"}, headers=OPS)
    assert (other.status_code, error_code(other)) == (409, "invalid_transition")
    missing = service.client.post(url, json={}, headers=OPS)
    assert (missing.status_code, error_code(missing)) == (422, "invalid_request")
    assert service.counts() == before
    assert balance_of(service) == {"available_fen": 6000, "on_hold_fen": 0, "paid_out_fen": 4000}


def test_the_fee_is_taken_from_the_amount(tmp_path: Path) -> None:
    service = build(tmp_path, withdrawal_fee_bps=60, min_withdrawal_fen=500)
    try:
        service.settle("d-1", 10000, "c-1")
        body = withdraw(service, "k-1", 1999).json()
        assert (body["amount_fen"], body["fee_fen"], body["net_fen"]) == (1999, 11, 1988)
        assert service.published()[0].data.fee_fen == 11  # type: ignore[attr-defined]
        assert balance_of(service)["available_fen"] == 10000 - 1999
        below = withdraw(service, "k-2", 499)
        assert (below.status_code, error_code(below)) == (422, "below_minimum")
    finally:
        close(service)


# --- idempotency ---------------------------------------------------------------------------


def test_the_same_key_and_body_returns_the_same_withdrawal(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    first = withdraw(service, "k-1", 3000)
    before = service.counts()
    again = withdraw(service, "k-1", 3000, account=f" {OPENID} ")  # the same account
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert service.counts() == before
    assert len(service.gateway.submitted) == 1


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    wid = withdraw(service, "k-1", 3000).json()["withdrawal_id"]
    before = service.counts()
    for changed in (
        {"amount_fen": 3001},
        {"method": "alipay", "account": "13812345678"},
        {"account": "oAnotherOpenid_0123456789abc"},
    ):
        body = {"amount_fen": 3000, "method": "wechat_wallet", "account": OPENID, **changed}
        response = service.client.post(
            "/v1/withdrawals", json=body, headers={**auth("d-1"), "Idempotency-Key": "k-1"}
        )
        assert (response.status_code, error_code(response)) == (422, "idempotency_key_reused")
        assert wid in response.json()["error"]["message"]
    assert service.counts() == before
    assert balance_of(service)["on_hold_fen"] == 3000


def test_keys_are_scoped_per_distributor(service: Service) -> None:
    service.settle("d-1", 10000, "c-1")
    service.settle("d-2", 10000, "c-2")
    one = withdraw(service, "same", 3000, who="d-1").json()
    two = withdraw(service, "same", 3000, who="d-2").json()
    assert one["withdrawal_id"] != two["withdrawal_id"]


@pytest.mark.parametrize(
    ("key", "code"),
    [
        (None, "idempotency_key_required"),
        ("", "idempotency_key_required"),
        ("k" * 129, "invalid_idempotency_key"),
    ],
)
def test_the_idempotency_key_is_required(service: Service, key: str | None, code: str) -> None:
    service.settle("d-1", 10000, "c-1")
    before = service.counts()
    response = withdraw(service, key)
    assert (response.status_code, error_code(response)) == (400, code)
    assert service.counts() == before


def test_a_refused_request_can_be_retried_with_its_key(service: Service) -> None:
    service.settle("d-1", 2000, "c-1")
    refused = withdraw(service, "k-1", 3000)
    assert (refused.status_code, error_code(refused)) == (409, "insufficient_balance")
    service.settle("d-1", 2000, "c-2")
    assert withdraw(service, "k-1", 3000).status_code == 201


# --- refusals and bad input ----------------------------------------------------------------


def test_more_than_available_is_refused(service: Service) -> None:
    service.settle("d-1", 5000, "c-1")
    before = service.counts()
    response = withdraw(service, "k-1", 5001)
    assert (response.status_code, error_code(response)) == (409, "insufficient_balance")
    assert service.counts() == before
    assert withdraw(service, "k-2", 5000).status_code == 201
    empty = withdraw(service, "k-3", 1000)
    assert (empty.status_code, error_code(empty)) == (409, "insufficient_balance")


def test_withdrawals_are_refused_while_a_clawback_leaves_the_balance_negative(
    service: Service,
) -> None:
    service.settle("d-1", 3000, "c-1")
    assert withdraw(service, "k-1", 3000).status_code == 201
    service.reverse("d-1", 2000, "rev-1")
    assert balance_of(service) == {"available_fen": -2000, "on_hold_fen": 3000, "paid_out_fen": 0}
    service.settle("d-1", 2500, "c-2")
    refused = withdraw(service, "k-2", 1000)
    assert (refused.status_code, error_code(refused)) == (409, "insufficient_balance")
    assert "500" in refused.json()["error"]["message"]


def test_a_distributor_without_commission_cannot_withdraw(service: Service) -> None:
    response = withdraw(service, "k-1", 1000, who="d-new")
    assert (response.status_code, error_code(response)) == (409, "insufficient_balance")
    assert balance_of(service, "d-new") == {"available_fen": 0, "on_hold_fen": 0, "paid_out_fen": 0}


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (-1000, "invalid_request"),
        (0, "invalid_request"),
        (1000.5, "invalid_request"),
        (1000.0, "invalid_request"),
        ("1000", "invalid_request"),
        (True, "invalid_request"),
        (None, "invalid_request"),
        (999, "below_minimum"),
    ],
)
def test_amounts_must_be_whole_positive_fen(service: Service, amount: Any, code: str) -> None:
    service.settle("d-1", 10000, "c-1")
    before = service.counts()
    response = withdraw(service, "k-1", amount)
    assert (response.status_code, error_code(response)) == (422, code)
    assert service.counts() == before


@pytest.mark.parametrize(
    ("method", "account", "code"),
    [
        ("paypal", "someone@example.com", "invalid_request"),
        ("WECHAT_WALLET", OPENID, "invalid_request"),
        ("wechat_wallet", "not an openid", "invalid_account"),
        ("alipay", "12345", "invalid_account"),
        ("alipay", "someone@nowhere", "invalid_account"),
        ("bank_card", "6222021234567895", "invalid_account"),
        ("bank_card", "1234", "invalid_account"),
        ("bank_card", "", "invalid_request"),
        ("bank_card", "6" * 300, "invalid_request"),
    ],
)
def test_unknown_methods_and_malformed_accounts_are_refused(
    service: Service, method: str, account: str, code: str
) -> None:
    service.settle("d-1", 10000, "c-1")
    before = service.counts()
    response = withdraw(service, "k-1", 3000, method=method, account=account)
    assert (response.status_code, error_code(response)) == (422, code)
    assert response.json()["error"]["message"]
    assert service.counts() == before


def test_unknown_fields_and_non_json_bodies_are_refused(service: Service) -> None:
    service.settle("d-1", 10000, "c-1")
    before = service.counts()
    extra = withdraw(service, "k-1", 3000, currency="USD")
    assert (extra.status_code, error_code(extra)) == (422, "invalid_request")
    garbage = service.client.post(
        "/v1/withdrawals",
        content=b"amount=3000",
        headers={**auth("d-1"), "Idempotency-Key": "k-2", "Content-Type": "application/json"},
    )
    assert garbage.status_code == 422
    assert service.counts() == before


# --- who may do what -----------------------------------------------------------------------


def test_requests_need_a_valid_token(service: Service) -> None:
    assert error_code(withdraw(service, "k-1", headers={})) == "unauthenticated"
    stranger = issue_token("another-secret-of-at-least-32-bytes", "d-1", "distributor")
    forged = {"Authorization": f"Bearer {stranger}"}
    response = withdraw(service, "k-1", headers=forged)
    assert (response.status_code, error_code(response)) == (401, "invalid_token")
    anonymous = service.client.get("/v1/distributors/d-1/balance")
    assert anonymous.status_code == 401


def test_a_distributor_acts_and_reads_only_for_itself(service: Service) -> None:
    service.settle("d-1", 80000, "c-1")
    service.settle("d-2", 10000, "c-2")
    before = service.counts()
    for_other = withdraw(service, "k-1", 3000, who="d-2", distributor_id="d-1")
    assert (for_other.status_code, error_code(for_other)) == (403, "forbidden")
    assert service.counts() == before
    own = service.client.get("/v1/distributors/d-2/balance", headers=auth("d-2"))
    assert own.status_code == 200
    for url in ("/v1/distributors/d-1/balance", "/v1/distributors/d-1/withdrawals"):
        response = service.client.get(url, headers=auth("d-2"))
        assert (response.status_code, error_code(response)) == (403, "forbidden")
    wid = withdraw(service, "k-1", 60000, who="d-1").json()["withdrawal_id"]
    peek = service.client.get(f"/v1/withdrawals/{wid}", headers=auth("d-2"))
    assert peek.status_code == 403
    assert service.client.get(f"/v1/withdrawals/{wid}", headers=auth("d-1")).status_code == 200


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("approve", None),
        ("reject", {"reason": "no"}),
        ("mark-paid", {"transfer_ref": "tr"}),
        ("mark-failed", {"reason": "no"}),
    ],
)
def test_reviews_and_transfers_are_for_ops_only(
    service: Service, action: str, body: dict[str, str] | None
) -> None:
    service.settle("d-1", 80000, "c-1")
    wid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]
    before = service.counts()
    response = service.client.post(
        f"/v1/withdrawals/{wid}/{action}", json=body, headers=auth("d-1")
    )
    assert (response.status_code, error_code(response)) == (403, "forbidden")
    assert service.counts() == before
    queue = service.client.get("/v1/withdrawals", headers=auth("d-1"))
    assert queue.status_code == 403


def test_ops_may_withdraw_on_behalf_of_a_named_distributor(service: Service) -> None:
    service.settle("d-1", 10000, "c-1")
    unnamed = withdraw(service, "k-1", 3000, headers=OPS)
    assert (unnamed.status_code, error_code(unnamed)) == (422, "distributor_required")
    named = withdraw(service, "k-1", 3000, headers=OPS, distributor_id="d-1")
    assert named.status_code == 201 and named.json()["distributor_id"] == "d-1"


def test_actions_on_unknown_withdrawals_are_not_found(service: Service) -> None:
    for response in (
        service.client.post("/v1/withdrawals/nope/approve", headers=OPS),
        service.client.get("/v1/withdrawals/nope", headers=OPS),
    ):
        assert (response.status_code, error_code(response)) == (404, "not_found")


# --- listings ------------------------------------------------------------------------------


def test_histories_and_the_review_queue(service: Service) -> None:
    service.settle("d-1", 200000, "c-1")
    service.settle("d-2", 100000, "c-2")
    small = withdraw(service, "k-1", 3000).json()["withdrawal_id"]
    service.runtime.clock.advance_to(T0.replace(hour=13))  # type: ignore[attr-defined]
    large = withdraw(service, "k-2", 70000).json()["withdrawal_id"]
    other = withdraw(service, "k-1", 90000, who="d-2").json()["withdrawal_id"]

    history = service.client.get("/v1/distributors/d-1/withdrawals", headers=auth("d-1")).json()
    assert [w["withdrawal_id"] for w in history["withdrawals"]] == [large, small]
    approved = service.client.get(
        "/v1/distributors/d-1/withdrawals?status=approved", headers=auth("d-1")
    ).json()
    assert [w["withdrawal_id"] for w in approved["withdrawals"]] == [small]
    queue = service.client.get("/v1/withdrawals?status=requested", headers=OPS).json()
    assert sorted(w["withdrawal_id"] for w in queue["withdrawals"]) == sorted([large, other])
    bad = service.client.get("/v1/withdrawals?status=lost", headers=OPS)
    assert bad.status_code == 422


def test_the_withdrawal_page_shows_balance_rules_pending_and_history(service: Service) -> None:
    service.settle("d-1", 100000, "c-1")
    clock = service.runtime.clock
    ids = []
    for hour, (key, amount) in enumerate([("k-1", 3000), ("k-2", 60000), ("k-3", 2000)], 13):
        clock.advance_to(T0.replace(hour=hour))  # type: ignore[attr-defined]
        ids.append(withdraw(service, key, amount).json()["withdrawal_id"])
    paid, large, open_small = ids
    service.client.post(
        f"/v1/withdrawals/{paid}/mark-paid", json={"transfer_ref": "wx-1"}, headers=OPS
    )

    page = service.client.get("/v1/distributors/d-1/withdrawal-page", headers=auth("d-1"))
    assert page.status_code == 200
    body = page.json()
    assert body["balance"] == {"available_fen": 35000, "on_hold_fen": 62000, "paid_out_fen": 3000}
    assert (body["can_withdraw"], body["blocked_reason"], body["max_withdrawal_fen"]) == (
        True,
        None,
        35000,
    )
    assert body["rules"] == {
        "min_withdrawal_fen": 1000,
        "withdrawal_fee_bps": 0,
        "auto_approve_limit_fen": 50000,
        "methods": ["wechat_wallet", "alipay", "bank_card"],
    }
    assert [(w["withdrawal_id"], w["status"]) for w in body["pending"]] == [
        (large, "requested"),
        (open_small, "approved"),
    ]
    assert [w["withdrawal_id"] for w in body["history"]] == [open_small, large, paid]
    latest = service.client.get(
        "/v1/distributors/d-1/withdrawal-page?history_limit=1", headers=OPS
    ).json()
    assert [w["withdrawal_id"] for w in latest["history"]] == [open_small]


def test_the_withdrawal_page_says_why_nothing_can_be_withdrawn(service: Service) -> None:
    service.settle("d-1", 5000, "c-1")
    withdraw(service, "k-1", 4000)
    service.reverse("d-1", 3000, "clawback-1")
    negative = service.client.get("/v1/distributors/d-1/withdrawal-page", headers=auth("d-1"))
    assert negative.json()["balance"]["available_fen"] == -2000
    assert (negative.json()["can_withdraw"], negative.json()["blocked_reason"]) == (
        False,
        "negative_balance",
    )
    assert negative.json()["max_withdrawal_fen"] == 0
    service.settle("d-2", 999, "c-2")
    small = service.client.get("/v1/distributors/d-2/withdrawal-page", headers=auth("d-2")).json()
    assert (small["can_withdraw"], small["blocked_reason"]) == (False, "below_minimum")
    empty = service.client.get("/v1/distributors/d-3/withdrawal-page", headers=auth("d-3")).json()
    assert (empty["balance"]["available_fen"], empty["pending"], empty["history"]) == (0, [], [])


def test_the_withdrawal_page_is_for_its_distributor_and_ops(service: Service) -> None:
    url = "/v1/distributors/d-1/withdrawal-page"
    assert service.client.get(url, headers=auth("d-2")).status_code == 403
    assert service.client.get(url).status_code == 401
    assert service.client.get(url, headers=OPS).status_code == 200
    assert service.client.get(url + "?history_limit=0", headers=OPS).status_code == 422


# --- concurrency ---------------------------------------------------------------------------


def in_parallel(count: int, send: Any) -> list[Response]:
    """Release `count` threads at once, each sending one request."""
    start = threading.Barrier(count)
    results: list[Response | None] = [None] * count

    def run(index: int) -> None:
        start.wait()
        results[index] = send(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def test_parallel_requests_never_overdraw(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    responses = in_parallel(24, lambda i: withdraw(service, f"k-{i}", 1000 + 500 * (i % 3)))
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created = [r.json() for r in responses if r.status_code == 201]
    held = sum(w["amount_fen"] for w in created)
    assert held <= 10000
    assert balance_of(service) == {
        "available_fen": 10000 - held,
        "on_hold_fen": held,
        "paid_out_fen": 0,
    }
    # Whatever is left is less than the smallest amount anyone asked for.
    assert 10000 - held < 1000 or statuses[409] == 0
    with Session(service.runtime.engine) as session:
        holds = session.exec(select(func.count()).where(store.LedgerEntryRow.kind == "hold")).one()
    assert holds == len(created)


def test_parallel_requests_of_one_amount_take_exactly_what_is_there(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    responses = in_parallel(20, lambda i: withdraw(service, f"k-{i}", 1000))
    assert Counter(r.status_code for r in responses) == {201: 10, 409: 10}
    assert balance_of(service) == {"available_fen": 0, "on_hold_fen": 10000, "paid_out_fen": 0}


def test_parallel_retries_of_one_key_create_one_withdrawal(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 10000, "c-1")
    responses = in_parallel(16, lambda i: withdraw(service, "same-key", 1000))
    assert Counter(r.status_code for r in responses) == {201: 1, 200: 15}
    assert len({r.json()["withdrawal_id"] for r in responses}) == 1
    assert service.counts()["WithdrawalRow"] == 1
    assert balance_of(service) == {"available_fen": 9000, "on_hold_fen": 1000, "paid_out_fen": 0}
    assert len(service.published()) == 2


def test_parallel_reviews_settle_a_hold_once(any_store: Service) -> None:
    service = any_store
    service.settle("d-1", 80000, "c-1")
    wid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]

    def review(index: int) -> Response:
        if index % 2:
            return service.client.post(f"/v1/withdrawals/{wid}/approve", headers=OPS)
        return service.client.post(
            f"/v1/withdrawals/{wid}/reject", json={"reason": "race"}, headers=OPS
        )

    responses = in_parallel(10, review)
    assert set(Counter(r.status_code for r in responses)) <= {200, 409}
    final = service.client.get(f"/v1/withdrawals/{wid}", headers=OPS).json()["status"]
    types = [e.type for e in service.published()]
    assert types.count("fx.withdrawal.approved") + types.count("fx.withdrawal.rejected") == 1
    expected_available = 80000 if final == "rejected" else 20000
    assert balance_of(service)["available_fen"] == expected_available


def test_the_ledger_lists_every_entry_newest_first_a_page_at_a_time(service: Service) -> None:
    service.settle("d-1", 80000, "c-1")
    service.settle("d-2", 5000, "c-9")
    wid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]
    service.client.post(f"/v1/withdrawals/{wid}/reject", json={"reason": "name"}, headers=OPS)
    service.reverse("d-1", 3000, "rev-1")
    url = "/v1/distributors/d-1/ledger"
    whole = service.client.get(url, headers=auth("d-1"))
    assert whole.status_code == 200, whole.text
    entries = whole.json()["entries"]
    assert [(e["kind"], e["amount_fen"]) for e in entries] == [
        ("debit", -3000), ("release", 60000), ("hold", -60000), ("credit", 80000),
    ]  # fmt: skip
    assert entries[3]["commission_id"] == "c-1"
    assert {e["withdrawal_id"] for e in entries[1:3]} == {wid}
    assert whole.json()["next_before_id"] is None
    # The entries add up to the balance (available: nothing is paid out here).
    assert sum(e["amount_fen"] for e in entries) == balance_of(service)["available_fen"]

    first = service.client.get(url, headers=OPS, params={"limit": 3}).json()
    assert [e["kind"] for e in first["entries"]] == ["debit", "release", "hold"]
    rest = service.client.get(
        url, headers=OPS, params={"limit": 3, "before_id": first["next_before_id"]}
    ).json()
    assert ([e["kind"] for e in rest["entries"]], rest["next_before_id"]) == (["credit"], None)


def test_the_ledger_is_for_its_distributor_and_ops_only(service: Service) -> None:
    service.settle("d-1", 80000, "c-1")
    url = "/v1/distributors/d-1/ledger"
    other = service.client.get(url, headers=auth("d-2"))
    assert (other.status_code, error_code(other)) == (403, "forbidden")
    assert service.client.get(url).status_code == 401
    for bad in ({"limit": 0}, {"limit": 501}, {"before_id": 0}, {"before_id": "x"}):
        refused = service.client.get(url, headers=OPS, params=bad)
        assert refused.status_code == 422, bad


# --- the audit: who did what ---------------------------------------------------------------


def test_each_change_records_who_made_it_in_the_store_the_events_and_the_reads(
    any_store: Service,
) -> None:
    service = any_store
    service.settle("d-1", 200000, "c-1")
    paid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]
    rejected = withdraw(service, "k-2", 60000).json()["withdrawal_id"]
    failed = withdraw(service, "k-3", 60000).json()["withdrawal_id"]
    reviewer, payer = auth("ops-anna", "ops"), auth("ops-bo", "ops")
    for wid in (paid, failed):
        assert service.client.post(f"/v1/withdrawals/{wid}/approve", headers=reviewer).is_success
    assert service.client.post(
        f"/v1/withdrawals/{paid}/mark-paid", json={"transfer_ref": "tr-9"}, headers=payer
    ).is_success
    assert service.client.post(
        f"/v1/withdrawals/{rejected}/reject", json={"reason": "name mismatch"}, headers=reviewer
    ).is_success
    assert service.client.post(
        f"/v1/withdrawals/{failed}/mark-failed", json={"reason": "card closed"}, headers=payer
    ).is_success

    actors = [(e.type.rsplit(".", 1)[1], e.data.actor) for e in service.published()]  # type: ignore[attr-defined]
    assert actors == [
        ("requested", "d-1"),
        ("requested", "d-1"),
        ("requested", "d-1"),
        ("approved", "ops-anna"),
        ("approved", "ops-anna"),
        ("paid", "ops-bo"),
        ("rejected", "ops-anna"),
        ("failed", "ops-bo"),
    ]
    history = service.client.get(f"/v1/withdrawals/{paid}", headers=OPS).json()["history"]
    own = service.client.get(f"/v1/withdrawals/{paid}", headers=auth("d-1")).json()["history"]
    assert [(s["status"], s["actor"]) for s in own] == [  # only ops see who
        ("requested", None),
        ("approved", None),
        ("paid", None),
    ]
    assert [(s["status"], s["actor"], s["transfer_ref"]) for s in history] == [
        ("requested", "d-1", None),
        ("approved", "ops-anna", None),
        ("paid", "ops-bo", "tr-9"),
    ]
    assert all(s["at"] == "2026-03-01T12:00:00Z" for s in history)
    listed = service.client.get("/v1/distributors/d-1/withdrawals", headers=OPS).json()
    by_id = {w["withdrawal_id"]: w["history"] for w in listed["withdrawals"]}
    assert [(s["status"], s["actor"], s["reason"]) for s in by_id[rejected]] == [
        ("requested", "d-1", None),
        ("rejected", "ops-anna", "name mismatch"),
    ]
    assert by_id[failed][-1] == {
        "status": "failed",
        "at": "2026-03-01T12:00:00Z",
        "actor": "ops-bo",
        "reason": "card closed",
        "transfer_ref": None,
    }
    with Session(service.runtime.engine) as session:
        stored = session.exec(select(store.WithdrawalStepRow.actor)).all()
    assert sorted(a for a in stored if a is not None).count("ops-bo") == 2


def test_the_audit_route_lists_steps_newest_first_for_ops_only(service: Service) -> None:
    service.settle("d-1", 200000, "c-1")
    service.settle("d-2", 200000, "c-2")
    small = withdraw(service, "k-1", 3000).json()["withdrawal_id"]
    big = withdraw(service, "k-2", 60000, who="d-2").json()["withdrawal_id"]
    assert service.client.post(
        f"/v1/withdrawals/{big}/reject", json={"reason": "fraud check"}, headers=OPS
    ).is_success

    page = service.client.get("/v1/audit", headers=OPS)
    assert page.status_code == 200
    entries = page.json()["entries"]
    assert [(e["withdrawal_id"], e["status"], e["actor"]) for e in entries] == [
        (big, "rejected", "ops-1"),
        (big, "requested", "d-2"),
        (small, "approved", None),  # within the auto-approve limit: the service approved it
        (small, "requested", "d-1"),
    ]
    assert entries[0]["reason"] == "fraud check" and entries[0]["amount_fen"] == 60000
    assert page.json()["next_before_id"] is None

    first = service.client.get("/v1/audit", params={"limit": 1}, headers=OPS).json()
    assert len(first["entries"]) == 1 and first["next_before_id"] == entries[0]["entry_id"]
    rest = service.client.get(
        "/v1/audit", params={"before_id": first["next_before_id"]}, headers=OPS
    ).json()
    assert rest["entries"] == entries[1:]
    mine = service.client.get("/v1/audit", params={"distributor_id": "d-1"}, headers=OPS).json()
    assert {e["withdrawal_id"] for e in mine["entries"]} == {small}

    refused = service.client.get("/v1/audit", headers=auth("d-1"))
    assert refused.status_code == 403
    assert service.client.get("/v1/audit").status_code == 401


def test_a_sub_that_is_not_an_id_is_refused_before_anything_is_written(service: Service) -> None:
    service.settle("d-1", 200000, "c-1")
    wid = withdraw(service, "k-1", 60000).json()["withdrawal_id"]
    before = service.counts()
    response = service.client.post(f"/v1/withdrawals/{wid}/approve", headers=auth("o" * 129, "ops"))
    assert response.status_code == 422 and error_code(response) == "invalid_request"
    assert service.counts() == before
    assert service.client.get(f"/v1/withdrawals/{wid}", headers=OPS).json()["status"] == (
        "requested"
    )
