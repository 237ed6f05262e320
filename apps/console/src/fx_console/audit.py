"""The ops console's audit page: who did what, when and why, as the services record it
(payout's withdrawal steps, qualification's commands, commission's plan versions), merged
into one list, newest first. The console's own log of the actions it sent stays beside it
(logger `fx_console`)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fx_console.ops import Panel, ops, panel
from fx_console.web import console_of, render

router = APIRouter(prefix="/ops")

QUALIFICATION_ACTIONS = {
    "fx.distributor.applied": "applied",
    "fx.distributor.assessment_started": "confirmed the contact (assessment started)",
    "fx.distributor.qualified": "qualified",
    "fx.distributor.revoked": "revoked",
}


def _qualification_rows(page: Panel) -> list[dict[str, Any]]:
    rows = []
    for entry in page.data["entries"] if page.data else []:
        data = entry["data"]
        action = QUALIFICATION_ACTIONS.get(entry["type"], entry["type"])
        if data.get("via"):
            action = f"{action} ({data['via']})"
        rows.append(
            {"at": entry["at"], "service": "qualification", "actor": entry["actor"],
             "action": action, "distributor": entry["user_id"], "subject": None,
             "why": data.get("reason")}
        )  # fmt: skip
    return rows


def _payout_rows(page: Panel) -> list[dict[str, Any]]:
    rows = []
    for entry in page.data["entries"] if page.data else []:
        rows.append(
            {"at": entry["at"], "service": "payout", "actor": entry["actor"],
             "action": f"withdrawal {entry['status']}", "distributor": entry["distributor_id"],
             "subject": entry["withdrawal_id"], "amount_fen": entry["amount_fen"],
             "why": entry["reason"] or entry["transfer_ref"]}
        )  # fmt: skip
    return rows


def _plan_rows(page: Panel) -> list[dict[str, Any]]:
    rows = []
    for version in page.data["versions"] if page.data else []:
        if not version.get("version") or version.get("created_at") is None:
            continue  # version 0: the configured default, made by nobody
        rows.append(
            {"at": version["created_at"], "service": "commission", "actor": version["created_by"],
             "action": f"rate plan version {version['version']}", "distributor": None,
             "subject": None, "why": f"effective from {version['effective_from']}"}
        )  # fmt: skip
    return rows


def merged(withdrawals: Panel, qualification: Panel, plan: Panel) -> list[dict[str, Any]]:
    """Every service's record in one list, newest first."""
    rows = [*_payout_rows(withdrawals), *_qualification_rows(qualification), *_plan_rows(plan)]
    return sorted(rows, key=lambda row: datetime.fromisoformat(row["at"]), reverse=True)


@router.get("/audit", response_class=HTMLResponse)
async def audit(request: Request) -> Response:
    """Who did what: the services' own records (each names the operator: the token `sub`)."""
    who = ops(request)
    services, token = console_of(request).services, who.token
    withdrawals, qualification, plan = await asyncio.gather(
        panel(services.get("payout", "/v1/audit", token, params={"limit": 200})),
        panel(services.get("qualification", "/v1/audit", token, params={"page_size": 200})),
        panel(services.get("commission", "/v1/plan/versions", token)),
    )
    return render(
        request,
        "ops/audit.html",
        who,
        rows=merged(withdrawals, qualification, plan),
        failures=[p for p in (withdrawals, qualification, plan) if p.error],
    )
