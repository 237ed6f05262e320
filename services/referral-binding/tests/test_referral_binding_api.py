"""The HTTP API against a real store filled through the handlers; the Kafka lifespan is not
started. "Now" is a simulated clock the tests move."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fx_common import migrations
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from fx_common.testing import record
from referral_binding.app import HISTORY, SPEC, ReferralBindingSettings, spec_for

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SECRET = "api-test-secret-long-enough-for-hs256!"


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class Api:
    def __init__(self, tmp_path: Path) -> None:
        settings = ReferralBindingSettings(
            database_url=f"sqlite:///{tmp_path / 'api.db'}",
            jwt_secret=SECRET,
            clock="simulated",
            clock_start=T0,
            protection_period=timedelta(days=10),
            redis_url="",
        )
        spec = spec_for(settings)
        self.runtime = ServiceRuntime(spec, settings)
        migrations.upgrade(self.runtime.engine, HISTORY)
        self.client = TestClient(create_app(spec, self.runtime))

    def feed(self, *records: Any) -> None:
        self.runtime.processor.process(list(records))

    def now(self, moment: datetime) -> None:
        assert self.runtime.clock.advance_to(moment)  # type: ignore[attr-defined]

    def get(self, path: str, who: str = "ops", role: str | None = None, **params: Any) -> Any:
        token = issue_token(SECRET, who, role or ("ops" if who == "ops" else "distributor"))
        return self.client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})


def started(user: str, at: datetime) -> Any:
    data = {"user_id": user, "deadline": (at + timedelta(days=30)).isoformat(),
            "required_orders": 3}  # fmt: skip
    return record("fx.distributor.assessment_started", data, time=at)


def visit(share: str, sharer: str, visitor: str, at: datetime) -> Any:
    data = {"share_id": share, "sharer_id": sharer, "visitor_id": visitor}
    return record("mall.share.visited", data, time=at)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    api = Api(tmp_path)
    # d1 binds c1 (day 1) and c2 (day 2); d2's visit to c1 is contested; c1 later expires
    # (day 11) and is bound by d2 on day 12.
    api.feed(
        started("d1", day(0)),
        started("d2", day(0)),
        visit("s1", "d1", "c1", day(1)),
        visit("s1", "d1", "c2", day(2)),
        visit("s1", "d1", "c2", day(3)),
        visit("s2", "d2", "c1", day(4)),
        visit("s1", "d1", "d1", day(4)),
    )
    api.now(day(5))
    yield api
    api.runtime.engine.dispose()


def test_requests_need_a_valid_token(api: Api) -> None:
    response = api.client.get("/v1/customers/c1/binding")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    forged = issue_token("another-secret-also-long-enough-for-hs256", "ops", "ops")
    response = api.client.get(
        "/v1/customers/c1/binding", headers={"Authorization": f"Bearer {forged}"}
    )
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_token")


def test_current_binding_for_ops_the_customer_and_the_bound_distributor(api: Api) -> None:
    for who in ("ops", "c1", "d1"):
        response = api.get("/v1/customers/c1/binding", who)
        assert response.status_code == 200, who
        body = response.json()
        assert (body["distributor_id"], body["share_id"]) == ("d1", "s1")
        assert datetime.fromisoformat(body["protected_until"]) == day(11)
        assert body["released_at"] is None


def test_other_distributors_may_not_read_a_customers_binding(api: Api) -> None:
    response = api.get("/v1/customers/c1/binding", "d2")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    assert api.get("/v1/customers/c9/binding", "d2").status_code == 403


def test_no_current_binding_is_404(api: Api) -> None:
    response = api.get("/v1/customers/c9/binding")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_bound")
    api.now(day(11))
    assert api.get("/v1/customers/c1/binding").status_code == 404


def test_history_and_owner_at_a_moment(api: Api) -> None:
    api.feed(record("fx.clock.set", {"now": day(12).isoformat()}, time=day(12)))
    api.feed(visit("s2", "d2", "c1", day(12)))
    body = api.get("/v1/customers/c1/bindings").json()
    assert [(b["distributor_id"], b["release_reason"]) for b in body["bindings"]] == [
        ("d1", "expired"),
        ("d2", None),
    ]
    assert body["owner_id"] is None
    at_day_5 = api.get("/v1/customers/c1/bindings", at=day(5).isoformat()).json()
    assert at_day_5["owner_id"] == "d1" and len(at_day_5["bindings"]) == 1
    assert api.get("/v1/customers/c1/bindings", at=day(11.5).isoformat()).json()["owner_id"] is None
    at_day_13 = api.get("/v1/customers/c1/bindings", "c1", at=day(13).isoformat()).json()
    assert at_day_13["owner_id"] == "d2"


def test_a_distributor_sees_only_its_own_part_of_a_customers_history(api: Api) -> None:
    api.feed(record("fx.clock.set", {"now": day(12).isoformat()}, time=day(12)))
    api.feed(visit("s2", "d2", "c1", day(12)))
    mine = api.get("/v1/customers/c1/bindings", "d1").json()
    assert [b["distributor_id"] for b in mine["bindings"]] == ["d1"]
    later = api.get("/v1/customers/c1/bindings", "d1", at=day(13).isoformat()).json()
    assert (later["owner_id"], later["bindings"]) == (None, [])
    assert api.get("/v1/customers/c2/bindings", "d2").status_code == 403


def test_history_moment_must_carry_a_timezone(api: Api) -> None:
    response = api.get("/v1/customers/c1/bindings", at="2026-03-05T00:00:00")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")


def test_distributor_customers_with_protection_end(api: Api) -> None:
    body = api.get("/v1/distributors/d1/customers", "d1").json()
    assert body["total"] == 2
    assert [(c["customer_id"], datetime.fromisoformat(c["protected_until"]))
            for c in body["customers"]] == [("c1", day(11)), ("c2", day(12))]  # fmt: skip
    page = api.get("/v1/distributors/d1/customers", "ops", limit=1, offset=1).json()
    assert (page["total"], [c["customer_id"] for c in page["customers"]]) == (2, ["c2"])
    api.now(day(11.5))
    assert api.get("/v1/distributors/d1/customers", "d1").json()["total"] == 1


def test_distributors_read_only_their_own_lists_and_stats(api: Api) -> None:
    for path in ("/v1/distributors/d1/customers", "/v1/distributors/d1/stats"):
        assert api.get(path, "d2").status_code == 403
        assert api.get(path, "ops").status_code == 200


def test_distributor_stats(api: Api) -> None:
    assert api.get("/v1/distributors/d1/stats", "d1").json() == {
        "distributor_id": "d1",
        "visits": 3,
        "unique_visitors": 2,
        "bound_customers": 2,
        "contested_visits": 0,
    }
    d2 = api.get("/v1/distributors/d2/stats", "d2").json()
    assert (d2["visits"], d2["contested_visits"], d2["bound_customers"]) == (1, 1, 0)


def test_settings_defaults_and_protection_period_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = ReferralBindingSettings()
    assert (defaults.http_port, defaults.protection_period) == (8101, timedelta(days=180))
    assert SPEC.name == "referral-binding"
    for value, expected in (
        ("3600", timedelta(hours=1)),
        ("90.5", timedelta(seconds=90.5)),
        ("P30D", timedelta(days=30)),
        ("PT12H", timedelta(hours=12)),
    ):
        monkeypatch.setenv("FX_PROTECTION_PERIOD", value)
        assert ReferralBindingSettings().protection_period == expected
    for invalid in ("0", "-P1D", "soon"):
        monkeypatch.setenv("FX_PROTECTION_PERIOD", invalid)
        with pytest.raises(ValueError):
            ReferralBindingSettings()
