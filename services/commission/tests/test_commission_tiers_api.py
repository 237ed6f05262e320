"""The second tier over HTTP: tier-2 rates in the plan (with versions and If-Match), and the
tier on every commission a distributor reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient

from commission.app import HISTORY, SPEC
from commission.settings import CommissionSettings
from fx_common import migrations
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime

if TYPE_CHECKING:
    from conftest import Harness

SECRET = "commission-tiers-tests-secret-32-bytes-long"
NOW = datetime(2026, 3, 15, 2, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def client(store_url: str) -> Iterator[TestClient]:
    settings = CommissionSettings(
        database_url=store_url, clock="simulated", clock_start=NOW, jwt_secret=SECRET,
        commission_tiers=2, tier2_default_rate_bps=500,
    )  # fmt: skip
    runtime = ServiceRuntime(SPEC, settings)
    migrations.upgrade(runtime.engine, HISTORY)
    yield TestClient(create_app(SPEC, runtime))
    runtime.engine.dispose()


def call(
    client: TestClient, method: str, path: str, sub: str = "ops-1", role: str = "ops", **kw: Any
) -> Any:
    headers = {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}", **kw.pop("headers", {})}
    return client.request(method, path, headers=headers, **kw)


def edit(client: TestClient, method: str, path: str, **kw: Any) -> Any:
    latest = call(client, "GET", "/v1/plan/versions").headers["ETag"]
    return call(client, method, path, headers={"If-Match": latest}, **kw)


def test_the_plan_carries_tier2_rates_through_versions(client: TestClient) -> None:
    zero = call(client, "GET", "/v1/plan").json()
    assert (zero["version"], zero["tier2_default_rate_bps"]) == (0, 500)  # the setting
    plan = {"default_rate_bps": 1000, "skus": {"tea": {"rate_bps": 2000}},
            "tier2_default_rate_bps": 300,
            "tier2_categories": {"oolong": {"rate_bps": 400}}}  # fmt: skip
    first = edit(client, "PUT", "/v1/plan", json=plan)
    assert first.status_code == 200, first.text
    assert (first.json()["tier2_default_rate_bps"], first.json()["tier2_categories"]) == (
        300, {"oolong": {"rate_bps": 400, "fen_per_unit": None}},
    )  # fmt: skip
    second = edit(client, "PUT", "/v1/plan/skus/tea?tier=2", json={"fen_per_unit": 50})
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["version"] == 2 and body["skus"] == {
        "tea": {"rate_bps": 2000, "fen_per_unit": None}
    }
    assert body["tier2_skus"] == {"tea": {"rate_bps": None, "fen_per_unit": 50}}
    assert body["tier2_categories"] == first.json()["tier2_categories"]  # kept
    removed = edit(client, "DELETE", "/v1/plan/skus/tea?tier=2")
    assert (removed.json()["tier2_skus"], removed.json()["skus"]) == ({}, body["skus"])
    again = edit(client, "DELETE", "/v1/plan/skus/tea?tier=2")
    assert (again.status_code, again.json()["error"]["code"]) == (404, "no_such_override")
    stale = call(client, "PUT", "/v1/plan/categories/oolong?tier=2", json={"rate_bps": 1},
                 headers={"If-Match": '"1"'})  # fmt: skip
    assert stale.status_code == 412
    bad = edit(client, "PUT", "/v1/plan/skus/tea?tier=3", json={"rate_bps": 1})
    assert bad.status_code == 422
    assert [v["version"] for v in call(client, "GET", "/v1/plan/versions").json()["versions"]] == [
        0, 1, 2, 3,
    ]  # fmt: skip


def test_a_plan_paying_more_than_a_line_is_refused_and_nothing_is_written(
    client: TestClient,
) -> None:
    plan = {"default_rate_bps": 9000, "tier2_default_rate_bps": 500,
            "tier2_skus": {"tea": {"rate_bps": 1500}}}  # fmt: skip
    over = edit(client, "PUT", "/v1/plan", json=plan)
    assert (over.status_code, over.json()["error"]["code"]) == (422, "invalid_plan")
    assert "SKU 'tea': tier 1 9000 bps + tier 2 1500 bps" in over.json()["error"]["message"]
    raised = edit(client, "PUT", "/v1/plan/categories/tea", json={"rate_bps": 9600})
    assert raised.status_code == 422  # 9600 + version 0's tier-2 500
    versions = call(client, "GET", "/v1/plan/versions").json()["versions"]
    assert [v["version"] for v in versions] == [0]


def test_each_reads_the_tier_and_only_their_own_lines(client: TestClient, tiers: Harness) -> None:
    tiers.qualification("qualified", NOW - 9 * DAY, user="r-1")
    tiers.qualification("qualified", NOW - 5 * DAY, user="d-1")
    tiers.recruiter("d-1", "r-1", NOW - 6 * DAY)
    tiers.attribute("o-1", {"l-1": 10000}, NOW - DAY)
    mine = call(client, "GET", "/v1/distributors/r-1/commissions", sub="r-1", role="distributor")
    [line] = mine.json()["items"]
    assert (line["tier"], line["source_distributor_id"], line["amount_fen"]) == (2, "d-1", 500)
    theirs = call(client, "GET", "/v1/distributors/d-1/orders/o-1", sub="d-1", role="distributor")
    assert [(x["tier"], x["amount_fen"]) for x in theirs.json()["lines"]] == [(1, 1000)]
    audit = call(
        client, "GET", f"/v1/distributors/r-1/commissions/{line['commission_id']}/audit",
        sub="r-1", role="distributor",
    )  # fmt: skip
    assert audit.status_code == 200 and audit.json()["commission"]["tier"] == 2
    other = call(client, "GET", "/v1/distributors/r-1/commissions", sub="d-1", role="distributor")
    assert other.status_code == 403
    summary = call(client, "GET", "/v1/distributors/r-1/summary", sub="r-1", role="distributor")
    assert summary.json()["all_time"]["pending"] == 500


def test_the_team_page_lists_the_recruits_with_status_orders_and_tier2(
    client: TestClient, tiers: Harness
) -> None:
    tiers.qualification("qualified", NOW - 9 * DAY, user="r-1")
    tiers.recruiter("d-1", "r-1", NOW - 6 * DAY)
    tiers.qualification("qualified", NOW - 5 * DAY, user="d-1")
    tiers.recruiter("d-2", "r-1", NOW - 4 * DAY)
    tiers.qualification("assessment_started", NOW - 4 * DAY, user="d-2")
    tiers.recruiter("d-3", "r-2", NOW - 4 * DAY)
    tiers.attribute("o-1", {"l-1": 10000}, NOW - 2 * DAY)
    tiers.attribute("o-2", {"l-1": 4000}, NOW - DAY, distributor="d-2")
    tiers.refund("o-2", "rf-1", {"l-1": 4000}, NOW, distributor="d-2")
    team = call(client, "GET", "/v1/distributors/r-1/team", sub="r-1", role="distributor")
    assert team.status_code == 200, team.text
    body = team.json()
    assert (body["total"], body["page"], body["page_size"]) == (2, 1, 20)
    zero = dict.fromkeys(("held", "pending", "frozen", "settled", "reversed", "voided"), 0)
    assert [(m["distributor_id"], m["status"], m["orders"], m["tier2"]) for m in body["items"]] == [
        ("d-2", "assessing", 1, zero | {"voided": 200}),
        ("d-1", "qualified", 1, zero | {"pending": 500}),
    ]
    assert body["items"][1]["applied_at"] == "2026-03-09T02:00:00Z"
    paged = call(client, "GET", "/v1/distributors/r-1/team?page=2&page_size=1")
    assert [m["distributor_id"] for m in paged.json()["items"]] == ["d-1"]
    assert paged.json()["total"] == 2
    forbidden = call(client, "GET", "/v1/distributors/r-1/team", sub="d-1", role="distributor")
    assert forbidden.status_code == 403
    empty = call(client, "GET", "/v1/distributors/d-9/team", sub="d-9", role="distributor")
    assert (empty.status_code, empty.json()["items"], empty.json()["total"]) == (200, [], 0)
