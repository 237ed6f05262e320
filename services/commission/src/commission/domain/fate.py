"""The distributor's qualification as it bears on one order (docs/domain.md §3): the
status history read as of the order's payment, and what it decides for its commission."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

QualificationStatus = Literal["applied", "assessing", "qualified", "failed", "revoked"]
DECISIVE: frozenset[QualificationStatus] = frozenset({"qualified", "failed", "revoked"})


@dataclass(frozen=True)
class StatusChange:
    """One transition of a distributor, from fx.qualification.v1."""

    status: QualificationStatus
    at: datetime
    seq: int
    """Arrival order within the distributor (the topic is ordered per user): breaks ties."""


@dataclass(frozen=True)
class Fate:
    """What the qualification history decides for commission on an order paid at some time.

    Nothing set: undecided (held). `qualified_at`: earns (released at that time if held).
    `failed_at`: voided. `revoked_at`: voided unless it settles at or before that time.
    """

    qualified_at: datetime | None = None
    failed_at: datetime | None = None
    revoked_at: datetime | None = None


def assess(paid_at: datetime, history: Sequence[StatusChange]) -> Fate:
    """The status at `paid_at` decides, else the first decisive transition after it.

    Only qualified / failed / revoked decide anything; a `failed` before the payment decides
    nothing, because the user may have re-applied and be assessing again at `paid_at`.
    """
    decisive = sorted((c for c in history if c.status in DECISIVE), key=lambda c: (c.at, c.seq))
    before = [c for c in decisive if c.at <= paid_at]
    after = [c for c in decisive if c.at > paid_at]
    if before and before[-1].status == "revoked":
        return Fate(revoked_at=before[-1].at)
    if before and before[-1].status == "qualified":
        qualified_at, later = before[-1].at, after
    elif not after:
        return Fate()
    elif after[0].status == "failed":
        return Fate(failed_at=after[0].at)
    elif after[0].status == "revoked":
        return Fate(revoked_at=after[0].at)
    else:
        qualified_at, later = after[0].at, after[1:]
    revoked_at = next((c.at for c in later if c.status == "revoked"), None)
    return Fate(qualified_at=qualified_at, revoked_at=revoked_at)
