"""Building blocks shared by every event contract.

Contracts are tolerant readers: fields a producer adds later pass through (`extra="allow"`)
so an additive change inside a `.vN` topic never breaks a consumer. Everything the consumer
relies on is validated strictly: money is integer fen (never a float or a numeric string),
times carry a timezone.
"""

from collections.abc import Sequence
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Bps",
    "ContractModel",
    "Count",
    "Fen",
    "PositiveFen",
    "Quantity",
    "Reason",
    "StrictId",
    "require_unique",
]


class ContractModel(BaseModel):
    """Base of every event data model: immutable, and additive fields are preserved."""

    model_config = ConfigDict(extra="allow", frozen=True)


StrictId = Annotated[str, StringConstraints(min_length=1, max_length=128, strict=True)]
"""An identifier: a non-empty string of at most 128 characters (numbers are not coerced)."""

Fen = Annotated[int, Field(strict=True, ge=0)]
"""An amount of money in fen (1/100 CNY): a non-negative JSON integer, never a float."""

PositiveFen = Annotated[int, Field(strict=True, ge=1)]
"""An amount of money in fen that must be at least 1."""

Quantity = Annotated[int, Field(strict=True, ge=1)]
"""A number of units: a positive integer."""

Count = Annotated[int, Field(strict=True, ge=0)]
"""A count of things (orders, …): a non-negative integer."""

Bps = Annotated[int, Field(strict=True, ge=0, le=10_000)]
"""A rate in basis points (1/10000): 1000 bps = 10 %."""

Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000, strict=True)]
"""A human-readable explanation."""


def require_unique(ids: Sequence[str], what: str) -> None:
    """Raise `ValueError` naming the first id that occurs more than once."""
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise ValueError(f"duplicate {what} {item!r}")
        seen.add(item)
