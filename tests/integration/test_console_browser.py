"""The console in a real browser (Playwright driving Debian's Chromium) over the four services
as processes on the real broker, on the simulated clock.

A distributor applies, watches the assessment progress, qualifies, sees a commission move from
held to settled, and requests a withdrawal twice with the same key (one withdrawal). An
operator confirms the contact, finds the distributor, approves and pays one withdrawal (the
balance changes), rejects another (the hold returns), and edits an override after another edit
landed (told so). A form without its CSRF token and a distributor's cookie on an ops page are
refused. Each page's screenshot is written to var/test-artifacts/console/ (FX_SCREENSHOTS)."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from demo.cluster import REPO, Cluster
from demo.scenario import T0, Scenario

pytestmark = pytest.mark.integration
SHOTS = Path(os.environ.get("FX_SCREENSHOTS", REPO / "var" / "test-artifacts" / "console"))
DISTRIBUTOR, BUYER = "u-tea", "c-zhang"


@pytest.fixture
async def browser(screenshots: Path) -> AsyncIterator[Browser]:
    # A loaded CI machine answers a form in more than the default 5 s now and then.
    expect.set_options(timeout=20_000)
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                           args=["--no-sandbox"])  # fmt: skip
        yield launched
        await launched.close()


@pytest.fixture
def screenshots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


async def sign_in(browser: Browser, base: str, user: str, role: str) -> Page:
    mobile = {"viewport": {"width": 412, "height": 900}} if role == "distributor" else {}
    context = await browser.new_context(base_url=base, locale="zh-CN", **mobile)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto("/signin")
    local = page.locator("form[action='/signin/local']")
    await local.locator("input[name=user_id]").fill(user)
    await local.locator("select[name=role]").select_option(role)
    await local.locator("button").click()
    await page.wait_for_url(re.compile("/ops$" if role == "ops" else "/me$"))
    return page


async def shot(page: Page, name: str) -> None:
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def until(page: Page, path: str, text: str, timeout_s: float = 60) -> None:
    """Reload `path` until it shows `text` (the services apply events asynchronously)."""
    for _ in range(int(timeout_s * 2)):
        await page.goto(path)
        if text in await page.content():
            return
        await page.wait_for_timeout(500)
    raise AssertionError(f"{path} never showed {text!r}")


async def flash(page: Page) -> str:
    return await page.locator(".flash").inner_text()


async def test_operator_and_distributor_in_the_browser(
    bootstrap: str, unique: str, tmp_path: Path, browser: Browser
) -> None:
    cluster = Cluster(bootstrap, tmp_path, namespace=f"console-{unique}.", extra_env={
        "FX_CLOCK": "simulated", "FX_AUTO_APPROVE_LIMIT_FEN": "0", "FX_LOG_LEVEL": "WARNING",
    })  # fmt: skip
    cluster.start_all()
    scenario = Scenario(cluster, say=lambda _: None)
    await scenario.producer.start()
    try:
        base = cluster.start_console()
        await scenario.set_clock(T0)
        me = await sign_in(browser, base, DISTRIBUTOR, "distributor")
        ops = await sign_in(browser, base, "ops-1", "ops")
        await apply_and_confirm(me, ops)
        await qualify_and_settle(scenario, me)
        await withdraw_twice_with_one_key(me)
        await review_withdrawals(ops)
        await leaderboards(me, ops)
        await team(await sign_in(browser, base, BUYER, "distributor"), me, ops)
        await plan_race(ops)
        await audit_trail(ops)
        await refusals(me, ops)
    finally:
        await scenario.producer.stop()
        await scenario.http.aclose()
        cluster.stop_all()


async def apply_and_confirm(me: Page, ops: Page) -> None:
    await me.get_by_role("button", name="申请成为分销员").click()
    await me.locator("dialog#apply input[name=wechat_id]").fill("wx-tea")
    await me.get_by_role("button", name="提交申请").click()
    await expect(me.locator("#status")).to_have_text("待添加客服")
    await shot(me, "me-centre-applied")
    sizes = ops.locator("#cluster td.dlq-size")
    await expect(sizes).to_have_count(4)
    for n in range(4):  # each service read its DLQ topic's size at start: empty
        await expect(sizes.nth(n)).to_have_text("0")
    await shot(ops, "ops-dashboard")
    await ops.goto("/ops/candidates")
    await shot(ops, "ops-candidates")
    await ops.locator(f"form[action='/ops/candidates/{DISTRIBUTOR}/confirm'] button").click()
    assert "assessment has started" in await flash(ops)
    await me.reload()
    await expect(me.locator("#status")).to_have_text("考核中")
    await expect(me.locator("#progress")).to_have_text("0 / 3")


async def qualify_and_settle(scenario: Scenario, me: Page) -> None:
    share = {"share_id": "s-1", "sharer_id": DISTRIBUTOR}
    await scenario.publish("mall.share.created", share | {"product_sku": "tea-oolong"}, T0)
    visit = share | {"visitor_id": BUYER}
    await scenario.publish("mall.share.visited", visit, T0 + timedelta(minutes=1))
    await scenario.count("fx.binding.created", 1)
    await scenario.pay("o-1", BUYER, T0 + timedelta(days=1))
    await until(me, "/me", "1 / 3")  # the assessment progresses
    await me.get_by_role("button", name="查看考核").click()
    await shot(me, "me-assessment-popup")
    await until(me, "/me/orders", "考核中冻结")  # held while assessed
    for n in (2, 3):
        await scenario.pay(f"o-{n}", BUYER, T0 + timedelta(days=n))
    await until(me, "/me", "分销员")
    for n in (1, 2, 3):
        data = {"order_id": f"o-{n}", "buyer_id": BUYER}
        await scenario.publish("mall.order.completed", data, T0 + timedelta(days=5))
    await scenario.count("fx.order.completed", 3)
    await scenario.set_clock(T0 + timedelta(days=13))  # past the 7-day after-sales hold
    await until(me, "/me/orders", "已结算")
    await shot(me, "me-orders")
    await me.goto("/me/orders/o-1")
    await shot(me, "me-order-detail")
    await me.goto("/me/data")
    await expect(me.locator("#all-settled")).to_have_text("¥77.40")  # 3 × 10 % of ¥258.00
    await shot(me, "me-data-centre")
    for path, name in (
        ("/me/customers", "me-customers"), ("/me/products", "me-products"),
        ("/me/products/tea-oolong", "me-product-detail"), ("/me", "me-centre"),
    ):  # fmt: skip
        await me.goto(path)
        await shot(me, name)


async def withdraw_twice_with_one_key(me: Page) -> None:
    await me.goto("/me/withdraw")
    form = me.locator("form#withdraw")
    fields: dict[str, str | float | bool] = {
        name: await form.locator(f"input[name={name}]").input_value()
        for name in ("csrf", "idempotency_key")
    }
    fields |= {"amount": "30", "method": "alipay", "account": "13800138000"}
    await form.locator("input[name=amount]").fill("30")
    await form.locator("input[name=account]").fill("13800138000")
    await form.get_by_role("button").click()
    assert "已提交" in await flash(me)
    again = await me.request.post("/me/withdraw", form=fields)  # the same form sent again
    assert again.ok and "未重复提现" in await again.text()
    await me.goto("/me/withdraw")
    assert await me.locator("#history tr[data-withdrawal]").count() == 1
    await expect(me.locator("#on-hold")).to_have_text("¥30.00")
    await form.locator("input[name=amount]").fill("20")
    await form.locator("input[name=account]").fill("13800138000")
    await form.get_by_role("button").click()
    await expect(me.locator("#on-hold")).to_have_text("¥50.00")
    await shot(me, "me-withdraw")


async def review_withdrawals(ops: Page) -> None:
    await ops.locator("header input[name=q]").fill(DISTRIBUTOR)
    await ops.locator("header form[action='/ops/find'] button").click()
    await expect(ops.locator("h1")).to_have_text(f"Distributor {DISTRIBUTOR}")
    await expect(ops.locator("#available")).to_have_text("¥27.40")
    await expect(ops.locator("#on-hold")).to_have_text("¥50.00")
    await shot(ops, "ops-distributor")
    row30 = ops.locator("#balance tr[data-withdrawal]", has_text="¥30.00")
    await row30.get_by_role("button", name="Approve").click()
    assert "approve done" in await flash(ops)
    await row30.get_by_label("transfer reference").fill("ALI-2026-0001")
    await row30.get_by_role("button", name="Mark paid").click()
    await expect(ops.locator("#paid-out")).to_have_text("¥30.00")
    await expect(ops.locator("#on-hold")).to_have_text("¥20.00")
    row20 = ops.locator("#balance tr[data-withdrawal]", has_text="¥20.00")
    await row20.get_by_role("button", name="Reject").click()  # no reason: refused, nothing sent
    await expect(ops.locator("h1")).to_have_text("Refused")
    await ops.go_back()
    await ops.reload()
    await row20.get_by_label("rejection reason").fill("account name does not match")
    await row20.get_by_role("button", name="Reject").click()
    await expect(ops.locator("#on-hold")).to_have_text("¥0.00")  # the hold returns
    await expect(ops.locator("#available")).to_have_text("¥47.40")
    # The ledger behind the balance, newest first: the release, the payout, the two holds.
    kinds = ops.locator("#ledger tr td:nth-child(3)")
    await expect(kinds.nth(0)).to_have_text("release")
    await expect(ops.locator("#ledger tr", has_text="payout")).to_contain_text("-¥30.00")
    row = ops.locator("#commissions a", has_text="trail").first
    await row.click()
    await expect(ops.locator("h1")).to_contain_text("Commission trail")
    await shot(ops, "ops-commission-trail")


async def leaderboards(me: Page, ops: Page) -> None:
    """排行榜: the distributor's own rank on each board (all time: the settled commission, the
    customer bound); ops see the top lists with ids in full."""
    await until(me, "/me/leaderboard?period=all", "¥77.40")
    await expect(me.locator("#board-earned .my-rank")).to_have_text("第 1 名")
    await expect(me.locator("#board-earned tr.me")).to_contain_text("（我）")
    await until(me, "/me/leaderboard?period=all", "1 位")
    await expect(me.locator("#board-customers .my-rank")).to_have_text("第 1 名")
    await shot(me, "me-leaderboard")
    await ops.goto("/ops/leaderboards?period=all")
    await expect(ops.locator("#top-1 tr", has_text=DISTRIBUTOR)).to_contain_text("¥77.40")
    await expect(ops.locator("#top-2 tr", has_text=DISTRIBUTOR)).to_contain_text("1")
    await shot(ops, "ops-leaderboards")


async def team(recruit: Page, me: Page, ops: Page) -> None:
    """我的团队: the customer u-tea's binding covers applies and joins u-tea's team; ops see
    the recruit on u-tea's page."""
    await recruit.get_by_role("button", name="申请成为分销员").click()
    await recruit.get_by_role("button", name="提交申请").click()
    await expect(recruit.locator("#status")).to_have_text("待添加客服")
    await until(me, "/me/team", BUYER)
    member = me.locator(f"#team tr[data-member='{BUYER}']")
    await expect(member).to_contain_text("待添加客服")
    await expect(member.locator(".tier2-settled")).to_have_text("¥0.00")  # one tier: none
    await shot(me, "me-team")
    await ops.goto(f"/ops/distributors/{DISTRIBUTOR}")
    await expect(ops.locator(f"#team tr[data-member='{BUYER}']")).to_contain_text("applied")
    await ops.locator("#team").scroll_into_view_if_needed()
    await shot(ops, "ops-distributor-team")


