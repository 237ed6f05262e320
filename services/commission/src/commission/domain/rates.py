"""The rate plan (docs/domain.md §3): versions of rates by SKU, by category and by default,
and the quote of one paid line under a version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from fx_common.money import BPS_DENOMINATOR, apply_bps

RateBasis = Literal["sku", "category", "default"]
Tier = Literal[1, 2]
"""1: the attributed distributor's commission; 2: their recruiter's (FX_COMMISSION_TIERS=2)."""


@dataclass(frozen=True)
class Rate:
    """An override in the plan: a rate in bps of the paid amount, or a fixed fen per unit."""

    rate_bps: int | None = None
    fen_per_unit: int | None = None

    def __post_init__(self) -> None:
        if (self.rate_bps is None) == (self.fen_per_unit is None):
            raise ValueError("a rate is either rate_bps or fen_per_unit, exactly one of them")
        if self.rate_bps is not None and not 0 <= self.rate_bps <= BPS_DENOMINATOR:
            raise ValueError(f"rate_bps must be within 0..{BPS_DENOMINATOR}")
        if self.fen_per_unit is not None and self.fen_per_unit < 0:
            raise ValueError("fen_per_unit must not be negative")


@dataclass(frozen=True)
class Quote:
    """What one line earns under a plan version."""

    amount_fen: int
    rate_bps: int
    """The rate applied; for a fixed per-unit rule the effective rate of the line (floored)."""
    fen_per_unit: int | None
    basis: RateBasis
    plan_version: int


@dataclass(frozen=True)
class RatePlan:
    """A version of the rate plan: a default rate, overridden per category, then per SKU; the
    same again for the second tier (the recruiter's share, 0 unless set)."""

    version: int
    default_rate_bps: int
    by_category: Mapping[str, Rate] = field(default_factory=dict)
    by_sku: Mapping[str, Rate] = field(default_factory=dict)
    tier2_default_rate_bps: int = 0
    tier2_by_category: Mapping[str, Rate] = field(default_factory=dict)
    tier2_by_sku: Mapping[str, Rate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.version < 0:
            raise ValueError("plan version must not be negative")
        Rate(rate_bps=self.default_rate_bps)
        Rate(rate_bps=self.tier2_default_rate_bps)

    def rate_for(self, sku: str, category: str | None, tier: Tier = 1) -> tuple[Rate, RateBasis]:
        """SKU beats category beats default, within the tier's own rules."""
        by_sku, by_category, default = (
            (self.by_sku, self.by_category, self.default_rate_bps)
            if tier == 1
            else (self.tier2_by_sku, self.tier2_by_category, self.tier2_default_rate_bps)
        )
        if sku in by_sku:
            return by_sku[sku], "sku"
        if category is not None and category in by_category:
            return by_category[category], "category"
        return Rate(rate_bps=default), "default"

    def quote(
        self, sku: str, category: str | None, quantity: int, paid_amount_fen: int, tier: Tier = 1
    ) -> Quote:
        """What the line earns at `tier`. Tier 2 gets at most what tier 1 leaves of the paid
        amount, so the two never pay more than the line (a fixed per-unit rule of either tier
        can otherwise reach it; bps rates summing over 100 % are refused by `excess`)."""
        rate, basis = self.rate_for(sku, category, tier)
        ceiling = paid_amount_fen
        if tier == 2:
            ceiling -= self.quote(sku, category, quantity, paid_amount_fen, 1).amount_fen
        if rate.rate_bps is not None:
            full = apply_bps(paid_amount_fen, rate.rate_bps)
            amount = min(full, ceiling)
            rate_bps = rate.rate_bps if amount == full else _effective(amount, paid_amount_fen)
            return Quote(amount, rate_bps, None, basis, self.version)
        assert rate.fen_per_unit is not None
        amount = min(rate.fen_per_unit * quantity, ceiling)
        effective = _effective(amount, paid_amount_fen)
        return Quote(amount, effective, rate.fen_per_unit, basis, self.version)

    def excess(self) -> str | None:
        """Where the two tiers' percentage rates together exceed 100 % of a line (None: nowhere).
        Every SKU and category named by either tier is combined with the other tier's rules."""
        skus = [*self.by_sku, *self.tier2_by_sku, None]
        categories = [*self.by_category, *self.tier2_by_category, None]
        for sku in skus:
            for category in categories:
                rates = [self.rate_for(sku or "", category, t)[0].rate_bps for t in (1, 2)]
                if None in rates or sum(r or 0 for r in rates) <= BPS_DENOMINATOR:
                    continue
                named = [
                    f"SKU {sku!r}" if sku else "",
                    f"category {category!r}" if category else "",
                ]
                where = " in ".join(n for n in named if n) or "any line"
                return f"{where}: tier 1 {rates[0]} bps + tier 2 {rates[1]} bps exceed 10000 bps"
        return None


def _effective(amount_fen: int, paid_amount_fen: int) -> int:
    """The rate a line's amount comes to, in bps of its paid amount (floored)."""
    return amount_fen * BPS_DENOMINATOR // paid_amount_fen if paid_amount_fen else 0


def schedule_refusal(
    effective_from: datetime,
    *,
    now: datetime,
    latest_start: datetime | None,
    latest_paid_at: datetime | None,
) -> str | None:
    """Why a new plan version may not take effect at `effective_from` (None: it may).

    A version never changes the past: not before now, not before the latest version's start
    (versions take effect in version order), and not at or before the payment of an order
    already stored (its commission recorded the version in force then and is never
    recomputed, so a replay must find the same version in force).
    """
    if effective_from < now:
        return (
            f"effective_from {effective_from.isoformat()} is in the past (now is {now.isoformat()})"
        )
    if latest_start is not None and effective_from < latest_start:
        return (
            f"effective_from {effective_from.isoformat()} precedes the latest version's start "
            f"({latest_start.isoformat()}): versions take effect in version order"
        )
    if latest_paid_at is not None and effective_from <= latest_paid_at:
        return (
            f"effective_from {effective_from.isoformat()} is not after an order already paid "
            f"at {latest_paid_at.isoformat()}, which keeps the version it accrued under"
        )
    return None
