"""The ops console's pages (role `ops`): the cluster, a distributor, the queues and the rate
plan (the audit: `fx_console.audit`). Each page reads the services with the operator's token;
a service that refuses or cannot be reached shows its reason in the panel it would have
filled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from fx_common.auth import Role
from fx_console.client import ApiFailure
from fx_console.cluster import cluster
from fx_console.web import USER_ID, Refused, SignedIn, console_of, render, require

router = APIRouter(prefix="/ops")


@dataclass
class Panel:
    """One service's answer for a page, or why there is none."""

    data: Any = None
    error: str | None = None


async def panel(call: Awaitable[Any]) -> Panel:
    try:
        return Panel(await call)
    except ApiFailure as exc:
        return Panel(error=exc.message)


def ops(request: Request) -> SignedIn:
    return require(request, Role.OPS)


@router.get("", response_class=HTMLResponse)
async def dashboard(request: Request) -> Response:
    who = ops(request)
    services = console_of(request).services
    glance, candidates, queue = await asyncio.gather(
        cluster(services),
        panel(services.get("qualification", "/v1/candidates", who.token,
                           params={"status": "applied", "page_size": 1})),
        panel(services.get("payout", "/v1/withdrawals", who.token,
                           params={"status": "requested", "limit": 500})),
    )  # fmt: skip
    return render(
        request, "ops/dashboard.html", who, glance=glance, candidates=candidates, queue=queue
    )


@router.get("/cluster", response_class=HTMLResponse)
async def cluster_panel(request: Request) -> Response:
    """The cluster table alone (htmx refreshes it on the dashboard)."""
    who = ops(request)
    glance = await cluster(console_of(request).services)
    return render(request, "ops/cluster.html", who, glance=glance)


@router.get("/find")
async def find(request: Request, q: str = "") -> Response:
    who = ops(request)
    wanted = q.strip()
    if not USER_ID.fullmatch(wanted):
        raise Refused(422, "A distributor id is letters, digits and - _ . : @ (1–128).")
    del who
    return RedirectResponse(f"/ops/distributors/{quote(wanted, safe='')}", status_code=303)


def _distributor_id(value: str) -> str:
    if not USER_ID.fullmatch(value):
        raise Refused(422, "A distributor id is letters, digits and - _ . : @ (1–128).")
    return quote(value, safe="")


@router.get("/distributors/{user_id}", response_class=HTMLResponse)
async def distributor(request: Request, user_id: str) -> Response:
    who = ops(request)
    uid = _distributor_id(user_id)
    services, token = console_of(request).services, who.token
    found = await asyncio.gather(
        panel(services.get("qualification", f"/v1/distributors/{uid}", token)),
        panel(services.get("referral-binding", f"/v1/distributors/{uid}/customers", token)),
        panel(services.get("referral-binding", f"/v1/distributors/{uid}/stats", token)),
        panel(services.get("commission", f"/v1/distributors/{uid}/commissions", token,
                           params={"page_size": 100})),
        panel(services.get("payout", f"/v1/distributors/{uid}/balance", token)),
        panel(services.get("payout", f"/v1/distributors/{uid}/withdrawals", token)),
        panel(services.get("payout", f"/v1/distributors/{uid}/ledger", token,
                           params={"limit": 100})),
        panel(services.get("commission", f"/v1/distributors/{uid}/team", token,
                           params={"page_size": 100})),
    )  # fmt: skip
    status, customers, stats, commissions, balance, withdrawals, ledger, team = found
    return render(
        request, "ops/distributor.html", who, user_id=user_id, status=status,
        customers=customers, stats=stats, commissions=commissions, balance=balance,
        withdrawals=withdrawals, ledger=ledger, team=team,
    )  # fmt: skip


@router.get("/distributors/{user_id}/customers/{customer_id}", response_class=HTMLResponse)
async def customer_bindings(request: Request, user_id: str, customer_id: str) -> Response:
    """A customer's bindings over time (every distributor that protected it)."""
    who = ops(request)
    cid = _distributor_id(customer_id)
    history = await panel(
        console_of(request).services.get(
            "referral-binding", f"/v1/customers/{cid}/bindings", who.token
        )
    )
    return render(
        request, "ops/bindings.html", who, user_id=user_id, customer_id=customer_id,
        history=history,
    )  # fmt: skip


@router.get("/distributors/{user_id}/commissions/{commission_id}", response_class=HTMLResponse)
async def commission_trail(request: Request, user_id: str, commission_id: str) -> Response:
    """Why one commission moved: accrued → released → settled → reversed, with causes."""
    who = ops(request)
    uid, cid = _distributor_id(user_id), quote(commission_id, safe="")
    audit = await panel(
        console_of(request).services.get(
            "commission", f"/v1/distributors/{uid}/commissions/{cid}/audit", who.token
        )
    )
    return render(request, "ops/trail.html", who, user_id=user_id, audit=audit)


@router.get("/candidates", response_class=HTMLResponse)
async def candidates(request: Request, status: str = "applied") -> Response:
    who = ops(request)
    if status not in ("applied", "assessing", "qualified", "failed", "revoked"):
        raise Refused(422, f"There is no candidate status {status!r}.")
    found = await panel(
        console_of(request).services.get(
            "qualification", "/v1/candidates", who.token, params={"status": status,
                                                                   "page_size": 200}
        )
    )  # fmt: skip
    return render(request, "ops/candidates.html", who, status=status, found=found)


@router.get("/withdrawals", response_class=HTMLResponse)
async def withdrawals(request: Request, status: str = "requested") -> Response:
    who = ops(request)
    if status not in ("requested", "approved", "paid", "rejected", "failed"):
        raise Refused(422, f"There is no withdrawal status {status!r}.")
    found = await panel(
        console_of(request).services.get(
            "payout", "/v1/withdrawals", who.token, params={"status": status, "limit": 500}
        )
    )
    return render(request, "ops/withdrawals.html", who, status=status, found=found)


@router.get("/plan", response_class=HTMLResponse)
async def plan(request: Request) -> Response:
    who = ops(request)
    versions = await panel(
        console_of(request).services.get("commission", "/v1/plan/versions", who.token)
    )
    in_force = None
    if versions.data is not None:
        number = versions.data["in_force"]
        in_force = next(v for v in versions.data["versions"] if v["version"] == number)
    return render(request, "ops/plan.html", who, versions=versions, in_force=in_force)