async def plan_race(ops: Page) -> None:
    other = await ops.context.new_page()
    await ops.goto("/ops/plan")
    await other.goto("/ops/plan")  # both operators see version 0
    for page, key, value in ((ops, "tea-oolong", "1200"), (other, "tea-puer", "900")):
        form = page.locator("form#override")
        await form.locator("input[name=key]").fill(key)
        await form.locator("input[name=value]").fill(value)
    await ops.locator("form#override button").click()
    assert "Override for tea-oolong set" in await flash(ops)
    await other.locator("form#override button").click()
    assert "Another edit landed first" in await flash(other)
    await expect(other.locator("#latest")).to_have_text("1")
    assert "tea-puer" not in await other.locator("table").first.inner_text()
    await shot(other, "ops-plan-conflict")


async def audit_trail(ops: Page) -> None:
    """The services' record of who did what: the plan edit, the reviews, the confirmation,
    the distributor's own requests."""
    await ops.goto("/ops/audit")
    await expect(ops.locator("#audit tr", has_text="rate plan version 1")).to_contain_text("ops-1")
    paid = ops.locator("#audit tr", has_text="withdrawal paid")
    await expect(paid).to_contain_text("ops-1")
    await expect(paid).to_contain_text("ALI-2026-0001")
    rejected = ops.locator("#audit tr", has_text="withdrawal rejected")
    await expect(rejected).to_contain_text("ops-1")
    await expect(rejected).to_contain_text("account name does not match")
    confirmed = ops.locator("#audit tr", has_text="confirmed the contact")
    await expect(confirmed).to_contain_text("ops-1")
    await expect(ops.locator("#audit tr", has_text="withdrawal requested")).to_have_count(2)
    await shot(ops, "ops-audit")


async def refusals(me: Page, ops: Page) -> None:
    no_csrf = await ops.request.post(
        "/ops/plan/override",
        form={"version": "1", "scope": "sku", "key": "tea-x", "rule": "rate_bps", "value": "1"},
    )
    assert no_csrf.status == 403 and "did not come from this console" in await no_csrf.text()
    await ops.goto("/ops/plan")
    await expect(ops.locator("#latest")).to_have_text("1")  # nothing written
    answer = await me.goto("/ops/withdrawals")
    assert answer is not None and answer.status == 403
    assert "not for the distributor role" in await me.content()
