"""The HTTP routes of a leaderboard (`router_for("earned", …)` in commission,
`router_for("customers", …)` in referral-binding):

- `GET /v1/leaderboards/<board>` (ops): the top `limit` of a period, full ids;
- `GET /v1/distributors/{distributor_id}/leaderboards/<board>` (the distributor, ops): their
  rank and score, and the top `limit` with ids masked;
- `GET /v1/leaderboards/<board>/status` (ops): the board's count against the store's;
- `POST /v1/leaderboards/<board>/rebuild` (ops): rebuild it from the store now.

"Today", "this week" and "this month" are the periods containing the clock port's now, in
the mall's time zone (`FX_BUSINESS_UTC_OFFSET`). Redis unreachable: 503 `board_unavailable`.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fx_common.errors import ApiError
from fx_common.http import Auth, Ops, Runtime, errors, require_reader
from fx_common.http_fields import PathId
from fx_common.leaderboard import Period, mask, ranked
from fx_common.leaderboard_redis import BoardUnavailable, Reading
from fx_common.leaderboard_service import BoardWiring
from fx_common.runtime import ServiceRuntime

PERIOD_TEXT = (
    "day: today; week: this ISO week (Monday to Sunday); month: this calendar month; all: all "
    "time. In the mall's time zone (FX_BUSINESS_UTC_OFFSET), by the clock port's now."
)
UNAVAILABLE = "Redis, which keeps the boards, cannot be reached (`board_unavailable`)."

PeriodQuery = Annotated[Period, Query(description=PERIOD_TEXT)]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="How many of the top to list.")]


def _d(text: str) -> Any:
    return Field(description=text)


class Entry(BaseModel):
    rank: int = _d("Competition ranking: equal scores share a rank (1, 2, 2, 4).")
    distributor_id: str
    score: int = _d("Fen earned (earned board) or customers bound (customers board).")


class MaskedEntry(BaseModel):
    rank: int = _d("Competition ranking: equal scores share a rank (1, 2, 2, 4).")
    distributor: str = _d("The id masked: first and last character around `***`.")
    score: int
    me: bool = _d("This entry is the distributor asking.")


class BoardHead(BaseModel):
    board: str = _d("earned (commission settled, net of clawbacks) or customers (bound).")
    unit: str = _d("What a score counts: fen or customers.")
    period: Period
    period_id: str = _d("The period: 2026-12-06, 2026-W49, 2026-12 or all.")
    as_of: datetime = _d("The clock port's now.")
    members: int = _d("Distributors on the board (score above 0).")
    built_at: datetime | None = _d("The last rebuild from the store (null: never, or flushed).")


class Board(BoardHead):
    entries: list[Entry] = _d("Highest score first; equal scores by id.")


class MyRank(BoardHead):
    distributor_id: str
    rank: int | None = _d("Null when not on the board (score 0).")
    score: int
    top: list[MaskedEntry]


class BoardStatus(BaseModel):
    board: str
    state: Literal["ok", "empty", "ahead", "lagging", "rebuilding"] = _d(
        "empty: never built or flushed; ahead: counts more changes than the store (rebuild); "
        "lagging: counts fewer (pushes in flight, or lost: the watch rebuilds it)."
    )
    board_items: int = _d("Changes the board has counted.")
    store_items: int = _d("Changes the store holds that the board counts.")
    built_at: datetime | None


class Rebuild(BaseModel):
    board: str
    items: int = _d("Changes counted, from the store.")
    total: int = _d("Sum of the all-time scores.")
    boards: int = _d("Period boards written.")
    pending_applied: int = _d("Changes that arrived during the rebuild, applied after it.")
    rebuilt_at: datetime


def wiring_of(runtime: ServiceRuntime) -> BoardWiring:
    wiring = runtime.spec.extra["leaderboard"]
    assert isinstance(wiring, BoardWiring)
    return wiring


def _reading(runtime: ServiceRuntime, period: Period, limit: int, member: str | None) -> Reading:
    try:
        return wiring_of(runtime).board.read(period, runtime.clock.now(), limit, member)
    except BoardUnavailable as exc:
        raise ApiError(503, "board_unavailable", f"the leaderboard cannot be read: {exc}") from exc


def _head(runtime: ServiceRuntime, period: Period, reading: Reading) -> dict[str, Any]:
    wiring = wiring_of(runtime)
    return {
        "board": wiring.board.board,
        "unit": wiring.unit,
        "period": period,
        "period_id": reading.period_id,
        "as_of": reading.as_of,
        "members": reading.members,
        "built_at": reading.built_at,
    }


def router_for(board: str) -> APIRouter:
    router = APIRouter(tags=["leaderboards"])  # mounted under the service's /v1
    unavailable = errors(503, s503=UNAVAILABLE)

    @router.get(f"/leaderboards/{board}", responses=unavailable, name=f"{board}_board")
    def top(
        who: Ops, runtime: Runtime, period: PeriodQuery = Period.DAY, limit: LimitQuery = 10
    ) -> Board:
        """The top of the board, ids in full."""
        reading = _reading(runtime, period, limit, None)
        entries = [
            Entry(rank=r.rank, distributor_id=r.member, score=r.score) for r in ranked(reading.top)
        ]
        return Board(**_head(runtime, period, reading), entries=entries)

    @router.get(
        f"/distributors/{{distributor_id}}/leaderboards/{board}",
        responses=unavailable,
        name=f"{board}_my_rank",
    )
    def my_rank(
        distributor_id: PathId, who: Auth, runtime: Runtime,
        period: PeriodQuery = Period.DAY, limit: LimitQuery = 10,
    ) -> MyRank:  # fmt: skip
        """The distributor's rank and score, and the top with ids masked."""
        require_reader(who, distributor_id)
        reading = _reading(runtime, period, limit, distributor_id)
        masked = [
            MaskedEntry(
                rank=r.rank, distributor=mask(r.member), score=r.score,
                me=r.member == distributor_id,
            )
            for r in ranked(reading.top)
        ]  # fmt: skip
        return MyRank(
            **_head(runtime, period, reading), distributor_id=distributor_id,
            rank=reading.my_rank, score=reading.my_score or 0, top=masked,
        )  # fmt: skip

    _maintenance(router, board)
    return router


def _maintenance(router: APIRouter, board: str) -> None:
    """The ops routes that look after the board: its status, a rebuild."""
    unavailable = errors(503, s503=UNAVAILABLE)

    @router.get(f"/leaderboards/{board}/status", responses=unavailable, name=f"{board}_status")
    async def status(who: Ops, runtime: Runtime) -> BoardStatus:
        """The board's count of changes against the store's (no rebuild)."""
        wiring = wiring_of(runtime)
        try:
            found = await asyncio.to_thread(wiring.board.status, runtime.engine, wiring.source)
        except BoardUnavailable as exc:
            raise ApiError(503, "board_unavailable", str(exc)) from exc
        return BoardStatus(board=board, **vars(found))

    @router.post(f"/leaderboards/{board}/rebuild", responses=unavailable, name=f"{board}_rebuild")
    async def rebuild(who: Ops, runtime: Runtime) -> Rebuild:
        """Rebuild the board from the store now (the current day, week, month and all time);
        changes committed meanwhile are counted once."""
        wiring = wiring_of(runtime)
        now = runtime.clock.now()
        try:
            done = await asyncio.to_thread(wiring.board.rebuild, runtime.engine, wiring.source, now)
        except BoardUnavailable as exc:
            raise ApiError(503, "board_unavailable", str(exc)) from exc
        return Rebuild(board=board, **vars(done))
