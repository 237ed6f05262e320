"""The second tier (二级分销, docs/domain.md §3.7): the recruiter's commission on the orders
attributed to their recruits, with `FX_COMMISSION_TIERS=2`.

An order line attributed to distributor D (tier 1) also earns D's recruiter R a tier-2 line:
- only when R is `qualified` at the order's payment (R's status history as of `paid_at`);
- at the plan's tier-2 rates (a default, per-category and per-SKU overrides) of the version
  in force at payment; a line the tier-2 rates price at 0 has no tier-2 line;
- with D's fate, as D's own line has it (escrow while D is assessed, released when D
  qualifies, voided if D fails, voided or clawed back if D is revoked), and R's revocation on
  top; every other rule (after-sales hold, refund proration, clawback) is the tier-1 line's.

Never more than two tiers: tier-2 lines come only from tier-1 lines, so R's own recruiter
earns nothing from D's orders, and R is never D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from commission.domain import Change, Commission, PaidLine, RatePlan, RefundLine, accrue_line
from commission.domain.fate import Fate, StatusChange, assess

History = Sequence[StatusChange]


def recruiter_qualified(paid_at: datetime, recruiter: History) -> bool:
    """R's status at `paid_at` is `qualified` (qualified at or before it, not revoked since)."""
    fate = assess(paid_at, recruiter)
    return fate.qualified_at is not None and fate.qualified_at <= paid_at


def tier2_fate(paid_at: datetime, recruit: History, recruiter: History) -> Fate:
    """The recruit's fate for the order, and the earlier of the two revocations."""
    own, theirs = assess(paid_at, recruit), assess(paid_at, recruiter)
    revocations = [at for at in (own.revoked_at, theirs.revoked_at) if at is not None]
    return Fate(
        qualified_at=own.qualified_at,
        failed_at=own.failed_at,
        revoked_at=min(revocations, default=None),
    )


def fate_of(commission: Commission, history: Mapping[str, History]) -> Fate:
    """What the qualification histories decide for a commission of either tier."""
    if commission.tier == 1 or commission.source_distributor_id is None:
        return assess(commission.paid_at, history[commission.distributor_id])
    return tier2_fate(
        commission.paid_at,
        history[commission.source_distributor_id],
        history[commission.distributor_id],
    )


def second_tier(
    *,
    recruiter_id: str,
    tier1: Commission,
    recruit: History,
    recruiter: History,
    plan: RatePlan,
    at: datetime,
    completed_at: datetime | None,
    refunds: Sequence[RefundLine],
    settlement_hold: timedelta,
) -> tuple[Commission, list[Change]] | None:
    """The recruiter's tier-2 line on a tier-1 line, with what already happened to the order
    (completion, refunds, the fates); None when no tier-2 line is due."""
    if tier1.tier != 1 or recruiter_id == tier1.distributor_id:
        return None
    if not recruiter_qualified(tier1.paid_at, recruiter):
        return None
    line = PaidLine(tier1.line_id, tier1.sku, tier1.category, tier1.quantity, tier1.paid_amount_fen)
    quote = plan.quote(line.sku, line.category, line.quantity, line.paid_amount_fen, 2)
    if quote.amount_fen == 0:
        return None
    return accrue_line(
        distributor_id=recruiter_id,
        order_id=tier1.order_id,
        line=line,
        paid_at=tier1.paid_at,
        plan=plan,
        fate=tier2_fate(tier1.paid_at, recruit, recruiter),
        at=at,
        completed_at=completed_at,
        refunds=refunds,
        settlement_hold=settlement_hold,
        tier=2,
        source_distributor_id=tier1.distributor_id,
    )
