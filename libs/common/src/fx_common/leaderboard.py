"""Leaderboards (排行榜), the pure part: periods in the mall's time zone, the keys of a board,
ranking with ties, masking, and the scores a rebuild computes from a store.

A board ranks distributors by a score that is a sum of deltas (`Item`): each counted change
in a service's store adds its delta to the board of every period that contains its time
(`Item.at`, the change's event time, in the mall's day): the day, the ISO week (Monday to
Sunday), the month, and all time. Redis keeps the boards (`fx_common.leaderboard_redis`);
the stores are the truth, and a rebuild recomputes them (`scores_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from functools import cache


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    ALL = "all"


BUCKETED: tuple[Period, ...] = (Period.DAY, Period.WEEK, Period.MONTH)
"""The periods a time falls in (besides all time)."""


@dataclass(frozen=True)
class Item:
    """One counted change: `id` is counted once (the event id of the change, or the id of
    the row it created), `delta` goes to `member`'s score in every period containing `at`."""

    id: str
    member: str
    at: datetime
    delta: int


@dataclass(frozen=True)
class Ranked:
    rank: int
    member: str
    score: int


def local(moment: datetime, utc_offset: timedelta) -> datetime:
    """The wall-clock time in the mall (naive), for a UTC instant."""
    return (moment.astimezone(UTC) + utc_offset).replace(tzinfo=None)


def period_id(period: Period, moment: datetime, utc_offset: timedelta) -> str:
    """The name of the period containing `moment` in the mall's time zone: `2026-12-06`,
    `2026-W49` (ISO week, Monday first), `2026-12`, `all`."""
    if period is Period.ALL:
        return "all"
    wall = local(moment, utc_offset)
    if period is Period.DAY:
        return wall.date().isoformat()
    if period is Period.WEEK:
        year, week, _ = wall.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{wall.year:04d}-{wall.month:02d}"


def period_start(period: Period, moment: datetime, utc_offset: timedelta) -> datetime | None:
    """The first instant (UTC, aware) of the period containing `moment`; None for all time."""
    if period is Period.ALL:
        return None
    wall = local(moment, utc_offset)
    day = wall.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.WEEK:
        day -= timedelta(days=day.weekday())
    elif period is Period.MONTH:
        day = day.replace(day=1)
    return (day - utc_offset).replace(tzinfo=UTC)


def window_start(now: datetime, utc_offset: timedelta) -> datetime:
    """The earliest instant any current period (day, week, month) covers."""
    starts = [period_start(p, now, utc_offset) for p in BUCKETED]
    return min(s for s in starts if s is not None)


def period_ids(moment: datetime, utc_offset: timedelta) -> dict[Period, str]:
    """Every period `moment` falls in, all time included (per mall day, computed once: the
    feed asks for every item)."""
    return _ids_of_day(local(moment, utc_offset).date())


@cache
def _ids_of_day(day: date) -> dict[Period, str]:
    year, week, _ = day.isocalendar()
    return {
        Period.DAY: day.isoformat(),
        Period.WEEK: f"{year}-W{week:02d}",
        Period.MONTH: f"{day.year:04d}-{day.month:02d}",
        Period.ALL: "all",
    }


def mask(member: str) -> str:
    """An id as a distributor sees another's: first and last character around `***` (one
    or two characters: the first, then `*`), so neither the id nor its length shows."""
    if len(member) <= 1:
        return "*"
    if len(member) == 2:
        return member[0] + "*"
    return f"{member[0]}***{member[-1]}"


def ordered(scores: Mapping[str, int]) -> list[tuple[str, int]]:
    """Highest score first; equal scores by id, ascending (as the board stores them)."""
    return sorted(scores.items(), key=lambda entry: (-entry[1], entry[0]))


def ranked(entries: Iterable[tuple[str, int]]) -> list[Ranked]:
    """Competition ranking ("1224"): a member's rank is one more than the number of members
    with a higher score, so equal scores share a rank. `entries` are in board order."""
    out: list[Ranked] = []
    for position, (member, score) in enumerate(entries, start=1):
        tied = out and out[-1].score == score
        out.append(Ranked(out[-1].rank if tied else position, member, score))
    return out


def scores_of(
    recent: Iterable[tuple[str, datetime, int]],
    totals: Mapping[str, int],
    utc_offset: timedelta,
) -> dict[tuple[Period, str], dict[str, int]]:
    """The boards a rebuild writes: per (period, period id), member → score, from the
    store's `recent` (member, time, value) rows (those since `window_start`) and all-time
    `totals`. Scores of 0 or less are left out (a board lists earners only)."""
    boards: dict[tuple[Period, str], dict[str, int]] = {}
    for member, at, value in recent:
        for period in BUCKETED:
            board = boards.setdefault((period, period_id(period, at, utc_offset)), {})
            board[member] = board.get(member, 0) + value
    boards[(Period.ALL, "all")] = dict(totals)
    return {
        key: {member: score for member, score in board.items() if score > 0}
        for key, board in boards.items()
    }
