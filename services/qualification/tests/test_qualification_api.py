"""The HTTP API against a SQLite store, lifespan not started (no broker), simulated clock."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from fx_common import db, migrations
from fx_common.clock import SimulatedClock
from fx_common.contracts.qualification import COMMAND_ACCEPTED
from fx_common.contracts.topics import QUALIFICATION, QUALIFICATION_COMMANDS
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from qualification import store
from qualification.app import HISTORY, SPEC
from qualification.settings import QualificationSettings

START = datetime(2026, 1, 1, 8, tzinfo=UTC)
SECRET = "qualification-test-secret-of-32-bytes"
WEBHOOK_SECRET = "wecom-shared-secret-for-tests"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServiceRuntime]:
    settings = QualificationSettings(
        database_url=f"sqlite:///{tmp_path / 'qualification.db'}",
        clock="simulated",
        clock_start=START,
        jwt_secret=SECRET,
        reapply_cooldown=timedelta(days=7),
        wecom_webhook_secret=WEBHOOK_SECRET,
    )

    runtime = ServiceRuntime(SPEC, settings)
    migrations.upgrade(runtime.engine, HISTORY)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def client(runtime: ServiceRuntime) -> TestClient:
    return TestClient(create_app(SPEC, runtime))


def auth(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


OPS = auth("ops-1", "ops")


def advance(runtime: ServiceRuntime, by: timedelta) -> datetime:
    clock = runtime.clock
    assert isinstance(clock, SimulatedClock)
    clock.advance_to(clock.now() + by)
    return clock.now()


def written(runtime: ServiceRuntime) -> tuple[int, int, int]:
    """Rows in the aggregate table, the history and the outbox."""
    with Session(runtime.engine) as session:

        def count(table: Any) -> int:
            return int(session.exec(select(func.count()).select_from(table)).one())

        return (
            count(store.QualificationRow),
            count(store.HistoryRow),
            count(db.OutboxRecord),
        )


def published_types(runtime: ServiceRuntime, topic: str = QUALIFICATION) -> list[str | None]:
    """The types staged on `topic` (by default the domain events, not the commands')."""
    with Session(runtime.engine) as session:
        rows = session.exec(select(db.OutboxRecord).where(db.OutboxRecord.topic == topic))
        return [row.ce_type for row in rows]


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def qualify(runtime: ServiceRuntime, user_id: str, orders: int = 3) -> None:
    """Qualifying orders through the domain, as the attribution handler would count them."""
    with Session(runtime.engine) as session, session.begin():
        q = store.load(session, user_id)
        assert q is not None and q.confirmed_at is not None
        for n in range(orders):
            paid_at = q.confirmed_at + timedelta(hours=n + 1)
            q.order_attributed(f"o-{n}", paid_at, 100, "binding", at=paid_at)
        written = store.Qualifications(session)
        written.save(q)
        written.write()


def test_the_way_to_distributor_and_out(client: TestClient, runtime: ServiceRuntime) -> None:
    applied = client.post("/v1/applications", json={"wechat_id": "wx-u1"}, headers=auth("u1"))
    assert applied.status_code == 200, applied.text
    assert applied.json() | {"history": []} == {
        "user_id": "u1",
        "status": "applied",
        "qualifying_orders": 0,
        "required_orders": 3,
        "deadline": None,
        "days_left": None,
        "progress": "0 of 3; the assessment starts once customer service confirms the contact",
        "discount_bps": 0,
        "wechat_id": "wx-u1",
        "qualified_via": None,
        "appointed_by": None,
        "appoint_reason": None,
        "history": [],
    }
    confirmed_at = advance(runtime, timedelta(hours=2))
    confirmed = client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    assert confirmed.status_code == 200, confirmed.text
    deadline = confirmed_at + timedelta(days=30)
    assert confirmed.json()["status"] == "assessing"
    assert confirmed.json()["deadline"] == deadline.isoformat().replace("+00:00", "Z")

    qualify(runtime, "u1")
    view = client.get("/v1/distributors/u1", headers=auth("u1")).json()
    assert (
        view["status"],
        view["qualifying_orders"],
        view["discount_bps"],
        view["qualified_via"],
    ) == ("qualified", 3, 500, "assessment")

    revoked = client.post("/v1/distributors/u1/revoke", json={"reason": "fake orders"}, headers=OPS)
    assert revoked.status_code == 200, revoked.text
    assert (revoked.json()["status"], revoked.json()["discount_bps"]) == ("revoked", 0)
    history = client.get("/v1/distributors/u1", headers=OPS).json()["history"]
    assert [(h["type"], h["data"]) for h in history] == [
        ("fx.distributor.applied", {"user_id": "u1"}),
        (
            "fx.distributor.assessment_started",
            {
                "user_id": "u1",
                "deadline": deadline.isoformat().replace("+00:00", "Z"),
                "required_orders": 3,
            },
        ),
        ("fx.distributor.revoked", {"user_id": "u1", "reason": "fake orders"}),
    ]
    assert published_types(runtime) == [h["type"] for h in history]
    # Each accepted command is an event of its own (the replay's input), already in the inbox:
    # the live consumer drops it, and the events it caused name it as their cause.
    assert published_types(runtime, QUALIFICATION_COMMANDS) == [COMMAND_ACCEPTED] * 3
    with Session(runtime.engine) as session:
        commands = session.exec(
            select(db.OutboxRecord).where(db.OutboxRecord.topic == QUALIFICATION_COMMANDS)
        ).all()
        applied = {row.ce_id for row in session.exec(select(db.InboxRecord))}
        causes = {
            row.cause_id
            for row in session.exec(
                select(db.OutboxRecord).where(db.OutboxRecord.topic == QUALIFICATION)
            )
        }
    assert [json.loads(row.value or b"{}")["command"] for row in commands] == [
        "apply",
        "confirm_contact",
        "revoke",
    ]
    assert {row.ce_id for row in commands} == applied == causes


def test_commands_are_idempotent(client: TestClient, runtime: ServiceRuntime) -> None:
    first = client.post("/v1/applications", headers=auth("u1"))
    advance(runtime, timedelta(minutes=5))
    again = client.post("/v1/applications", json={}, headers=auth("u1"))
    assert again.status_code == 200 and again.json() == first.json()
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    before = written(runtime)
    confirmed_again = client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    assert confirmed_again.status_code == 200
    assert written(runtime) == before
    assert published_types(runtime) == [
        "fx.distributor.applied",
        "fx.distributor.assessment_started",
    ]


def test_a_failed_user_applies_again_after_the_cooldown(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    now = advance(runtime, timedelta(days=31))
    runtime.tick(now)
    assert client.get("/v1/distributors/u1", headers=auth("u1")).json()["status"] == "failed"
    assert_error(client.post("/v1/applications", headers=auth("u1")), 409, "reapply_cooldown")
    advance(runtime, timedelta(days=7))
    again = client.post("/v1/applications", headers=auth("u1"))
    assert again.status_code == 200 and again.json()["status"] == "applied"
    assert again.json()["deadline"] is None
    assert published_types(runtime) == [
        "fx.distributor.applied",
        "fx.distributor.assessment_started",
        "fx.distributor.assessment_failed",
        "fx.distributor.applied",
    ]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/applications", None),
        ("post", "/v1/applications/u1/contact-confirmed", None),
        ("post", "/v1/distributors/u1/revoke", {"reason": "x"}),
        ("get", "/v1/distributors/u1", None),
    ],
)
def test_every_endpoint_needs_a_valid_token(
    client: TestClient, runtime: ServiceRuntime, method: str, path: str, body: Any
) -> None:
    missing = client.request(method, path, json=body)
    assert_error(missing, 401, "unauthenticated")
    forged_token = issue_token("another-secret-that-is-32-bytes-long", "u1", "ops")
    forged = {"Authorization": f"Bearer {forged_token}"}
    assert_error(client.request(method, path, json=body, headers=forged), 401, "invalid_token")
    assert written(runtime) == (0, 0, 0)


