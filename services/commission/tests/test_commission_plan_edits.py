"""Plan edits without races: one override at a time, each edit naming the version it changes
(If-Match), a stale one refused with 412, and nothing written by a refused edit."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from commission.app import HISTORY, SPEC
from commission.domain import Rate, RatePlan, plan_edit
from commission.settings import CommissionSettings
from fx_common import migrations
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime

SECRET = "commission-plan-edit-tests-secret-32-bytes"
NOW = datetime(2026, 3, 15, 2, tzinfo=UTC)
PLAN = {
    "default_rate_bps": 800,
    "categories": {"oolong": {"rate_bps": 1500}},
    "skus": {"gift-box": {"fen_per_unit": 2000}},
}


@pytest.fixture
def runtime(store_url: str) -> Iterator[ServiceRuntime]:
    settings = CommissionSettings(
        database_url=store_url, clock="simulated", clock_start=NOW, jwt_secret=SECRET
    )
    runtime = ServiceRuntime(SPEC, settings)
    migrations.upgrade(runtime.engine, HISTORY)
    yield runtime
    runtime.engine.dispose()


@pytest.fixture
def client(runtime: ServiceRuntime) -> TestClient:
    return TestClient(create_app(SPEC, runtime))


def auth(sub: str = "ops-1", role: str = "ops") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role)}"}


def versions(client: TestClient) -> Any:
    return client.get("/v1/plan/versions", headers=auth()).json()


def quote(client: TestClient, sku: str, category: str | None = None) -> tuple[int, str]:
    query = f"price_fen=10000&category={category}" if category else "price_fen=10000"
    body = client.get(f"/v1/products/{sku}/commission?{query}", headers=auth("mall", "mall"))
    return body.json()["amount_fen"], body.json()["basis"]


def test_reads_carry_the_latest_version_as_etag(client: TestClient) -> None:
    assert client.get("/v1/plan", headers=auth()).headers["ETag"] == '"0"'
    created = client.put("/v1/plan", json=PLAN, headers={**auth(), "If-Match": '"0"'})
    assert (created.status_code, created.headers["ETag"]) == (200, '"1"')
    assert client.get("/v1/plan", headers=auth("d-1", "distributor")).headers["ETag"] == '"1"'
    listing = client.get("/v1/plan/versions", headers=auth())
    assert (listing.headers["ETag"], listing.json()["latest"]) == ('"1"', 1)


def test_one_override_is_added_changed_and_removed_keeping_the_rest(client: TestClient) -> None:
    client.put("/v1/plan", json=PLAN, headers={**auth(), "If-Match": '"0"'})
    added = client.put(
        "/v1/plan/skus/tea-cup", json={"rate_bps": 2500}, headers={**auth(), "If-Match": '"1"'}
    )
    assert added.status_code == 200, added.text
    body = added.json()
    assert (body["version"], body["default_rate_bps"], body["created_by"]) == (2, 800, "ops-1")
    assert body["skus"] == {
        "gift-box": {"rate_bps": None, "fen_per_unit": 2000},
        "tea-cup": {"rate_bps": 2500, "fen_per_unit": None},
    }
    assert body["categories"] == {"oolong": {"rate_bps": 1500, "fen_per_unit": None}}
    assert quote(client, "tea-cup", "oolong") == (2500, "sku")  # SKU over category
    removed = client.delete("/v1/plan/skus/tea-cup", headers={**auth(), "If-Match": 'W/"2"'})
    assert (removed.status_code, removed.json()["version"]) == (200, 3)
    assert quote(client, "tea-cup", "oolong") == (1500, "category")  # category over default
    gone = client.delete("/v1/plan/categories/oolong", headers={**auth(), "If-Match": "3"})
    assert gone.json()["categories"] == {}
    assert gone.json()["skus"] == {"gift-box": {"rate_bps": None, "fen_per_unit": 2000}}
    assert quote(client, "tea-cup", "oolong") == (800, "default")
    assert quote(client, "gift-box") == (2000, "sku")
    category = client.put(
        "/v1/plan/categories/green", json={"fen_per_unit": 300}, headers={**auth(), "If-Match": "4"}
    )
    assert category.json()["categories"] == {"green": {"rate_bps": None, "fen_per_unit": 300}}
    assert [v["version"] for v in versions(client)["versions"]] == [0, 1, 2, 3, 4, 5]


def test_each_version_is_a_snapshot(client: TestClient) -> None:
    client.put("/v1/plan", json=PLAN, headers={**auth(), "If-Match": '"0"'})
    client.put("/v1/plan/skus/a", json={"rate_bps": 1}, headers={**auth(), "If-Match": '"1"'})
    history = versions(client)["versions"]
    assert set(history[1]["skus"]) == {"gift-box"} and set(history[2]["skus"]) == {"gift-box", "a"}
    assert history[2]["categories"] == history[1]["categories"]


@pytest.mark.parametrize(
    ("if_match", "status", "code"),
    [
        (None, 428, "if_match_required"),
        ('"0"', 412, "version_mismatch"),
        ('"7"', 412, "version_mismatch"),
        ("*", 412, "version_mismatch"),
        ("garbage", 412, "version_mismatch"),
    ],
)
def test_an_edit_of_another_version_is_refused_and_writes_nothing(
    client: TestClient, if_match: str | None, status: int, code: str
) -> None:
    client.put("/v1/plan", json=PLAN, headers={**auth(), "If-Match": '"0"'})
    headers = auth() | ({"If-Match": if_match} if if_match is not None else {})
    for response in (
        client.put("/v1/plan", json=PLAN, headers=headers),
        client.put("/v1/plan/skus/x", json={"rate_bps": 5}, headers=headers),
        client.delete("/v1/plan/skus/gift-box", headers=headers),
        client.put("/v1/plan/categories/x", json={"rate_bps": 5}, headers=headers),
        client.delete("/v1/plan/categories/oolong", headers=headers),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert versions(client)["latest"] == 1


def test_removing_an_override_that_is_not_there_is_404(client: TestClient) -> None:
    response = client.delete("/v1/plan/skus/nope", headers={**auth(), "If-Match": '"0"'})
    assert (response.status_code, response.json()["error"]["code"]) == (404, "no_such_override")
    assert versions(client)["latest"] == 0


@pytest.mark.parametrize(("sub", "role"), [("d-1", "distributor"), ("mall", "mall")])
def test_only_ops_edit(client: TestClient, sub: str, role: str) -> None:
    headers = {**auth(sub, role), "If-Match": '"0"'}
    assert client.put("/v1/plan/skus/x", json={"rate_bps": 1}, headers=headers).status_code == 403
    assert client.delete("/v1/plan/skus/x", headers=headers).status_code == 403
    assert client.put("/v1/plan", json=PLAN, headers=headers).status_code == 403
    assert versions(client)["latest"] == 0


def test_a_scheduled_override_and_invalid_rules(client: TestClient) -> None:
    later = "2026-03-20T00:00:00Z"
    scheduled = client.put(
        f"/v1/plan/skus/x?effective_from={later}",
        json={"rate_bps": 10},
        headers={**auth(), "If-Match": '"0"'},
    )
    assert scheduled.json()["effective_from"] == later
    assert client.get("/v1/plan", headers=auth()).json()["version"] == 0  # not yet in force
    for bad in ({"rate_bps": 10001}, {"rate_bps": 1, "fen_per_unit": 1}, {}, {"fen_per_unit": -1}):
        response = client.put("/v1/plan/skus/x", json=bad, headers={**auth(), "If-Match": "1"})
        assert response.status_code == 422
    past = client.put(
        "/v1/plan/skus/y?effective_from=2026-03-01T00:00:00Z",
        json={"rate_bps": 1},
        headers={**auth(), "If-Match": "1"},
    )
    assert (past.status_code, past.json()["error"]["code"]) == (409, "invalid_plan")
    assert versions(client)["latest"] == 1


def test_two_operators_editing_the_same_version_never_overwrite_each_other(
    client: TestClient,
) -> None:
    """Both name version 0 at once: one creates version 1, the other gets 412."""
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def edit(sku: str) -> None:
        barrier.wait()
        response = client.put(
            f"/v1/plan/skus/{sku}", json={"rate_bps": 100}, headers={**auth(), "If-Match": '"0"'}
        )
        results[sku] = response.status_code

    threads = [threading.Thread(target=edit, args=(sku,)) for sku in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results.values()) == [200, 412], results
    latest = versions(client)["versions"][-1]
    assert latest["version"] == 1 and len(latest["skus"]) == 1


# ── the pure rules ─────────────────────────────────────────────────────────────────────


def test_with_override_copies_everything_else() -> None:
    base = RatePlan(3, 800, {"oolong": Rate(1500)}, {"gift": Rate(fen_per_unit=20)})
    added = plan_edit.with_override(base, plan_edit.OverrideEdit("sku", "cup", Rate(2500)))
    assert (added.version, added.default_rate_bps) == (4, 800)
    assert added.by_sku == {"gift": Rate(fen_per_unit=20), "cup": Rate(2500)}
    assert added.by_category == base.by_category
    removed = plan_edit.with_override(base, plan_edit.OverrideEdit("category", "oolong", None))
    assert removed.by_category == {} and removed.by_sku == base.by_sku
    with pytest.raises(plan_edit.EditRefused) as refused:
        plan_edit.with_override(base, plan_edit.OverrideEdit("sku", "nope", None))
    assert refused.value.status == 404


def test_version_refusal() -> None:
    assert plan_edit.version_refusal(3, 3) is None
    stale = plan_edit.version_refusal(2, 3)
    assert stale is not None and (stale.status, stale.code) == (412, "version_mismatch")
    missing = plan_edit.version_refusal(None, 3)
    assert missing is not None and missing.status == 428 and '"3"' in missing.message
