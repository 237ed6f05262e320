"""The console over the real service APIs (in-process, SQLite): sign-in, roles, CSRF, bad
input refused with nothing written, the plan's If-Match race, the distributor centre."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fx_console.app import create_app
from fx_console.audit import merged
from fx_console.centre import fen_of
from fx_console.cluster import sums
from fx_console.ops import Panel
from fx_console.settings import ConsoleSettings
from fx_console.web import Refused

from .services import SECRET, transports


@pytest.fixture
def console(tmp_path: Path) -> Iterator[TestClient]:
    settings = ConsoleSettings(jwt_secret=SECRET, env="test")
    with TestClient(create_app(settings, transports(tmp_path)), follow_redirects=False) as c:
        yield c


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


def sign_in(client: TestClient, user: str, role: str) -> None:
    client.cookies.clear()
    page = client.get("/signin")
    answer = client.post(
        "/signin/local", data={"csrf": csrf_of(page.text), "user_id": user, "role": role}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == ("/ops" if role == "ops" else "/me")
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie


def flash(client: TestClient, answer: object, page: str) -> str:
    shown = client.get(page).text
    match = re.search(r'<p class="flash (\w+)" role="status">([^<]*)</p>', shown)
    assert match, f"no outcome shown on {page}"
    return f"{match[1]}: {html.unescape(match[2])}"


def test_pages_need_a_session_and_the_right_role(console: TestClient) -> None:
    assert console.get("/ops").headers["location"].startswith("/signin")
    sign_in(console, "u-1", "distributor")
    refused = console.get("/ops/plan")
    assert refused.status_code == 403 and "not for the distributor role" in refused.text
    assert console.get("/me").status_code == 200
    sign_in(console, "ops-1", "ops")
    assert console.get("/me").status_code == 403
    assert console.get("/ops").status_code == 200
    console.cookies.set("fx_session", "not-a-token")
    assert "sign in again" in console.get("/ops", follow_redirects=True).text


def test_sign_in_form_needs_its_csrf_token(console: TestClient) -> None:
    console.get("/signin")
    answer = console.post("/signin/local", data={"user_id": "ops-1", "role": "ops"})
    assert answer.status_code == 403
    assert "fx_session" not in answer.headers.get("set-cookie", "")


def test_apply_confirm_and_forms_without_csrf_are_refused(console: TestClient) -> None:
    sign_in(console, "u-1", "distributor")
    page = console.get("/me")
    assert "申请成为分销员" in page.text
    assert console.post("/me/apply", data={"wechat_id": "w1"}).status_code == 403
    console.post("/me/apply", data={"csrf": csrf_of(page.text), "wechat_id": "w1"})
    assert "待添加客服" in console.get("/me").text

    sign_in(console, "ops-1", "ops")
    queue = console.get("/ops/candidates")
    confirm = "/ops/candidates/u-1/confirm"
    assert confirm in queue.text
    refused = console.post(confirm, data={})
    assert refused.status_code == 403
    assert confirm in console.get("/ops/candidates").text  # still waiting: nothing written
    console.post(confirm, data={"csrf": csrf_of(queue.text)})
    assert "ok: u-1's WeChat contact is confirmed" in flash(console, None, "/ops/candidates")
    assert confirm not in console.get("/ops/candidates").text
    assert "/ops/distributors/u-1" in console.get("/ops/candidates?status=assessing").text
    sign_in(console, "u-1", "distributor")
    assert "0 / 3" in console.get("/me").text


def test_plan_edit_after_another_landed_is_refused(console: TestClient) -> None:
    sign_in(console, "ops-1", "ops")
    first = console.get("/ops/plan").text  # both operators read version 0
    assert 'id="latest">0<' in first
    form = {"csrf": csrf_of(first), "version": "0", "scope": "sku", "key": "tea-oolong",
            "rule": "rate_bps", "value": "1200"}  # fmt: skip
    console.post("/ops/plan/override", data=form)
    assert "ok: Override for tea-oolong set" in flash(console, None, "/ops/plan")
    console.post("/ops/plan/override", data=form | {"key": "tea-puer", "value": "900"})
    told = flash(console, None, "/ops/plan")
    assert told.startswith("error: Another edit landed first")
    plan = console.get("/ops/plan").text
    assert 'id="latest">1<' in plan and "tea-puer" not in plan


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [("value", "12%", "not a whole number"), ("value", "20000", "at most 10000"),
     ("scope", "brand", "for a SKU or for a category"), ("key", " ", "is required")],
)  # fmt: skip
def test_bad_plan_input_sends_nothing(
    console: TestClient, field: str, value: str, says: str
) -> None:
    sign_in(console, "ops-1", "ops")
    page = console.get("/ops/plan").text
    form = {"csrf": csrf_of(page), "version": "0", "scope": "sku", "key": "tea-oolong",
            "rule": "rate_bps", "value": "1200"}  # fmt: skip
    console.post("/ops/plan/override", data=form | {field: value})
    assert says in flash(console, None, "/ops/plan")
    assert 'id="latest">0<' in console.get("/ops/plan").text


def test_revoke_needs_a_reason_and_review_errors_are_plain(console: TestClient) -> None:
    sign_in(console, "ops-1", "ops")
    csrf = csrf_of(console.get("/ops").text)
    answer = console.post("/ops/distributors/u-9/revoke", data={"csrf": csrf, "reason": ""})
    assert answer.status_code == 422 and "reason for the revocation is required" in answer.text
    console.post("/ops/distributors/u-9/revoke", data={"csrf": csrf, "reason": "fraud"})
    assert "never applied" in flash(console, None, "/ops/distributors/u-9")
    console.post("/ops/withdrawals/w-x/approve", data={"csrf": csrf})
    assert "no withdrawal w-x" in flash(console, None, "/ops/withdrawals")
    assert console.get("/ops/distributors/bad%20id").status_code == 422
    console.post("/ops/distributors/u-9/appoint", data={"csrf": csrf, "reason": "partner"})
    told = flash(console, None, "/ops/distributors/u-9")
    assert told.startswith("error: Refused, nothing changed") and "appoint" in told


def test_a_form_posted_from_another_site_is_refused(console: TestClient) -> None:
    sign_in(console, "ops-1", "ops")
    csrf = csrf_of(console.get("/ops/plan").text)
    form = {"csrf": csrf, "version": "0", "scope": "sku", "key": "tea-oolong",
            "rule": "rate_bps", "value": "1200"}  # fmt: skip
    answer = console.post(
        "/ops/plan/override", data=form, headers={"Origin": "https://evil.example"}
    )
    assert answer.status_code == 403 and "another site" in answer.text
    assert 'id="latest">0<' in console.get("/ops/plan").text
    same = console.post("/ops/plan/override", data=form, headers={"Origin": "http://testserver"})
    assert same.status_code == 303


def test_distributor_centre_pages_are_chinese_and_own_data_only(console: TestClient) -> None:
    sign_in(console, "u-2", "distributor")
    for path, text in [("/me/products", "分享赚 ¥12.90"), ("/me/products/tea-oolong", "分享赚"),
                       ("/me/data", "数据中心"), ("/me/orders", "暂无推广订单"),
                       ("/me/customers", "我的顾客"), ("/me/withdraw", "提现规则")]:  # fmt: skip
        page = console.get(path)
        assert page.status_code == 200 and text in page.text, path
        assert '<meta charset="utf-8">' in page.text and 'lang="zh-CN"' in page.text
    assert console.get("/me/products/nope").status_code == 404
    # The only ids a distributor's page takes are its own: another's order is the service's 403.
    assert "only its own data" not in console.get("/me/orders/o-1").text
    csrf = csrf_of(console.get("/me/withdraw").text)
    console.post("/me/withdraw", data={"csrf": csrf, "idempotency_key": "k1", "amount": "5.001",
                                       "method": "alipay", "account": "13800138000"})  # fmt: skip
    assert "最多两位小数" in flash(console, None, "/me/withdraw")
    console.post("/me/withdraw", data={"csrf": csrf, "idempotency_key": "k1", "amount": "50",
                                       "method": "alipay", "account": "13800138000"})  # fmt: skip
    assert "提现未提交" in flash(console, None, "/me/withdraw")  # no balance yet: 409


def test_yuan_to_fen_is_exact() -> None:
    assert fen_of("50") == 5000 and fen_of("50.5") == 5050 and fen_of(" 0.07 ") == 7
    for bad in ("", "1e3", "-5", "5.001", "5,00"):
        with pytest.raises(Refused):
            fen_of(bad)


def audit_rows(console: TestClient) -> list[list[str]]:
    page = console.get("/ops/audit")
    assert page.status_code == 200
    table = page.text.split('<table id="audit">', 1)[1].split("</table>", 1)[0]
    return [
        [
            html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    ]


def test_the_audit_page_shows_who_did_what_from_the_services(console: TestClient) -> None:
    sign_in(console, "u-1", "distributor")
    console.post("/me/apply", data={"csrf": csrf_of(console.get("/me").text), "wechat_id": "w1"})
    sign_in(console, "ops-anna", "ops")
    console.post("/ops/candidates/u-1/confirm", data={"csrf": csrf_of(console.get("/ops").text)})
    sign_in(console, "ops-bo", "ops")
    plan = console.get("/ops/plan").text
    console.post("/ops/plan/override", data={"csrf": csrf_of(plan), "version": "0", "scope": "sku",
                 "key": "tea-oolong", "rule": "rate_bps", "value": "1200"})  # fmt: skip

    rows = audit_rows(console)
    who_what = [(r[1], r[2], r[3], r[6]) for r in rows]
    assert ("ops-bo", "rate plan version 1", "", "commission") in who_what
    assert ("ops-anna", "confirmed the contact (assessment started)", "u-1", "qualification") in (
        who_what
    )
    assert ("u-1", "applied", "u-1", "qualification") in who_what
    assert who_what.index(("u-1", "applied", "u-1", "qualification")) > who_what.index(
        ("ops-anna", "confirmed the contact (assessment started)", "u-1", "qualification")
    )
    history = console.get("/ops/distributors/u-1").text.split('<table id="history">')[1]
    assert "ops-anna" in history.split("</table>")[0]
    sign_in(console, "u-1", "distributor")
    assert console.get("/ops/audit").status_code == 403


def test_the_audit_merges_the_services_newest_first() -> None:
    step = {"distributor_id": "d-1", "withdrawal_id": "w-1", "amount_fen": 3000, "reason": None}
    payout = Panel({"entries": [
        step | {"at": "2026-03-01T12:00:00Z", "actor": None, "status": "approved",
                "transfer_ref": None},
        step | {"at": "2026-03-02T08:00:00Z", "actor": "ops-1", "status": "paid",
                "transfer_ref": "tr-1"}]})  # fmt: skip
    qualification = Panel({"entries": [
        {"at": "2026-03-01T20:00:00+00:00", "actor": "ops-2", "type": "fx.distributor.revoked",
         "user_id": "d-2", "data": {"reason": "fraud"}}]})  # fmt: skip
    rows = merged(payout, qualification, Panel(error="commission is unreachable"))
    assert [(r["actor"], r["action"], r["why"]) for r in rows] == [
        ("ops-1", "withdrawal paid", "tr-1"),
        ("ops-2", "revoked", "fraud"),
        (None, "withdrawal approved", None),
    ]


def test_the_glance_reads_the_dlq_size_the_service_exports() -> None:
    text = (
        '# TYPE fx_consumer_lag gauge\nfx_consumer_lag{service="s",topic="t",partition="0"} 4.0\n'
        "# TYPE fx_dlq_records_total counter\n"
        'fx_dlq_records_total{service="s",error_type="x"} 1.0\n'
        '# TYPE fx_dlq_size gauge\nfx_dlq_size{service="s"} 7.0\n'
    )
    assert sums(text) == (4, 1, 7)
    assert sums(text.split("# TYPE fx_dlq_size")[0]) == (4, 1, None)  # not read yet


def test_leaderboard_pages_for_a_distributor_and_for_ops(console: TestClient) -> None:
    sign_in(console, "u-3", "distributor")
    page = console.get("/me/leaderboard")
    assert page.status_code == 200, page.text
    assert "佣金榜（今日）" in page.text and "拉新榜（今日）" in page.text
    assert page.text.count("未上榜") == 2 and "暂无上榜分销员" in page.text
    assert "本月" in console.get("/me/leaderboard?period=month").text
    refused = console.get("/me/leaderboard?period=year")
    assert refused.status_code == 422 and "未知的时间范围" in refused.text
    assert console.get("/ops/leaderboards").status_code == 403

    sign_in(console, "ops-1", "ops")
    top = console.get("/ops/leaderboards?period=all")
    assert top.status_code == 200 and "Commission earned" in top.text
    assert top.text.count("Nobody on the board.") == 2
    assert console.get("/ops/leaderboards?period=year").status_code == 422
    assert console.get("/me/leaderboard").status_code == 403


def test_team_pages_for_a_distributor_and_on_the_ops_distributor_page(console: TestClient) -> None:
    sign_in(console, "u-4", "distributor")
    page = console.get("/me/team")
    assert page.status_code == 200, page.text
    assert "我的团队" in page.text and "共 0 位下级分销员" in page.text
    assert "暂无团队成员" in page.text
    refused = console.get("/me/team?page=0")
    assert refused.status_code == 422 and "页码不正确" in refused.text
    sign_in(console, "ops-1", "ops")
    shown = console.get("/ops/distributors/u-4").text.split('<section id="team">')[1]
    assert "Team (recruits)" in shown and "No recruits." in shown and "0 recruit(s)" in shown
    assert console.get("/me/team").status_code == 403
