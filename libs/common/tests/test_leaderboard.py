"""The pure part of the leaderboards: periods in the mall's time zone, week boundaries,
masking, ranking with ties, and the boards a rebuild computes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from fx_common.leaderboard import (
    BUCKETED,
    Period,
    mask,
    ordered,
    period_id,
    period_ids,
    period_start,
    ranked,
    scores_of,
    window_start,
)

CST = timedelta(hours=8)
moments = st.datetimes(
    min_value=datetime(2000, 1, 3), max_value=datetime(2099, 12, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: timedelta(minutes=15 * q))


def test_the_day_turns_at_midnight_in_the_mall_not_in_utc() -> None:
    before = datetime(2026, 12, 6, 15, 59, 59, tzinfo=UTC)  # 23:59:59 in Shanghai
    after = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # 00:00 on the 7th in Shanghai
    assert period_id(Period.DAY, before, CST) == "2026-12-06"
    assert period_id(Period.DAY, after, CST) == "2026-12-07"
    assert period_id(Period.DAY, after, timedelta(0)) == "2026-12-06"
    assert period_start(Period.DAY, after, CST) == after


def test_weeks_run_monday_to_sunday_by_iso_number_and_months_by_calendar() -> None:
    sunday_night = datetime(2026, 12, 6, 15, 59, tzinfo=UTC)  # Sunday 23:59 in Shanghai
    monday = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
    assert period_id(Period.WEEK, sunday_night, CST) == "2026-W49"
    assert period_id(Period.WEEK, monday, CST) == "2026-W50"
    assert period_start(Period.WEEK, sunday_night, CST) == datetime(2026, 11, 29, 16, tzinfo=UTC)
    # The ISO year of the last days of December may be the next one.
    assert period_id(Period.WEEK, datetime(2024, 12, 30, 4, tzinfo=UTC), CST) == "2025-W01"
    assert period_id(Period.MONTH, datetime(2026, 11, 30, 16, tzinfo=UTC), CST) == "2026-12"
    assert period_start(Period.MONTH, monday, CST) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert period_id(Period.ALL, monday, CST) == "all"
    assert period_start(Period.ALL, monday, CST) is None


@given(moments, offsets, st.sampled_from(BUCKETED))
def test_a_period_starts_at_or_before_the_moment_and_the_instant_before_is_another(
    moment: datetime, offset: timedelta, period: Period
) -> None:
    start = period_start(period, moment, offset)
    assert start is not None and start <= moment
    assert period_id(period, start, offset) == period_id(period, moment, offset)
    assert period_id(period, start - timedelta(microseconds=1), offset) != period_id(
        period, moment, offset
    )
    assert window_start(moment, offset) <= start


@given(moments, offsets)
def test_the_ids_of_a_moment_are_those_of_each_period(moment: datetime, offset: timedelta) -> None:
    assert period_ids(moment, offset) == {p: period_id(p, moment, offset) for p in Period}


@given(moments, offsets)
def test_period_ids_sort_as_their_periods(moment: datetime, offset: timedelta) -> None:
    later = moment + timedelta(days=3)
    for period in BUCKETED:
        assert period_id(period, moment, offset) <= period_id(period, later, offset)


def test_masking_keeps_the_first_and_last_character_only() -> None:
    assert mask("distributor-42") == "d***2"
    assert mask("ab") == "a*"
    assert mask("a") == "*"


@given(st.text(min_size=3, max_size=60))
def test_a_masked_id_shows_neither_its_middle_nor_its_length(member: str) -> None:
    masked = mask(member)
    assert len(masked) == 5
    assert masked == member[0] + "***" + member[-1]


def test_equal_scores_share_a_rank_and_the_next_rank_skips() -> None:
    board = ordered({"c": 300, "a": 500, "b": 300, "d": 100})
    assert [(r.rank, r.member, r.score) for r in ranked(board)] == [
        (1, "a", 500), (2, "b", 300), (2, "c", 300), (4, "d", 100),
    ]  # fmt: skip


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(1, 50), max_size=30))
def test_a_rank_is_one_more_than_the_members_scoring_higher(scores: dict[str, int]) -> None:
    for entry in ranked(ordered(scores)):
        assert entry.rank == 1 + sum(1 for s in scores.values() if s > entry.score)


rows = st.lists(
    st.tuples(st.sampled_from(["d-1", "d-2", "d-3"]), moments, st.integers(-500, 2000)),
    max_size=40,
)


@given(rows)
def test_a_rebuild_puts_each_value_in_its_day_week_and_month(
    recent: list[tuple[str, datetime, int]],
) -> None:
    totals: dict[str, int] = {}
    for member, _, value in recent:
        totals[member] = totals.get(member, 0) + value
    boards = scores_of(recent, totals, CST)
    assert boards[(Period.ALL, "all")] == {m: s for m, s in totals.items() if s > 0}
    for (period, pid), board in boards.items():
        if period is Period.ALL:
            continue
        expected: dict[str, int] = {}
        for member, at, value in recent:
            if period_id(period, at, CST) == pid:
                expected[member] = expected.get(member, 0) + value
        assert board == {m: s for m, s in expected.items() if s > 0}


def test_an_unreachable_redis_fails_fast_and_is_then_left_alone_for_a_while() -> None:
    import time

    import pytest

    from fx_common.leaderboard import Item
    from fx_common.leaderboard_redis import BoardUnavailable, Leaderboard

    board = Leaderboard("redis://127.0.0.1:1/0", "t.", "earned", CST)
    item = Item("e-1", "d-1", datetime(2026, 3, 2, tzinfo=UTC), 100)
    with pytest.raises(BoardUnavailable):
        board.push([item])
    started = time.monotonic()
    with pytest.raises(BoardUnavailable, match="not retried yet"):
        board.push([item])
    assert time.monotonic() - started < 0.05
    disabled = Leaderboard("", "t.", "earned", CST)
    with pytest.raises(BoardUnavailable, match="no Redis"):
        disabled.read(Period.DAY, datetime(2026, 3, 2, tzinfo=UTC), 10)
