"""Topics the services create are replicated by the size of the cluster they find."""

from __future__ import annotations

import pytest

from fx_common.runtime import replication_for


@pytest.mark.parametrize(
    ("brokers", "expected"),
    [(0, (1, 1)), (1, (1, 1)), (2, (2, 1)), (3, (3, 2)), (5, (3, 2)), (12, (3, 2))],
)
def test_three_copies_and_a_min_isr_that_survives_one_broker(
    brokers: int, expected: tuple[int, int]
) -> None:
    assert replication_for(brokers) == expected
