"""Qualification modes through the HTTP API (SQLite store, no broker, simulated clock): what
each mode answers, stores, keeps in the history and stages in the outbox."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, text
from sqlmodel import Session, col, select

from fx_common import db, migrations
from fx_common.contracts.topics import QUALIFICATION
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from qualification import store
from qualification.app import HISTORY, SPEC
from qualification.settings import QualificationSettings

START = datetime(2026, 1, 1, 8, tzinfo=UTC)
SECRET = "qualification-modes-secret-of-32-bytes"
Z = START.isoformat().replace("+00:00", "Z")


def serve(tmp_path: Path, **settings: Any) -> Iterator[tuple[TestClient, ServiceRuntime]]:
    runtime = ServiceRuntime(
        SPEC,
        QualificationSettings(
            database_url=f"sqlite:///{tmp_path / 'qualification.db'}",
            clock="simulated",
            clock_start=START,
            jwt_secret=SECRET,
            **settings,
        ),
    )
    migrations.upgrade(runtime.engine, HISTORY)
    yield TestClient(create_app(SPEC, runtime)), runtime
    runtime.engine.dispose()


@pytest.fixture
def everyone(tmp_path: Path) -> Iterator[tuple[TestClient, ServiceRuntime]]:
    yield from serve(tmp_path, qualification_mode="everyone")


@pytest.fixture
def everyone_with_contact(tmp_path: Path) -> Iterator[tuple[TestClient, ServiceRuntime]]:
    yield from serve(tmp_path, qualification_mode="everyone", qualification_contact_step=True)


@pytest.fixture
def appointed(tmp_path: Path) -> Iterator[tuple[TestClient, ServiceRuntime]]:
    yield from serve(tmp_path, qualification_mode="appointed")


@pytest.fixture
def assessment(tmp_path: Path) -> Iterator[tuple[TestClient, ServiceRuntime]]:
    yield from serve(tmp_path)


def auth(sub: str, role: str = "distributor") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


OPS = auth("ops-9", "ops")


def outbox(runtime: ServiceRuntime) -> list[tuple[str | None, dict[str, Any]]]:
    """The staged domain events' types and data (the record values are the data's JSON)."""
    with Session(runtime.engine) as session:
        query = select(db.OutboxRecord).where(db.OutboxRecord.topic == QUALIFICATION)
        rows = session.exec(query.order_by(col(db.OutboxRecord.id))).all()
        return [(row.ce_type, json.loads(row.value or b"{}")) for row in rows]


def written(runtime: ServiceRuntime) -> tuple[int, int, int]:
    with Session(runtime.engine) as session:

        def count(table: Any) -> int:
            return int(session.exec(select(func.count()).select_from(table)).one())

        return count(store.QualificationRow), count(store.HistoryRow), count(db.OutboxRecord)


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_everyone_an_application_qualifies_at_once(
    everyone: tuple[TestClient, ServiceRuntime],
) -> None:
    client, runtime = everyone
    applied = client.post("/v1/applications", json={"wechat_id": "wx-1"}, headers=auth("u1"))
    assert applied.status_code == 200, applied.text
    view = applied.json()
    assert (view["status"], view["qualified_via"], view["discount_bps"]) == (
        "qualified",
        "everyone",
        500,
    )
    assert [(h["type"], h["data"]) for h in view["history"]] == [
        ("fx.distributor.applied", {"user_id": "u1"}),
        ("fx.distributor.qualified", {"user_id": "u1", "order_ids": [], "via": "everyone"}),
    ]
    assert outbox(runtime) == [(h["type"], h["data"]) for h in view["history"]]
    before = written(runtime)
    refused(client.post("/v1/applications", headers=auth("u1")), 409, "already_qualified")
    assert written(runtime) == before


def test_everyone_with_the_contact_step_qualifies_when_the_contact_is_confirmed(
    everyone_with_contact: tuple[TestClient, ServiceRuntime],
) -> None:
    client, runtime = everyone_with_contact
    applied = client.post("/v1/applications", headers=auth("u1")).json()
    assert (applied["status"], applied["qualified_via"]) == ("applied", None)
    confirmed = client.post("/v1/applications/u1/contact-confirmed", headers=OPS).json()
    assert (confirmed["status"], confirmed["qualified_via"], confirmed["deadline"]) == (
        "qualified",
        "everyone",
        None,
    )
    assert [t for t, _ in outbox(runtime)] == ["fx.distributor.applied", "fx.distributor.qualified"]


def test_appointed_only_ops_appoint_and_the_appointment_records_who_and_why(
    appointed: tuple[TestClient, ServiceRuntime],
) -> None:
    client, runtime = appointed
    refused(client.post("/v1/applications", headers=auth("u1")), 409, "applications_closed")
    assert written(runtime) == (0, 0, 0)
    body = {"reason": "  runs the Hangzhou tea club  "}
    refused(
        client.post("/v1/distributors/u1/appoint", json=body, headers=auth("u1")), 403, "forbidden"
    )
    refused(
        client.post("/v1/distributors/u1/appoint", json=body, headers=auth("m", "mall")),
        403,
        "forbidden",
    )
    for bad in ({}, {"reason": ""}, {"reason": "x" * 1001}, {"reason": "ok", "extra": 1}):
        refused(
            client.post("/v1/distributors/u1/appoint", json=bad, headers=OPS),
            422,
            "invalid_request",
        )
    assert written(runtime) == (0, 0, 0)

    view = client.post("/v1/distributors/u1/appoint", json=body, headers=OPS).json()
    assert (
        view["status"],
        view["qualified_via"],
        view["appointed_by"],
        view["appoint_reason"],
    ) == (
        "qualified",
        "appointed",
        "ops-9",
        "runs the Hangzhou tea club",
    )
    qualified = {
        "user_id": "u1",
        "order_ids": [],
        "via": "appointed",
        "appointed_by": "ops-9",
        "reason": "runs the Hangzhou tea club",
    }
    assert [(h["type"], h["data"], h["at"]) for h in view["history"]] == [
        ("fx.distributor.qualified", qualified, Z)
    ]
    assert outbox(runtime) == [("fx.distributor.qualified", qualified)]
    again = client.post("/v1/distributors/u1/appoint", json={"reason": "twice"}, headers=OPS)
    assert again.status_code == 200 and again.json() == view
    assert written(runtime) == (1, 1, 2)  # the appointment's command event and its one event
    assert [h["actor"] for h in view["history"]] == ["ops-9"]
    read = client.get("/v1/distributors/u1", headers=auth("u1")).json()
    assert read == {**view, "history": [{**h, "actor": None} for h in view["history"]]}


@pytest.mark.parametrize("mode", ["assessment", "everyone", "everyone_with_contact"])
def test_appointments_are_off_in_the_other_modes(mode: str, request: pytest.FixtureRequest) -> None:
    client, runtime = request.getfixturevalue(mode)
    response = client.post("/v1/distributors/u1/appoint", json={"reason": "why"}, headers=OPS)
    refused(response, 409, "appointments_off")
    assert written(runtime) == (0, 0, 0)


def test_the_assessment_mode_publishes_what_the_seed_published(
    assessment: tuple[TestClient, ServiceRuntime],
) -> None:
    client, runtime = assessment
    client.post("/v1/applications", headers=auth("u1"))
    view = client.post("/v1/applications/u1/contact-confirmed", headers=OPS).json()
    assert (view["status"], view["qualified_via"]) == ("assessing", None)
    with Session(runtime.engine) as session, session.begin():
        q = store.load(session, "u1")
        assert q is not None
        for n in range(3):
            q.order_attributed(f"o-{n}", START, 100, "binding", at=START)
        written = store.Qualifications(session)
        written.save(q)
        written.write()
    read = client.get("/v1/distributors/u1", headers=OPS).json()
    assert (read["status"], read["qualified_via"], read["appointed_by"]) == (
        "qualified",
        "assessment",
        None,
    )


def test_the_mode_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FX_QUALIFICATION_MODE", "appointed")
    monkeypatch.setenv("FX_QUALIFICATION_CONTACT_STEP", "true")
    policy = QualificationSettings().policy()
    assert (policy.mode.value, policy.contact_step) == ("appointed", True)
    monkeypatch.setenv("FX_QUALIFICATION_MODE", "lottery")
    with pytest.raises(ValueError, match="qualification_mode"):
        QualificationSettings()
    monkeypatch.delenv("FX_QUALIFICATION_MODE")
    monkeypatch.delenv("FX_QUALIFICATION_CONTACT_STEP")
    default = QualificationSettings().policy()
    assert (default.mode.value, default.contact_step) == ("assessment", False)


def test_the_migration_marks_the_seeds_distributors_as_qualified_by_the_assessment(
    tmp_path: Path,
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'previous.db'}")
    migrations.upgrade(engine, HISTORY, "0002")
    insert = (
        "INSERT INTO qf_qualification (user_id, status, attempt) VALUES "
        "('q', 'qualified', 1), ('r', 'revoked', 1), ('a', 'assessing', 1), ('f', 'failed', 1)"
    )
    with engine.begin() as conn:
        conn.execute(text(insert))
    migrations.upgrade(engine, HISTORY)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, qualified_via, appointed_by FROM qf_qualification")
        )
        assert sorted(tuple(row) for row in rows) == [
            ("a", None, None),
            ("f", None, None),
            ("q", "assessment", None),
            ("r", "assessment", None),
        ]
    engine.dispose()
