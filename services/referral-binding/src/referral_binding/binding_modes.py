"""Binding modes (`FX_BINDING_MODE`, docs/domain.md §2.6): how long a binding protects its
customer, and whether another sharer's visit may take the customer over. The rules that use
them are in domain.py (`Rules.protection_end`, `CustomerBindings.extend`, `decide_visit`)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum

PERMANENT_UNTIL = datetime(2199, 12, 31, tzinfo=UTC)
"""The protection end of a `permanent` binding: the latest the contract's `protected_until`
holds (before 2200-01-01), i.e. never within any order's lifetime."""


class BindingMode(StrEnum):
    PROTECTION = "protection"
    """The seed's: `FX_PROTECTION_PERIOD` from the visit, extended by every paid order."""
    PERMANENT = "permanent"
    """The first binding never lapses (it still ends when its distributor becomes ineligible)."""
    OVERWRITE = "overwrite"
    """The latest eligible share visit re-binds: the protecting binding is released at it."""
