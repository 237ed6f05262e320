"""Commission keeps each distributor's recruiter (fx.recruiter.recorded): once, never self."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from conftest import Harness

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_the_first_recorded_recruiter_stands_and_a_self_recruiter_is_ignored(
    harness: Harness,
) -> None:
    assert harness.recruiter("d-1", "r-1", T0).applied == 1
    harness.recruiter("d-1", "r-2", T0 + timedelta(days=1))
    harness.recruiter("d-2", "d-2", T0)
    assert harness.recruiters() == {"d-1": "r-1"}
    assert harness.published() == []
