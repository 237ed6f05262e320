"""HTTP API against a store filled through the handlers (the Kafka lifespan is not started)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from commission import domain, store
from commission.app import HISTORY, SPEC
from commission.domain import Rate, RatePlan
from commission.settings import CommissionSettings
from fx_common import migrations
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime

if TYPE_CHECKING:
    from conftest import Harness

SECRET = "commission-api-tests-secret-32-bytes-long"
NOW = datetime(2026, 3, 15, 2, tzinfo=UTC)  # 10:00 on 15 March in China
DAY = timedelta(days=1)


@pytest.fixture
def runtime(store_url: str) -> Iterator[ServiceRuntime]:
    """Never started: no broker, the simulated clock stands still unless a test moves it."""
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


def get(client: TestClient, path: str, sub: str = "d-1", role: str = "distributor") -> Any:
    token = issue_token(SECRET, sub, role)
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def filled(harness: Harness) -> Harness:
    """d-1: a qualified distributor with orders across periods; d-2: someone else."""
    h = harness
    h.qualification("qualified", NOW - 60 * DAY)
    h.attribute("o-today", {"l-1": 10000, "l-2": 3900}, NOW - 9 * timedelta(hours=1))
    h.attribute("o-yesterday", {"l-1": 20000}, NOW - 11 * timedelta(hours=1))
    h.attribute("o-march-1", {"l-1": 30000}, datetime(2026, 2, 28, 17, tzinfo=UTC))
    h.attribute("o-february", {"l-1": 40000}, datetime(2026, 2, 28, 15, tzinfo=UTC))
    h.complete("o-february", datetime(2026, 3, 1, tzinfo=UTC))
    h.tick(NOW - DAY)  # o-february settles (4000)
    h.refund("o-february", "r-1", {"l-1": 10000}, NOW - DAY)  # claws back 1000
    h.refund("o-march-1", "r-1", {"l-1": 30000}, NOW - DAY)  # voids 3000
    h.complete("o-yesterday", NOW - DAY)  # frozen 2000
    h.attribute("o-other", {"l-1": 50000}, NOW - DAY, distributor="d-2")
    return h


# ── auth ──────────────────────────────────────────────────────────────────────────────


def test_reads_need_a_valid_token(client: TestClient) -> None:
    response = client.get("/v1/distributors/d-1/summary")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthenticated"
    bad = client.get("/v1/distributors/d-1/summary", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "invalid_token"
    assert client.get("/v1/products/tea/commission?price_fen=100").status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/v1/distributors/d-2/commissions", "/v1/distributors/d-2/summary",
     "/v1/distributors/d-2/orders/o-other"],
)  # fmt: skip
def test_a_distributor_reads_only_its_own_data(
    filled: Harness, client: TestClient, path: str
) -> None:
    response = get(client, path, sub="d-1")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert get(client, path, sub="ops-1", role="ops").status_code == 200
    assert get(client, path, sub="d-2").status_code == 200


# ── promotion orders ──────────────────────────────────────────────────────────────────


def test_commissions_are_listed_newest_first_and_filtered_by_status(
    filled: Harness, client: TestClient
) -> None:
    body = get(client, "/v1/distributors/d-1/commissions").json()
    assert body["total"] == 5 and (body["page"], body["page_size"]) == (1, 20)
    assert [(i["order_id"], i["line_id"]) for i in body["items"]] == [
        ("o-today", "l-1"),
        ("o-today", "l-2"),
        ("o-yesterday", "l-1"),
        ("o-march-1", "l-1"),
        ("o-february", "l-1"),
    ]
    first = body["items"][0]
    assert (first["amount_fen"], first["rate_bps"], first["status"], first["plan_version"]) == (
        1000, 1000, "pending", 0,
    )  # fmt: skip
    frozen = get(client, "/v1/distributors/d-1/commissions?status=frozen").json()
    assert [i["order_id"] for i in frozen["items"]] == ["o-yesterday"]
    assert frozen["items"][0]["settle_at"] == "2026-03-21T02:00:00Z"


def test_commissions_page(filled: Harness, client: TestClient) -> None:
    body = get(client, "/v1/distributors/d-1/commissions?page=2&page_size=2").json()
    assert body["total"] == 5
    assert [i["order_id"] for i in body["items"]] == ["o-yesterday", "o-march-1"]
    assert get(client, "/v1/distributors/d-1/commissions?page=9").json()["items"] == []


@pytest.mark.parametrize(
    "query", ["status=paid", "page=0", "page_size=0", "page_size=101", "page=x"]
)
def test_bad_list_queries_are_422(client: TestClient, query: str) -> None:
    response = get(client, f"/v1/distributors/d-1/commissions?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_order_detail_has_lines_amounts_and_history(filled: Harness, client: TestClient) -> None:
    body = get(client, "/v1/distributors/d-1/orders/o-february").json()
    assert (body["basis"], body["paid_amount_fen"], body["amount_fen"]) == ("binding", 40000, 3000)
    assert body["completed_at"] == "2026-03-01T00:00:00Z"
    [line] = body["lines"]
    assert (line["status"], line["settled_fen"], line["reversed_fen"], line["refunded_fen"]) == (
        "settled", 4000, 1000, 10000,
    )  # fmt: skip
    history = [(h["kind"], h["amount_before"], h["amount_after"]) for h in body["history"]]
    assert history == [
        ("accrued", 0, 4000),
        ("frozen", 4000, 4000),
        ("settled", 4000, 4000),
        ("reversed", 4000, 3000),
    ]
    assert body["history"][3]["refund_id"] == "r-1"
    assert body["history"][0]["plan_version"] == 0


def test_order_detail_of_an_unknown_or_foreign_order_is_404(
    filled: Harness, client: TestClient
) -> None:
    for path in ("/v1/distributors/d-1/orders/o-nope", "/v1/distributors/d-1/orders/o-other"):
        response = get(client, path, sub="ops-1", role="ops")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


# ── summary ───────────────────────────────────────────────────────────────────────────


def test_summary_by_state_for_today_this_month_and_all_time(
    filled: Harness, client: TestClient
) -> None:
    body = get(client, "/v1/distributors/d-1/summary").json()
    assert body["as_of"] == "2026-03-15T02:00:00Z"
    zero = {"held": 0, "pending": 0, "frozen": 0, "settled": 0, "reversed": 0, "voided": 0}
    assert body["today"] == zero | {"pending": 1390}
    assert body["this_month"] == zero | {"pending": 1390, "frozen": 2000, "voided": 3000}
    assert body["all_time"] == zero | {
        "pending": 1390, "frozen": 2000, "voided": 3000, "settled": 3000, "reversed": 1000,
    }  # fmt: skip


def test_summary_of_a_distributor_without_commission_is_all_zero(client: TestClient) -> None:
    body = get(client, "/v1/distributors/d-9/summary", sub="d-9").json()
    assert set(body["all_time"].values()) == {0}


def test_summary_follows_the_clock(
    filled: Harness, client: TestClient, runtime: ServiceRuntime
) -> None:
    runtime.clock.advance_to(NOW + 30 * DAY)  # type: ignore[attr-defined]
    body = get(client, "/v1/distributors/d-1/summary").json()
    assert set(body["today"].values()) == {0}
    assert body["as_of"] == "2026-04-14T02:00:00Z"


# ── what a product earns ──────────────────────────────────────────────────────────────


def test_product_commission_under_the_default_rate(client: TestClient) -> None:
    body = get(client, "/v1/products/tea-oolong-250g/commission?price_fen=12900").json()
    assert body == {
        "sku": "tea-oolong-250g", "category": None, "price_fen": 12900, "amount_fen": 1290,
        "rate_bps": 1000, "fen_per_unit": None, "basis": "default", "plan_version": 0,
    }  # fmt: skip


def test_product_commission_uses_the_plan_in_force_now(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    with Session(runtime.engine) as session, session.begin():
        store.add_plan_version(
            session,
            RatePlan(
                version=1,
                default_rate_bps=800,
                by_category={"oolong": Rate(rate_bps=1500)},
                by_sku={"gift-box": Rate(fen_per_unit=2000)},
            ),
            effective_from=NOW - DAY,
        )
        store.add_plan_version(session, RatePlan(version=2, default_rate_bps=50), NOW + DAY)
    oolong = get(client, "/v1/products/tea-x/commission?price_fen=10000&category=oolong").json()
    assert (oolong["amount_fen"], oolong["basis"], oolong["plan_version"]) == (1500, "category", 1)
    gift = get(client, "/v1/products/gift-box/commission?price_fen=10000&category=oolong").json()
    assert (gift["amount_fen"], gift["rate_bps"], gift["fen_per_unit"]) == (2000, 2000, 2000)
    plain = get(client, "/v1/products/cup/commission?price_fen=999").json()
    assert (plain["amount_fen"], plain["plan_version"]) == (79, 1)


@pytest.mark.parametrize("query", ["", "price_fen=-1", "price_fen=1.5", "price_fen=abc"])
def test_product_commission_needs_a_valid_price(client: TestClient, query: str) -> None:
    response = get(client, f"/v1/products/tea/commission?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_probes_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/v1/distributors/{distributor_id}/commissions",
        "/v1/distributors/{distributor_id}/orders/{order_id}",
        "/v1/distributors/{distributor_id}/summary",
        "/v1/products/{sku}/commission",
    } <= set(paths)


# ── the rate plan, edited by ops ──────────────────────────────────────────────────────


def put_plan(client: TestClient, body: Any, sub: str = "ops-1", role: str = "ops") -> Any:
    """Replace the whole plan, naming the latest version (its ETag) as every edit must."""
    token = issue_token(SECRET, sub, role)
    latest = get(client, "/v1/plan/versions").headers["ETag"]
    headers = {"Authorization": f"Bearer {token}", "If-Match": latest}
    return client.put("/v1/plan", json=body, headers=headers)


def versions(client: TestClient) -> Any:
    return get(client, "/v1/plan/versions").json()


PLAN = {
    "default_rate_bps": 800,
    "categories": {"oolong": {"rate_bps": 1500}},
    "skus": {"gift-box": {"fen_per_unit": 2000}},
}


def test_ops_create_the_next_version_in_force_from_now_by_default(client: TestClient) -> None:
    assert get(client, "/v1/plan").json()["version"] == 0
    response = put_plan(client, PLAN)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "version": 1, "default_rate_bps": 800,
        "categories": {"oolong": {"rate_bps": 1500, "fen_per_unit": None}},
        "skus": {"gift-box": {"rate_bps": None, "fen_per_unit": 2000}},
        "tier2_default_rate_bps": 0, "tier2_categories": {}, "tier2_skus": {},
        "effective_from": "2026-03-15T02:00:00Z", "created_at": "2026-03-15T02:00:00Z",
        "created_by": "ops-1",
    }  # fmt: skip
    assert get(client, "/v1/plan", sub="d-1").json() == response.json()
    gift = get(client, "/v1/products/gift-box/commission?price_fen=10000").json()
    assert (gift["amount_fen"], gift["basis"], gift["plan_version"]) == (2000, "sku", 1)


def test_a_scheduled_version_takes_effect_when_the_clock_reaches_it(
    client: TestClient, runtime: ServiceRuntime
) -> None:
    put_plan(client, PLAN)
    later = put_plan(
        client, {"default_rate_bps": 500, "effective_from": "2026-03-16T00:00:00+08:00"}
    )
    assert (later.json()["version"], later.json()["effective_from"]) == (2, "2026-03-15T16:00:00Z")
    history = versions(client)
    assert history["in_force"] == 1
    assert [(v["version"], v["effective_from"]) for v in history["versions"]] == [
        (0, None), (1, "2026-03-15T02:00:00Z"), (2, "2026-03-15T16:00:00Z"),
    ]  # fmt: skip
    assert history["versions"][0]["default_rate_bps"] == 1000  # FX_DEFAULT_RATE_BPS
    runtime.clock.advance_to(datetime(2026, 3, 15, 16, tzinfo=UTC))  # type: ignore[attr-defined]
    assert get(client, "/v1/plan").json()["version"] == 2
    plain = get(client, "/v1/products/gift-box/commission?price_fen=10000").json()
    assert (plain["amount_fen"], plain["basis"]) == (500, "default")  # the whole plan: no override


def test_commission_uses_the_version_in_force_when_the_order_was_paid(
    harness: Harness, client: TestClient
) -> None:
    put_plan(client, {**PLAN, "effective_from": "2026-03-15T03:00:00Z"})
    harness.qualification("qualified", NOW - DAY)
    harness.attribute("o-before", {"l-1": 10000}, NOW + timedelta(minutes=59))
    harness.attribute("o-after", {"l-1": 10000}, NOW + timedelta(hours=1))
    got = {c.order_id: (c.plan_version, c.rate_basis, c.amount_fen) for c in harness.commissions()}
    assert got == {"o-before": (0, "default", 1000), "o-after": (1, "category", 1500)}


def test_only_ops_edit_the_plan(client: TestClient) -> None:
    response = put_plan(client, PLAN, sub="d-1", role="distributor")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "forbidden")
    assert client.put("/v1/plan", json=PLAN).status_code == 401
    assert [v["version"] for v in versions(client)["versions"]] == [0]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"default_rate_bps": 10001}, "default_rate_bps"),
        ({"default_rate_bps": -1}, "default_rate_bps"),
        ({"default_rate_bps": 10.5}, "default_rate_bps"),
        ({"default_rate_bps": "1000"}, "default_rate_bps"),
        ({"default_rate_bps": True}, "default_rate_bps"),
        ({}, "default_rate_bps"),
        ({**PLAN, "categories": {"oolong": {"rate_bps": 20000}}}, "rate_bps"),
        ({**PLAN, "skus": {"gift-box": {"fen_per_unit": -5}}}, "fen_per_unit"),
        ({**PLAN, "skus": {"gift-box": {"fen_per_unit": 1.5}}}, "fen_per_unit"),
        ({**PLAN, "skus": {"gift-box": {"rate_bps": 100, "fen_per_unit": 5}}}, "exactly one"),
        ({**PLAN, "skus": {"gift-box": {}}}, "exactly one"),
        ({**PLAN, "skus": {"": {"rate_bps": 100}}}, "skus"),
        ({**PLAN, "rates": {}}, "rates"),
        ({**PLAN, "effective_from": "2026-03-16T00:00:00"}, "timezone"),
    ],
)
def test_invalid_plans_are_422_and_write_nothing(
    client: TestClient, body: dict[str, Any], says: str
) -> None:
    response = put_plan(client, body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and says in error["message"], error
    assert [v["version"] for v in versions(client)["versions"]] == [0]


def test_a_version_never_takes_effect_in_the_past(harness: Harness, client: TestClient) -> None:
    # 409, not 422: the request is well formed, the clock and the stored versions refuse it
    # (schemathesis counts a 422 for schema-valid input as a defect; issue 12).
    past = put_plan(client, {**PLAN, "effective_from": "2026-03-15T01:59:59Z"})
    assert past.status_code == 409 and "in the past" in past.json()["error"]["message"]
    put_plan(client, {**PLAN, "effective_from": "2026-03-20T00:00:00Z"})
    earlier = put_plan(client, {**PLAN, "effective_from": "2026-03-19T00:00:00Z"})
    assert earlier.status_code == 409
    assert "precedes the latest version's start" in earlier.json()["error"]["message"]
    harness.attribute("o-future", {"l-1": 10000}, datetime(2026, 3, 21, tzinfo=UTC))
    rewrite = put_plan(client, {**PLAN, "effective_from": "2026-03-21T00:00:00Z"})
    assert rewrite.status_code == 409
    assert rewrite.json()["error"]["code"] == "invalid_plan"
    assert "already paid at 2026-03-21T00:00:00+00:00" in rewrite.json()["error"]["message"]
    assert [v["version"] for v in versions(client)["versions"]] == [0, 1]


# ── the audit trail of one commission ─────────────────────────────────────────────────


def test_audit_lists_every_event_and_the_plan_version_behind_the_amount(
    filled: Harness, client: TestClient
) -> None:
    commission_id = domain.commission_id_for("o-february", "l-1")
    response = get(client, f"/v1/distributors/d-1/commissions/{commission_id}/audit")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["commission"]["amount_fen"], body["commission"]["plan_version"]) == (3000, 0)
    assert (body["plan"]["version"], body["plan"]["default_rate_bps"]) == (0, 1000)
    facts = [
        (f["kind"], f["status"], f["refund_id"], f["refund_amount_fen"]) for f in body["facts"]
    ]
    assert facts == [
        ("qualification", "qualified", None, None),
        ("attributed", None, None, None),
        ("completed", None, None, None),
        ("refunded", None, "r-1", 10000),
    ]
    topics = [f["position"]["topic"] for f in body["facts"]]
    assert topics == ["fx.qualification.v1", *["fx.attributions.v1"] * 3]
    changes = [(c["kind"], c["amount_after"], c["cause"]["ce_type"]) for c in body["changes"]]
    assert changes == [
        ("accrued", 4000, "fx.order.attributed"),
        ("frozen", 4000, "fx.order.completed"),
        ("settled", 4000, "fx.clock.set"),
        ("reversed", 3000, "fx.order.refunded"),
    ]
    attributed = body["facts"][1]
    assert body["changes"][0]["cause_id"] == attributed["event_id"]


def test_audit_of_a_version_created_over_http_shows_its_rules(
    harness: Harness, client: TestClient
) -> None:
    put_plan(client, PLAN)
    harness.attribute("o-1", [harness.line("l-1", 10000, sku="gift-box", quantity=3)], NOW)
    commission_id = domain.commission_id_for("o-1", "l-1")
    body = get(client, f"/v1/distributors/d-1/commissions/{commission_id}/audit").json()
    assert body["plan"]["skus"] == {"gift-box": {"rate_bps": None, "fen_per_unit": 2000}}
    assert (body["commission"]["rate_basis"], body["commission"]["amount_fen"]) == ("sku", 6000)


def test_audit_of_an_unknown_or_foreign_commission(filled: Harness, client: TestClient) -> None:
    other = domain.commission_id_for("o-other", "l-1")
    for path in (f"/v1/distributors/d-1/commissions/{other}/audit",
                 "/v1/distributors/d-1/commissions/nope/audit"):  # fmt: skip
        response = get(client, path, sub="ops-1", role="ops")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    foreign = get(client, f"/v1/distributors/d-2/commissions/{other}/audit", sub="d-1")
    assert foreign.status_code == 403
