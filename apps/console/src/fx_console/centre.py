"""The distributor centre (分销中心): the seed's C-side pages as mobile pages in zh-CN, for a
distributor's own token. Every page reads the signed-in user's own data: no page takes
another user's id, and the services refuse one anyway (403)."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fx_common.auth import Role
from fx_console.client import ApiFailure
from fx_console.ops import Panel, panel
from fx_console.web import (
    Refused,
    SignedIn,
    checked_form,
    console_of,
    done,
    render,
    require,
    text_field,
)

router = APIRouter(prefix="/me")
YUAN = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
METHODS = {"alipay": "支付宝", "wechat_wallet": "微信零钱", "bank_card": "银行卡"}


def me(request: Request) -> tuple[SignedIn, str]:
    who = require(request, Role.DISTRIBUTOR)
    return who, quote(who.sub, safe="")


def fen_of(text: str) -> int:
    """Yuan as typed ("50", "50.5", "50.05") to integer fen, exactly; Refused otherwise."""
    match = YUAN.fullmatch(text.strip())
    if match is None:
        raise Refused(422, "提现金额请填写数字，最多两位小数（例如 50 或 50.50）。")
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


@router.get("", response_class=HTMLResponse)
async def personal_centre(request: Request) -> Response:
    """个人中心: status, balance, assessment progress (and the application pop-up)."""
    who, uid = me(request)
    services = console_of(request).services
    status, balance, summary = await asyncio.gather(
        panel(services.get("qualification", f"/v1/distributors/{uid}", who.token)),
        panel(services.get("payout", f"/v1/distributors/{uid}/balance", who.token)),
        panel(services.get("commission", f"/v1/distributors/{uid}/summary", who.token)),
    )
    never_applied = status.data is None and status.error is not None and "never applied" in (
        status.error
    )  # fmt: skip
    return render(
        request, "me/centre.html", who, status=status, balance=balance, summary=summary,
        never_applied=never_applied,
    )  # fmt: skip


@router.post("/apply")
async def apply(request: Request) -> Response:
    """The application pop-up's form: apply, optionally with a WeChat id."""
    who, _ = me(request)
    form = await checked_form(request, who)
    wechat = text_field(form, "wechat_id", "微信号", required=False)
    if len(wechat) > 128:
        return done("/me", "微信号太长（最多 128 个字符）。", ok=False)
    body = {"wechat_id": wechat} if wechat else {}
    try:
        await console_of(request).services.post(
            "qualification", "/v1/applications", who.token, json=body
        )
    except ApiFailure as exc:
        return done("/me", f"申请未提交：{exc.message}", ok=False)
    return done("/me", "申请已提交：请添加客服微信，确认后开始考核。")


async def _product_commission(request: Request, token: str, product: Any) -> Panel:
    params: dict[str, Any] = {"price_fen": product.price_fen}
    if product.category:
        params["category"] = product.category
    return await panel(
        console_of(request).services.get(
            "commission", f"/v1/products/{quote(product.sku, safe='')}/commission", token,
            params=params,
        )
    )  # fmt: skip


@router.get("/products", response_class=HTMLResponse)
async def products(request: Request) -> Response:
    """商品中心: the mall's products, each with what sharing it earns."""
    who, _ = me(request)
    catalogue = console_of(request).catalogue
    earns = await asyncio.gather(*(_product_commission(request, who.token, p) for p in catalogue))
    return render(request, "me/products.html", who, items=list(zip(catalogue, earns, strict=True)))


@router.get("/products/{sku}", response_class=HTMLResponse)
async def product(request: Request, sku: str) -> Response:
    """分销商品详情: "分享赚 ¥X" and the rule that priced it."""
    who, _ = me(request)
    found = next((p for p in console_of(request).catalogue if p.sku == sku), None)
    if found is None:
        raise Refused(404, f"没有商品 {sku}。")
    earns = await _product_commission(request, who.token, found)
    return render(request, "me/product.html", who, product=found, earns=earns)


@router.get("/data", response_class=HTMLResponse)
async def data_centre(request: Request) -> Response:
    """数据中心: commission today / this month / all time, visits and customers."""
    who, uid = me(request)
    services = console_of(request).services
    summary, stats = await asyncio.gather(
        panel(services.get("commission", f"/v1/distributors/{uid}/summary", who.token)),
        panel(services.get("referral-binding", f"/v1/distributors/{uid}/stats", who.token)),
    )
    return render(request, "me/data.html", who, summary=summary, stats=stats)


@router.get("/orders", response_class=HTMLResponse)
async def orders(request: Request) -> Response:
    """订单列表: promotion orders, each with its lines' commission and state."""
    who, uid = me(request)
    page = await panel(
        console_of(request).services.get(
            "commission", f"/v1/distributors/{uid}/commissions", who.token,
            params={"page_size": 100},
        )
    )  # fmt: skip
    grouped: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
    for line in (page.data or {}).get("items", []):
        grouped.setdefault(line["order_id"], []).append(line)
    return render(request, "me/orders.html", who, page=page, orders=grouped)


@router.get("/orders/{order_id}", response_class=HTMLResponse)
async def order(request: Request, order_id: str) -> Response:
    """推广订单详情: the order's lines and every change of their commission."""
    who, uid = me(request)
    detail = await panel(
        console_of(request).services.get(
            "commission", f"/v1/distributors/{uid}/orders/{quote(order_id, safe='')}", who.token
        )
    )
    return render(request, "me/order.html", who, detail=detail)


@router.get("/customers", response_class=HTMLResponse)
async def customers(request: Request) -> Response:
    """顾客列表: customers bound to the distributor, with the end of their protection."""
    who, uid = me(request)
    found = await panel(
        console_of(request).services.get(
            "referral-binding", f"/v1/distributors/{uid}/customers", who.token
        )
    )
    return render(request, "me/customers.html", who, found=found)


@router.get("/withdraw", response_class=HTMLResponse)
async def withdraw_page(request: Request) -> Response:
    """提现页面: balance, rules, requests in progress and history, and the request form (its
    idempotency key is made with the page: submitting the same form twice is one request)."""
    who, uid = me(request)
    page = await panel(
        console_of(request).services.get(
            "payout", f"/v1/distributors/{uid}/withdrawal-page", who.token
        )
    )
    return render(
        request, "me/withdraw.html", who, page=page, key=f"console-{uuid.uuid4()}",
        methods=METHODS,
    )  # fmt: skip


@router.post("/withdraw")
async def withdraw(request: Request) -> Response:
    who, _ = me(request)
    form = await checked_form(request, who)
    try:
        key = text_field(form, "idempotency_key", "请求编号")
        amount = fen_of(text_field(form, "amount", "提现金额"))
        method = text_field(form, "method", "提现方式")
        account = text_field(form, "account", "收款账号")
    except Refused as exc:
        return done("/me/withdraw", f"未提交：{exc.message}", ok=False)
    if method not in METHODS:
        return done("/me/withdraw", "未提交：请选择提现方式。", ok=False)
    try:
        answer = await console_of(request).services.call(
            "payout", "POST", "/v1/withdrawals", who.token,
            json={"amount_fen": amount, "method": method, "account": account},
            headers={"Idempotency-Key": key},
        )  # fmt: skip
    except ApiFailure as exc:
        return done("/me/withdraw", f"提现未提交：{exc.message}", ok=False)
    if answer.status_code == 200:  # the same request again: the withdrawal it made
        return done("/me/withdraw", "这笔提现申请已提交过，未重复提现。")
    return done("/me/withdraw", "提现申请已提交。")
