""" "Protected at" is one rule (`domain.protected_at`): the aggregate, the API, the cache and
the store's SQL agree with it on every edge of a binding's protection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, SQLModel, create_engine

from referral_binding import domain, store
from referral_binding.cache import Answer

T0 = datetime(2026, 3, 1, tzinfo=UTC)
BOUND, UNTIL, RELEASED = T0, T0 + timedelta(days=10), T0 + timedelta(days=4)
MOMENTS = [T0 - timedelta(seconds=1), T0, T0 + timedelta(days=3), RELEASED, T0 + timedelta(days=7),
           UNTIL - timedelta(microseconds=1), UNTIL, UNTIL + timedelta(days=1)]  # fmt: skip


@pytest.mark.parametrize("released_at", [None, RELEASED, UNTIL + timedelta(days=2)])
def test_protected_at_is_from_bound_until_the_earlier_of_end_and_release(
    released_at: datetime | None,
) -> None:
    ends = UNTIL if released_at is None else min(UNTIL, released_at)
    for moment in MOMENTS:
        assert domain.protected_at(BOUND, UNTIL, released_at, moment) == (BOUND <= moment < ends)


@pytest.mark.parametrize("released_at", [None, RELEASED])
def test_aggregate_cache_and_sql_agree_with_the_rule(released_at: datetime | None) -> None:
    binding = domain.Binding("b-1", "c-1", "d-1", "s-1", BOUND, UNTIL, released_at=released_at)
    row = store.RbBinding(**{**binding.__dict__, "release_reason": None})
    answer = Answer(
        {
            "bound_at": BOUND.isoformat(),
            "protected_until": UNTIL.isoformat(),
            "released_at": released_at.isoformat() if released_at else None,
        }
    )
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine, tables=[store.RbBinding.__table__])  # type: ignore[attr-defined]
    with Session(engine) as session:
        session.add(row)
        session.commit()
        for moment in MOMENTS:
            rule = domain.protected_at(BOUND, UNTIL, released_at, moment)
            assert binding.protected_at(moment) == rule
            assert answer.holds_at(moment) == rule
            found = store.protected_binding(session, "c-1", moment)
            assert (found is not None) == rule, moment
            assert store.bound_customer_count(session, "d-1", moment) == int(rule)
