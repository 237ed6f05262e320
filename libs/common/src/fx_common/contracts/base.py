"""Building blocks shared by every event contract.

Contracts are tolerant readers: fields a producer adds later pass through (`extra="allow"`)
so an additive change inside a `.vN` topic never breaks a consumer. Everything the consumer
relies on is validated strictly, and bounded to what the domain and the stores (SQLite and
Postgres) can compute, so a contract-valid event never stops a consumer:

- money is integer fen in `[0, MAX_FEN]` (2^53 - 1, the largest integer every JSON parser
  reads exactly); a JSON number with no fractional part (`1200.0`, `1.2e3`) is that integer,
  as JSON Schema's `"type": "integer"` says; a fraction, a string or a boolean is refused;
- counts and quantities are integers up to `MAX_COUNT` (2^31 - 1);
- times are RFC 3339 strings with a timezone, in `[EARLIEST_TIME, LATEST_TIME)` for when
  something happened and up to `LATEST_DERIVED_TIME` for ends computed from them (deadlines,
  protection ends); a number (epoch seconds or milliseconds) is refused with a message
  saying so;
- identifiers are 1-128 characters without control characters (Postgres refuses NUL).
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

__all__ = [
    "EARLIEST_TIME",
    "LATEST_DERIVED_TIME",
    "LATEST_TIME",
    "MAX_COUNT",
    "MAX_FEN",
    "Bps",
    "ContractModel",
    "Count",
    "DerivedTime",
    "EventTime",
    "Fen",
    "PositiveFen",
    "Quantity",
    "Reason",
    "StrictId",
    "require_unique",
    "time_range_error",
]

MAX_FEN = 2**53 - 1
"""The largest amount of money (fen) the contract accepts: 90 trillion CNY, exact in JSON."""
MAX_COUNT = 2**31 - 1
"""The largest count or quantity the contract accepts."""
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
"""The earliest time (inclusive) of anything that happened, `ce_time` included."""
LATEST_TIME = datetime(2100, 1, 1, tzinfo=UTC)
"""The end (exclusive) of the times at which something happened, `ce_time` included."""
LATEST_DERIVED_TIME = datetime(2200, 1, 1, tzinfo=UTC)
"""The end (exclusive) of computed times (a deadline, a protection end): a happened time plus
a configured period (settings refuse periods of 100 years or more)."""


class ContractModel(BaseModel):
    """Base of every event data model: immutable, and additive fields are preserved."""

    model_config = ConfigDict(extra="allow", frozen=True)


def _integral(value: Any) -> Any:
    """A JSON number without a fractional part is that integer (`1200.0` is 1200)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _integer(ge: int, le: int, description: str) -> Any:
    return Annotated[
        int, Field(strict=True, ge=ge, le=le, description=description), BeforeValidator(_integral)
    ]


_ID_PATTERN = r"^[^\x00-\x1f\x7f]+$"
_TEXT_PATTERN = r"^[^\x00]*$"

StrictId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, strict=True, pattern=_ID_PATTERN)
]
"""An identifier: 1-128 characters, no control characters (numbers are not coerced)."""

Fen = _integer(0, MAX_FEN, "Integer fen (1/100 CNY), 0 to 2^53 - 1.")
"""An amount of money in fen (1/100 CNY): a non-negative JSON integer up to `MAX_FEN`."""

PositiveFen = _integer(1, MAX_FEN, "Integer fen (1/100 CNY), 1 to 2^53 - 1.")
"""An amount of money in fen that must be at least 1."""

Quantity = _integer(1, MAX_COUNT, "A number of units, 1 to 2^31 - 1.")
"""A number of units: a positive integer."""

Count = _integer(0, MAX_COUNT, "A count, 0 to 2^31 - 1.")
"""A count of things (orders, …): a non-negative integer."""

Bps = _integer(0, 10_000, "A rate in basis points (1/10000).")
"""A rate in basis points (1/10000): 1000 bps = 10 %."""

Reason = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, strict=True, pattern=_TEXT_PATTERN)
]
"""A human-readable explanation."""


def _rfc3339_string(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"{value!r} is a number (epoch seconds or milliseconds?): times are RFC 3339 "
            "strings with a timezone, such as 2026-01-01T08:00:00Z"
        )
    return value


def time_range_error(moment: datetime, latest: datetime = LATEST_TIME) -> str | None:
    """Why `moment` is outside `[EARLIEST_TIME, latest)`, or `None` when it is inside."""
    try:
        inside = EARLIEST_TIME <= moment < latest
    except OverflowError:
        inside = False
    if inside:
        return None
    return (
        f"{moment.isoformat()} is outside the accepted range "
        f"[{EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ}, {latest:%Y-%m-%dT%H:%M:%SZ})"
    )


def _within(latest: datetime) -> Any:
    def check(moment: datetime) -> datetime:
        error = time_range_error(moment, latest)
        if error is not None:
            raise ValueError(error)
        return moment

    return check


EventTime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_string),
    AfterValidator(_within(LATEST_TIME)),
    Field(
        description="RFC 3339 with a timezone, from 2000-01-01T00:00:00Z (inclusive) "
        "to 2100-01-01T00:00:00Z (exclusive)."
    ),
]
"""When something happened."""

DerivedTime = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339_string),
    AfterValidator(_within(LATEST_DERIVED_TIME)),
    Field(
        description="RFC 3339 with a timezone, from 2000-01-01T00:00:00Z (inclusive) "
        "to 2200-01-01T00:00:00Z (exclusive)."
    ),
]
"""A time computed from a happened time and a configured period (deadline, protection end)."""


def require_unique(ids: Sequence[str], what: str) -> None:
    """Raise `ValueError` naming the first id that occurs more than once."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)
