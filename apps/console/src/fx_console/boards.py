"""Leaderboards (排行榜) and the team (我的团队) in the console: for a distributor, their own
rank and the masked top lists, and their own team; for ops, the top lists with full ids (a
distributor's team is on their page, `fx_console.ops`). The data
are the services' (commission's `earned` board, referral-binding's `customers` board); the
console keeps nothing."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from fx_console.centre import me
from fx_console.ops import Panel, ops, panel
from fx_console.web import Refused, console_of, render

me_router = APIRouter(prefix="/me")
ops_router = APIRouter(prefix="/ops")

PERIODS = {"day": "今日", "week": "本周", "month": "本月", "all": "全部"}
"""The leaderboards' periods, in the mall's time zone (the services decide what "today" is)."""
BOARDS = (("earned", "commission"), ("customers", "referral-binding"))
"""Each board and the service that keeps it."""


def period_of(value: str | None, *, chinese: bool) -> str:
    if value is None or value == "":
        return "day"
    if value not in PERIODS:
        raise Refused(
            422, "未知的时间范围。" if chinese else "Unknown period: day, week, month or all."
        )
    return value


async def both_boards(
    request: Request, token: str, path: str, period: str, *, limit: int
) -> list[Panel]:
    """The earned and the customers board (`path` with `{board}`), each from its service."""
    services = console_of(request).services
    return list(
        await asyncio.gather(
            *(
                panel(
                    services.get(
                        service,
                        path.format(board=board),
                        token,
                        params={"period": period, "limit": limit},
                    )
                )
                for board, service in BOARDS
            )
        )
    )


@me_router.get("/leaderboard", response_class=HTMLResponse)
async def my_rank(request: Request, period: str | None = None) -> Response:
    """排行榜: the distributor's own rank and score on each board, and the masked top 10."""
    who, uid = me(request)
    chosen = period_of(period, chinese=True)
    earned, customers = await both_boards(
        request, who.token, f"/v1/distributors/{uid}/leaderboards/{{board}}", chosen, limit=10
    )
    return render(
        request, "me/leaderboard.html", who, period=chosen, periods=PERIODS,
        earned=earned, customers=customers,
    )  # fmt: skip


@me_router.get("/team", response_class=HTMLResponse)
async def my_team(request: Request, page: int = 1) -> Response:
    """我的团队: the distributor's recruits (sub-distributors), their status, their orders and
    the tier-2 commission they brought (commission's team route, the caller's own)."""
    who, uid = me(request)
    if not 1 <= page <= 100_000:
        raise Refused(422, "页码不正确。")
    team = await panel(
        console_of(request).services.get(
            "commission", f"/v1/distributors/{uid}/team", who.token,
            params={"page": page, "page_size": 20},
        )
    )  # fmt: skip
    return render(request, "me/team.html", who, team=team, page=page)


@ops_router.get("/leaderboards", response_class=HTMLResponse)
async def top_lists(request: Request, period: str | None = None) -> Response:
    """Ops: the top 20 of each board for a period, ids in full."""
    who = ops(request)
    chosen = period_of(period, chinese=False)
    earned, customers = await both_boards(
        request, who.token, "/v1/leaderboards/{board}", chosen, limit=20
    )
    return render(
        request, "ops/leaderboards.html", who, period=chosen, periods=PERIODS,
        earned=earned, customers=customers,
    )  # fmt: skip
