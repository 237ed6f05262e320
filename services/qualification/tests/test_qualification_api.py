"""The HTTP API against a SQLite store, lifespan not started (no broker), simulated clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func
from sqlmodel import Session, select

from fx_common import db
from fx_common.clock import SimulatedClock
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from qualification import store
from qualification.app import SPEC
from qualification.settings import QualificationSettings

START = datetime(2026, 1, 1, 8, tzinfo=UTC)
SECRET = "qualification-test-secret-of-32-bytes"


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[ServiceRuntime]:
    settings = QualificationSettings(
        database_url=f"sqlite:///{tmp_path / 'qualification.db'}",
        clock="simulated",
        clock_start=START,
        jwt_secret=SECRET,
        reapply_cooldown=timedelta(days=7),
    )

    runtime = ServiceRuntime(SPEC, settings)
    db.create_schema(runtime.engine, SPEC.tables)
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


def published_types(runtime: ServiceRuntime) -> list[str | None]:
    with Session(runtime.engine) as session:
        return [row.ce_type for row in session.exec(select(db.OutboxRecord))]


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


def qualify(runtime: ServiceRuntime, user_id: str) -> None:
    """Three qualifying orders through the domain, as the attribution handler would."""
    with Session(runtime.engine) as session, session.begin():
        q = store.load(session, user_id)
        assert q is not None and q.confirmed_at is not None
        for n in range(3):
            paid_at = q.confirmed_at + timedelta(hours=n + 1)
            q.order_attributed(f"o-{n}", paid_at, 100, "binding", at=paid_at)
        store.save(session, q)


def test_the_way_to_distributor_and_out(client: TestClient, runtime: ServiceRuntime) -> None:
    applied = client.post("/v1/applications", json={"wechat_id": "wx-u1"}, headers=auth("u1"))
    assert applied.status_code == 200, applied.text
    assert applied.json() | {"history": []} == {
        "user_id": "u1",
        "status": "applied",
        "qualifying_orders": 0,
        "required_orders": 3,
        "deadline": None,
        "discount_bps": 0,
        "wechat_id": "wx-u1",
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
    assert (view["status"], view["qualifying_orders"], view["discount_bps"]) == (
        "qualified",
        3,
        500,
    )

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
    assert_error(
        client.post("/v1/applications/u1/contact-confirmed", headers=OPS), 409, "no_application"
    )
    assert_error(
        client.post("/v1/distributors/u1/revoke", json={"reason": "x"}, headers=OPS),
        409,
        "not_qualified",
    )
    assert written(runtime) == (0, 0, 0)
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
    } <= set(paths)


def test_a_token_whose_sub_is_no_user_id_cannot_apply(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    assert_error(client.post("/v1/applications", headers=auth("u" * 129)), 422, "invalid_request")
    assert written(runtime) == (0, 0, 0)


def test_unknown_users_are_404(client: TestClient) -> None:
    assert_error(client.get("/v1/distributors/nobody", headers=OPS), 404, "unknown_user")
    assert_error(client.get("/v1/distributors/me", headers=auth("me")), 404, "unknown_user")


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
