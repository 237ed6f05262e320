from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from fx_common.envelope import rfc3339

_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5))])
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=_OFFSETS
)


@given(st.lists(_TIMES, min_size=1, max_size=8))
def test_rfc3339_is_the_utc_isoformat_with_z_in_any_order(moments: list[datetime]) -> None:
    # Repeats and equal instants at other offsets included: the last text is reused.
    for moment in [*moments, *moments[::-1], moments[0].astimezone(UTC)]:
        expected = moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
        assert rfc3339(moment) == expected


def test_rfc3339_of_a_known_instant() -> None:
    paid = datetime(2026, 3, 1, 16, 30, 0, 250000, tzinfo=timezone(timedelta(hours=8)))
    assert rfc3339(paid) == "2026-03-01T08:30:00.250000Z"
    assert rfc3339(paid.astimezone(UTC)) == "2026-03-01T08:30:00.250000Z"
    assert rfc3339(datetime(2026, 3, 1, 8, 30, tzinfo=UTC)) == "2026-03-01T08:30:00Z"