def test_wrong_roles_are_refused_and_nothing_is_written(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    before = written(runtime)
    refusals = [
        (client.post("/v1/applications", headers=OPS), "applications are made by mall users"),
        (client.post("/v1/applications/u1/contact-confirmed", headers=auth("u1")), "ops role"),
        (
            client.post("/v1/distributors/u1/revoke", json={"reason": "x"}, headers=auth("u1")),
            "ops role",
        ),
        (client.get("/v1/distributors/u1", headers=auth("u2")), "only its own data"),
        (client.get("/v1/distributors/nobody", headers=auth("u2")), "only its own data"),
    ]
    for response, message in refusals:
        assert_error(response, 403, "forbidden")
        assert message in response.json()["error"]["message"]
    assert written(runtime) == before


def test_commands_that_do_not_fit_the_state_answer_409_and_write_nothing(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    before = written(runtime)
    assert_error(client.post("/v1/applications", headers=auth("u1")), 409, "already_assessing")
    revoke = client.post("/v1/distributors/u1/revoke", json={"reason": "x"}, headers=OPS)
    assert_error(revoke, 409, "not_qualified")
    assert "assessing" in revoke.json()["error"]["message"]
    assert written(runtime) == before


def test_the_openapi_document_lists_the_endpoints(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/applications",
        "/v1/applications/{user_id}/contact-confirmed",
        "/v1/distributors/{user_id}/revoke",
        "/v1/distributors/{user_id}",
        "/v1/webhooks/wecom/contact-added",
        "/v1/candidates",
    } <= set(paths)


def test_a_token_whose_sub_is_no_user_id_cannot_apply(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    assert_error(client.post("/v1/applications", headers=auth("u" * 129)), 422, "invalid_request")
    assert written(runtime) == (0, 0, 0)


def test_unknown_users_are_404_and_nothing_is_written(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    for response in (
        client.get("/v1/distributors/nobody", headers=OPS),
        client.get("/v1/distributors/me", headers=auth("me")),
        client.post("/v1/applications/nobody/contact-confirmed", headers=OPS),
        client.post("/v1/distributors/nobody/revoke", json={"reason": "x"}, headers=OPS),
    ):
        assert_error(response, 404, "unknown_user")
        assert "never applied" in response.json()["error"]["message"]
    assert written(runtime) == (0, 0, 0)


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/v1/applications", b"{not json"),
        ("/v1/applications", b'{"wechat_id": 5}'),
        ("/v1/applications", b'{"wechat_id": "   "}'),
        ("/v1/applications", b'{"wechatid": "wx"}'),
        ("/v1/applications", b'["wx"]'),
        ("/v1/distributors/u1/revoke", b""),
        ("/v1/distributors/u1/revoke", b"{}"),
        ("/v1/distributors/u1/revoke", b'{"reason": ""}'),
        ("/v1/distributors/u1/revoke", b'{"reason": "  "}'),
        ("/v1/distributors/u1/revoke", b'{"reason": 42}'),
    ],
)
def test_malformed_bodies_are_422_and_write_nothing(
    client: TestClient, runtime: ServiceRuntime, path: str, content: bytes
) -> None:
    headers = (auth("u2") if path == "/v1/applications" else OPS) | {
        "content-type": "application/json"
    }
    response = client.post(path, content=content, headers=headers)
    assert_error(response, 422, "invalid_request")
    assert written(runtime) == (0, 0, 0)


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FX_REQUIRED_ORDERS", "5")
    monkeypatch.setenv("FX_ASSESSMENT_WINDOW", "P14D")
    monkeypatch.setenv("FX_ASSESSMENT_COUNTS_OWN_ORDERS", "false")
    monkeypatch.setenv("FX_REAPPLY_COOLDOWN", "PT36H")
    monkeypatch.setenv("FX_DISTRIBUTOR_DISCOUNT_BPS", "800")
    settings = QualificationSettings()
    assert settings.policy().required_orders == 5
    assert settings.policy().assessment_window == timedelta(days=14)
    assert settings.policy().counts_own_orders is False
    assert settings.policy().reapply_cooldown == timedelta(hours=36)
    assert settings.distributor_discount_bps == 800
    monkeypatch.setenv("FX_ASSESSMENT_WINDOW", "P0D")
    with pytest.raises(ValueError, match="longer than zero"):
        QualificationSettings()


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "FX_HTTP_PORT",
        "FX_REQUIRED_ORDERS",
        "FX_ASSESSMENT_WINDOW",
        "FX_ASSESSMENT_COUNTS_OWN_ORDERS",
        "FX_REAPPLY_COOLDOWN",
        "FX_DISTRIBUTOR_DISCOUNT_BPS",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = QualificationSettings()
    assert (settings.service, settings.http_port) == ("qualification", 8102)
    assert settings.policy().required_orders == 3
    assert settings.policy().assessment_window == timedelta(days=30)
    assert settings.policy().counts_own_orders is True
    assert settings.policy().reapply_cooldown == timedelta(0)
    assert settings.distributor_discount_bps == 500


# --- the assessment pop-up -------------------------------------------------------------------


def test_the_pop_up_shows_the_count_and_the_days_left(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    qualify(runtime, "u1", orders=2)

    def pop_up() -> tuple[Any, ...]:
        view = client.get("/v1/distributors/u1", headers=auth("u1")).json()
        keys = ("qualifying_orders", "required_orders", "days_left", "progress")
        return tuple(view[key] for key in keys)

    assert pop_up() == (2, 3, 30, "2 of 3, 30 days left")
    advance(runtime, timedelta(days=19, hours=1))
    assert pop_up() == (2, 3, 11, "2 of 3, 11 days left")  # 10 days 23 hours, rounded up
    advance(runtime, timedelta(days=10))
    assert pop_up() == (2, 3, 1, "2 of 3, 1 day left")
    now = advance(runtime, timedelta(hours=23, seconds=1))
    assert pop_up() == (2, 3, 0, "2 of 3, 0 days left")  # past the deadline, not yet swept
    runtime.tick(now)
    assert pop_up() == (2, 3, None, "2 of 3, the assessment window closed")


def test_the_pop_up_after_qualifying_and_revocation(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    qualify(runtime, "u1")
    view = client.get("/v1/distributors/u1", headers=auth("u1")).json()
    assert (view["days_left"], view["progress"]) == (None, "3 of 3, qualified")
    client.post("/v1/distributors/u1/revoke", json={"reason": "fake orders"}, headers=OPS)
    view = client.get("/v1/distributors/u1", headers=auth("u1")).json()
    assert view["progress"] == "revoked: fake orders"


# --- the ops list of candidates --------------------------------------------------------------


def candidates(client: TestClient, query: str = "") -> Any:
    response = client.get(f"/v1/candidates{query}", headers=OPS)
    assert response.status_code == 200, response.text
    return response.json()


def test_ops_list_candidates_by_state_and_deadline(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    for user in ("early", "late", "waiting", "done"):
        client.post("/v1/applications", json={"wechat_id": f"wx-{user}"}, headers=auth(user))
    for user in ("done", "early"):
        client.post(f"/v1/applications/{user}/contact-confirmed", headers=OPS)
    qualify(runtime, "done")
    advance(runtime, timedelta(days=3))
    client.post("/v1/applications/late/contact-confirmed", headers=OPS)
    qualify(runtime, "late", orders=1)
    early_deadline = START + timedelta(days=30)

    assessing = candidates(client, "?status=assessing")
    assert (assessing["total"], assessing["page"], assessing["page_size"]) == (2, 1, 50)
    assert [
        (c["user_id"], c["qualifying_orders"], c["required_orders"], c["days_left"])
        for c in assessing["items"]
    ] == [("early", 0, 3, 27), ("late", 1, 3, 30)]
    first = assessing["items"][0]
    assert first["deadline"] == early_deadline.isoformat().replace("+00:00", "Z")
    assert (first["status"], first["wechat_id"]) == ("assessing", "wx-early")
    assert first["confirmed_at"] == START.isoformat().replace("+00:00", "Z")

    everyone = candidates(client)
    assert [c["user_id"] for c in everyone["items"]] == ["done", "early", "late", "waiting"]
    assert [c["status"] for c in everyone["items"]] == [
        "qualified",
        "assessing",
        "assessing",
        "applied",
    ]
    due = (early_deadline + timedelta(seconds=1)).isoformat()
    due_soon = candidates(client, f"?status=assessing&deadline_before={due.replace('+', '%2B')}")
    assert [c["user_id"] for c in due_soon["items"]] == ["early"]
    assert [c["user_id"] for c in candidates(client, "?status=applied")["items"]] == ["waiting"]
    assert candidates(client, "?status=failed") == {
        "items": [],
        "page": 1,
        "page_size": 50,
        "total": 0,
    }

    second = candidates(client, "?page=2&page_size=1")
    assert ([c["user_id"] for c in second["items"]], second["total"]) == (["early"], 4)
    assert candidates(client, "?page=9&page_size=1")["items"] == []


@pytest.mark.parametrize(
    "query",
    [
        "?status=none",
        "?status=candidate",
        "?deadline_before=2026-02-01T00:00:00",  # no offset: ambiguous
        "?deadline_before=soon",
        "?page=0",
        "?page_size=0",
        "?page_size=201",
        "?page=two",
    ],
)
def test_bad_candidate_queries_are_422(client: TestClient, query: str) -> None:
    assert_error(client.get(f"/v1/candidates{query}", headers=OPS), 422, "invalid_request")


def test_only_ops_list_candidates(client: TestClient) -> None:
    response = client.get("/v1/candidates", headers=auth("u1"))
    assert_error(response, 403, "forbidden")
    assert_error(client.get("/v1/candidates"), 401, "unauthenticated")


# --- the WeCom-style contact webhook ---------------------------------------------------------

WEBHOOK = "/v1/webhooks/wecom/contact-added"


def signed(
    body: dict[str, Any] | bytes,
    *,
    timestamp: int | None = None,
    nonce: str = "n-1",
    secret: str = WEBHOOK_SECRET,
) -> tuple[bytes, dict[str, str]]:
    """A callback as the customer-service system sends it: the body and its signature."""
    if isinstance(body, bytes):
        raw = body
    else:
        body = {"timestamp": timestamp, "nonce": nonce} | body
        raw = json.dumps(body).encode()
        timestamp, nonce = body["timestamp"], body["nonce"]
    message = f"{timestamp}.{nonce}.".encode() + raw
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return raw, {"content-type": "application/json", "X-Fx-Signature": f"sha256={signature}"}


def now_s(runtime: ServiceRuntime) -> int:
    return int(runtime.clock.now().timestamp())


def test_the_webhook_confirms_the_contact_like_ops_do(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    confirmed_at = advance(runtime, timedelta(hours=1))
    body = {"user_id": "u1", "external_contact_id": "wmXyz123", "unknown_field": 1}
    raw, headers = signed(body, timestamp=now_s(runtime))
    response = client.post(WEBHOOK, content=raw, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "assessing"
    deadline = confirmed_at + timedelta(days=30)
    assert response.json()["deadline"] == deadline.isoformat().replace("+00:00", "Z")

    before = written(runtime)
    raw, headers = signed({"user_id": "u1"}, timestamp=now_s(runtime), nonce="n-2")
    again = client.post(WEBHOOK, content=raw, headers=headers)
    assert (again.status_code, again.json()["status"]) == (200, "assessing")
    ops_again = client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    assert (ops_again.status_code, ops_again.json()["deadline"]) == (200, again.json()["deadline"])
    assert written(runtime) == before
    assert published_types(runtime) == [
        "fx.distributor.applied",
        "fx.distributor.assessment_started",
    ]


def test_a_signature_exactly_five_minutes_old_is_accepted(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    raw, headers = signed({"user_id": "u1"}, timestamp=now_s(runtime) - 300)
    assert client.post(WEBHOOK, content=raw, headers=headers).status_code == 200


def bad_signatures(runtime: ServiceRuntime) -> list[tuple[bytes, dict[str, str], str]]:
    now = now_s(runtime)
    raw, good = signed({"user_id": "u1"}, timestamp=now)
    tampered = raw.replace(b'"u1"', b'"u2"')
    return [
        (raw, {"content-type": "application/json"}, "invalid_signature"),
        (raw, signed({"user_id": "u1"}, timestamp=now, secret="guessed")[1], "invalid_signature"),
        (raw, good | {"X-Fx-Signature": good["X-Fx-Signature"][7:]}, "invalid_signature"),
        (raw, good | {"X-Fx-Signature": "sha1=" + good["X-Fx-Signature"][7:]}, "invalid_signature"),
        (raw, good | {"X-Fx-Signature": "sha256=zz"}, "invalid_signature"),
        (tampered, good, "invalid_signature"),
        # signed over another nonce than the body's
        (raw, signed(raw, timestamp=now, nonce="n-2")[1], "invalid_signature"),
        (*signed({"user_id": "u1"}, timestamp=now - 301), "stale_timestamp"),
        (*signed({"user_id": "u1"}, timestamp=now + 301), "stale_timestamp"),
    ]


def test_bad_signatures_are_401_and_write_nothing(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications", headers=auth("u2"))
    before = written(runtime)
    for raw, headers, code in bad_signatures(runtime):
        response = client.post(WEBHOOK, content=raw, headers=headers)
        assert_error(response, 401, code)
    assert written(runtime) == before
    for user in ("u1", "u2"):
        assert client.get(f"/v1/distributors/{user}", headers=OPS).json()["status"] == "applied"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"user_id": "u1", "nonce": "n-1"}',
        b'{"user_id": "u1", "timestamp": 1767254400}',
        b'{"user_id": "", "timestamp": 1767254400, "nonce": "n-1"}',
        b'{"user_id": "u1", "timestamp": "1767254400", "nonce": "n-1"}',
        b'{"user_id": "u1", "timestamp": 1767254400.5, "nonce": "n-1"}',
        b'{"user_id": "u1", "timestamp": -1, "nonce": "n-1"}',
        b'{"user_id": "u1", "timestamp": 1767254400, "nonce": ""}',
        b'{"user_id": "u1", "timestamp": 1767254400, "nonce": "n-1", "external_contact_id": 7}',
    ],
)
def test_malformed_callbacks_are_422_and_write_nothing(
    client: TestClient, runtime: ServiceRuntime, body: bytes
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    before = written(runtime)
    _, headers = signed(body, timestamp=now_s(runtime))
    assert_error(client.post(WEBHOOK, content=body, headers=headers), 422, "invalid_request")
    assert written(runtime) == before


def test_the_webhook_refuses_unknown_users_and_states_that_do_not_fit(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    raw, headers = signed({"user_id": "nobody"}, timestamp=now_s(runtime))
    assert_error(client.post(WEBHOOK, content=raw, headers=headers), 404, "unknown_user")
    assert written(runtime) == (0, 0, 0)

    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications/u1/contact-confirmed", headers=OPS)
    runtime.tick(advance(runtime, timedelta(days=31)))
    before = written(runtime)
    raw, headers = signed({"user_id": "u1"}, timestamp=now_s(runtime))
    assert_error(client.post(WEBHOOK, content=raw, headers=headers), 409, "no_application")
    assert written(runtime) == before


def test_without_a_shared_secret_the_webhook_is_off(tmp_path: Path) -> None:
    settings = QualificationSettings(
        database_url=f"sqlite:///{tmp_path / 'unsigned.db'}",
        clock="simulated",
        clock_start=START,
        jwt_secret=SECRET,
    )
    runtime = ServiceRuntime(SPEC, settings)
    migrations.upgrade(runtime.engine, HISTORY)
    try:
        client = TestClient(create_app(SPEC, runtime))
        client.post("/v1/applications", headers=auth("u1"))
        raw, headers = signed({"user_id": "u1"}, timestamp=now_s(runtime), secret="")
        response = client.post(WEBHOOK, content=raw, headers=headers)
        assert_error(response, 404, "webhook_disabled")  # no 5xx for a setting (issue 12)
        assert client.get("/v1/distributors/u1", headers=OPS).json()["status"] == "applied"
    finally:
        runtime.engine.dispose()


# --- the audit: who ran each command -------------------------------------------------------


def command_actors(runtime: ServiceRuntime) -> list[tuple[str, str | None]]:
    with Session(runtime.engine) as session:
        rows = session.exec(
            select(db.OutboxRecord).where(db.OutboxRecord.topic == QUALIFICATION_COMMANDS)
        )
        bodies = [json.loads(row.value or b"{}") for row in rows]
        return [(body["command"], body.get("actor")) for body in bodies]


def test_confirmation_and_revocation_record_who_in_the_store_the_events_and_the_audit(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    client.post("/v1/applications", headers=auth("u2"))
    confirmed_at = advance(runtime, timedelta(hours=1))
    confirm = client.post("/v1/applications/u1/contact-confirmed", headers=auth("ops-anna", "ops"))
    assert confirm.status_code == 200
    raw, headers = signed({"user_id": "u2"}, timestamp=now_s(runtime))
    assert client.post(WEBHOOK, content=raw, headers=headers).status_code == 200
    qualify(runtime, "u1")
    revoked_at = advance(runtime, timedelta(days=2))
    revoke = client.post(
        "/v1/distributors/u1/revoke", json={"reason": "fake orders"}, headers=auth("ops-bo", "ops")
    )
    assert revoke.status_code == 200

    assert command_actors(runtime) == [
        ("apply", "u1"),
        ("apply", "u2"),
        ("confirm_contact", "ops-anna"),
        ("confirm_contact", "wecom-callback"),
        ("revoke", "ops-bo"),
    ]
    history = client.get("/v1/distributors/u1", headers=OPS).json()["history"]
    assert [(h["type"], h["actor"]) for h in history] == [
        ("fx.distributor.applied", "u1"),
        ("fx.distributor.assessment_started", "ops-anna"),
        ("fx.distributor.revoked", "ops-bo"),
    ]
    own = client.get("/v1/distributors/u1", headers=auth("u1")).json()["history"]
    assert [h["actor"] for h in own] == [None] * 3  # only ops see who

    audit = client.get("/v1/audit", headers=OPS)
    assert audit.status_code == 200, audit.text
    z = "%Y-%m-%dT%H:%M:%SZ"
    assert [(e["user_id"], e["type"], e["actor"], e["at"]) for e in audit.json()["entries"]] == [
        ("u1", "fx.distributor.revoked", "ops-bo", revoked_at.strftime(z)),
        # at the same time: by user
        ("u1", "fx.distributor.assessment_started", "ops-anna", confirmed_at.strftime(z)),
        ("u2", "fx.distributor.assessment_started", "wecom-callback", confirmed_at.strftime(z)),
        ("u1", "fx.distributor.applied", "u1", START.strftime(z)),
        ("u2", "fx.distributor.applied", "u2", START.strftime(z)),
    ]
    assert audit.json()["entries"][0]["data"]["reason"] == "fake orders"
    assert audit.json()["more"] is False
    one = client.get("/v1/audit", params={"user_id": "u2", "page_size": 1}, headers=OPS).json()
    assert [e["type"] for e in one["entries"]] == ["fx.distributor.assessment_started"]
    assert one["more"] is True


def test_only_ops_read_the_audit(client: TestClient) -> None:
    assert client.get("/v1/audit").status_code == 401
    assert_error(client.get("/v1/audit", headers=auth("u1")), 403, "forbidden")
    assert_error(client.get("/v1/audit", headers=auth("m", "mall")), 403, "forbidden")
    assert_error(client.get("/v1/audit?page_size=0", headers=OPS), 422, "invalid_request")


def test_an_operator_whose_sub_is_no_id_writes_nothing(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    client.post("/v1/applications", headers=auth("u1"))
    before = written(runtime)
    response = client.post("/v1/applications/u1/contact-confirmed", headers=auth("o" * 129, "ops"))
    assert_error(response, 422, "invalid_request")
    assert written(runtime) == before
