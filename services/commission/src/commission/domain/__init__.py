"""Commission rules (docs/domain.md §3): the rate plan and the life of the commission on one line.

Lifecycle of one commission (one per attributed order line):

    accrued as held ──(distributor qualified)──> pending ──(order completed)──> frozen
    accrued as pending (already qualified) ────────┘                              │
                                                                    (settle_at reached)
    held ──(order completed)──> held, settle_at known                            v
    held | pending | frozen ──(failed / revoked / fully refunded)──> voided    settled
    settled ──(refund)──> settled for less ──(nothing left)──> reversed <──────────┘

Rounding, per line and always down (floor), so no fen is paid that was not earned:
- rate in bps: `floor(paid_amount_fen × rate_bps / 10000)`;
- fixed fen per unit: `fen_per_unit × quantity`, capped at the line's paid amount;
- after refunds: `floor(accrued × (paid − refunded) / paid)`, always from the cumulative
  refunded amount, so the result does not depend on how the refunds were split or ordered.

Arrival order of the input topics must not change the outcome, so every decision is taken
from event times: `assess` reads the distributor's qualification history as of the order's
payment, and a revocation at `T` keeps only commission whose settlement date is at or before
`T` (commission settled later than that is clawed back when the revocation arrives late).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from commission.domain.fate import DECISIVE as DECISIVE
from commission.domain.fate import Fate as Fate
from commission.domain.fate import QualificationStatus as QualificationStatus
from commission.domain.fate import StatusChange as StatusChange
from commission.domain.fate import assess as assess
from commission.domain.rates import Quote as Quote
from commission.domain.rates import Rate as Rate
from commission.domain.rates import RateBasis as RateBasis
from commission.domain.rates import RatePlan as RatePlan
from commission.domain.rates import Tier as Tier
from commission.domain.rates import schedule_refusal as schedule_refusal
from fx_common.ids import uuid5_str
from fx_common.money import pro_rata

Status = Literal["held", "pending", "frozen", "settled", "reversed", "voided"]
STATUSES: tuple[Status, ...] = ("held", "pending", "frozen", "settled", "reversed", "voided")
OPEN: frozenset[Status] = frozenset({"held", "pending", "frozen"})
"""Not settled and not voided: refunds reduce the amount, a failure or revocation voids it."""

ChangeKind = Literal["accrued", "released", "frozen", "adjusted", "voided", "settled", "reversed"]

VOID_FAILED = "assessment failed"
VOID_REVOKED = "distributor revoked"
VOID_REFUNDED = "fully refunded"

_COMMISSION_NAMESPACE = uuid.UUID("0b6f6c55-2f8e-4d1e-9a51-6c3f1d6a7c21")


def commission_id_for(order_id: str, line_id: str, tier: Tier = 1) -> str:
    """One commission per order line and tier, with the same id on every replay (tier 1 keeps
    the id it had before there were tiers)."""
    name = f"{order_id}|{line_id}" if tier == 1 else f"{order_id}|{line_id}|tier{tier}"
    return uuid5_str(_COMMISSION_NAMESPACE, name)


@dataclass(frozen=True)
class Terms:
    """The configured terms of the programme (FX_DEFAULT_RATE_BPS, FX_SETTLEMENT_HOLD,
    FX_COMMISSION_TIERS, FX_TIER2_DEFAULT_RATE_BPS)."""

    default_rate_bps: int
    """The rate of plan version 0, in force until a plan version is stored."""
    settlement_hold: timedelta
    """After-sales hold between an order's completion and the settlement of its commission."""
    tiers: Tier = 1
    """FX_COMMISSION_TIERS: 2 also pays each recruit's recruiter a tier-2 line."""
    tier2_default_rate_bps: int = 0
    """FX_TIER2_DEFAULT_RATE_BPS: the tier-2 rate of plan version 0."""


# ── one commission ────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class PaidLine:
    line_id: str
    sku: str
    category: str | None
    quantity: int
    paid_amount_fen: int


@dataclass(frozen=True)
class RefundLine:
    """One line of a refund, as it arrived (possibly before the order's attribution)."""

    refund_id: str
    line_id: str
    refund_amount_fen: int
    refunded_at: datetime


@dataclass(frozen=True)
class Change:
    """Something that happened to a commission: one audit row, and (but `frozen`) one event.

    `reported_fen` is the figure the published event carries: the amount accrued, released,
    settled or adjusted to, the amount voided, or the amount clawed back.
    """

    kind: ChangeKind
    at: datetime
    status_before: Status | None
    status_after: Status
    amount_before: int
    amount_after: int
    reported_fen: int
    reason: str | None = None
    refund_id: str | None = None


@dataclass
class Commission:
    commission_id: str
    distributor_id: str
    order_id: str
    line_id: str
    sku: str
    category: str | None
    quantity: int
    paid_amount_fen: int
    paid_at: datetime
    plan_version: int
    rate_basis: RateBasis
    rate_bps: int
    fen_per_unit: int | None
    accrued_fen: int
    status: Status
    amount_fen: int
    """What the commission is worth now (0 once voided or fully reversed)."""
    refunded_fen: int = 0
    settle_at: datetime | None = None
    settled_at: datetime | None = None
    settled_fen: int = 0
    reversed_fen: int = 0
    voided_fen: int = 0
    void_reason: str | None = None
    tier: Tier = 1
    source_distributor_id: str | None = None
    """Tier 2: the recruit whose attributed order earned it (`distributor_id` is the
    recruiter). None for tier 1."""

    @classmethod
    def accrue(
        cls,
        *,
        distributor_id: str,
        order_id: str,
        line: PaidLine,
        paid_at: datetime,
        plan: RatePlan,
        fate: Fate,
        at: datetime,
        tier: Tier = 1,
        source_distributor_id: str | None = None,
    ) -> tuple[Commission, Change]:
        """Held unless the distributor (tier 2: the recruit) is already known to have
        qualified for this order."""
        quote = plan.quote(line.sku, line.category, line.quantity, line.paid_amount_fen, tier)
        status: Status = "pending" if fate.qualified_at is not None else "held"
        commission = cls(
            commission_id=commission_id_for(order_id, line.line_id, tier),
            distributor_id=distributor_id,
            order_id=order_id,
            line_id=line.line_id,
            sku=line.sku,
            category=line.category,
            quantity=line.quantity,
            paid_amount_fen=line.paid_amount_fen,
            paid_at=paid_at,
            plan_version=quote.plan_version,
            rate_basis=quote.basis,
            rate_bps=quote.rate_bps,
            fen_per_unit=quote.fen_per_unit,
            accrued_fen=quote.amount_fen,
            status=status,
            amount_fen=quote.amount_fen,
            tier=tier,
            source_distributor_id=source_distributor_id,
        )
        accrued = Change("accrued", at, None, status, 0, quote.amount_fen, quote.amount_fen)
        return commission, accrued

    def complete(self, completed_at: datetime, settlement_hold: timedelta) -> list[Change]:
        """Receipt confirmed: the after-sales hold starts; held commission stays held."""
        if self.settle_at is not None or self.status not in OPEN:
            return []
        self.settle_at = completed_at + settlement_hold
        if self.status == "pending":
            return [self._move("frozen", "frozen", completed_at, self.amount_fen)]
        return [self._move("frozen", "held", completed_at, self.amount_fen)]

    def refund(self, refund_id: str, refund_amount_fen: int, at: datetime) -> list[Change]:
        """Before settlement the amount shrinks pro rata (to nothing: voided); after, the
        difference is clawed back."""
        self.refunded_fen = min(self.paid_amount_fen, self.refunded_fen + refund_amount_fen)
        target = self._amount_after_refunds()
        if self.status in OPEN:
            if self._fully_refunded():
                return [self._void(VOID_REFUNDED, at, refund_id)]
            if target < self.amount_fen:
                change = self._move("adjusted", self.status, at, target, refund_id=refund_id)
                return [change]
            return []
        # A fully refunded line ends reversed even when nothing is left to claw back, as an
        # unsettled one ends voided.
        if self.status == "settled" and (self._fully_refunded() or target < self.amount_fen):
            return [self._reverse(self.amount_fen - target, at, refund_id=refund_id)]
        return []

    def apply_fate(self, fate: Fate) -> list[Change]:
        """Release, void or claw back as the distributor's qualification decides."""
        if self.status in ("voided", "reversed"):
            return []
        if fate.revoked_at is not None and not self._settles_by(fate.revoked_at):
            if self.status == "settled":
                return [self._reverse(self.amount_fen, fate.revoked_at, reason=VOID_REVOKED)]
            return [self._void(VOID_REVOKED, fate.revoked_at)]
        if fate.failed_at is not None and self.status in OPEN:
            return [self._void(VOID_FAILED, fate.failed_at)]
        if fate.qualified_at is not None and self.status == "held":
            released: Status = "frozen" if self.settle_at is not None else "pending"
            return [self._move("released", released, fate.qualified_at, self.amount_fen)]
        return []

    def settle(self, now: datetime) -> list[Change]:
        """The after-sales hold is over: settled as of `settle_at` (withdrawable)."""
        if self.status != "frozen" or self.settle_at is None or self.settle_at > now:
            return []
        self.settled_at = self.settle_at
        self.settled_fen = self.amount_fen
        return [self._move("settled", "settled", self.settle_at, self.amount_fen)]

    def _settles_by(self, moment: datetime) -> bool:
        return self.settle_at is not None and self.settle_at <= moment

    def _fully_refunded(self) -> bool:
        return self.paid_amount_fen > 0 and self.refunded_fen >= self.paid_amount_fen

    def _amount_after_refunds(self) -> int:
        if self.paid_amount_fen == 0:
            return self.accrued_fen
        remaining = self.paid_amount_fen - self.refunded_fen
        return pro_rata(self.accrued_fen, remaining, self.paid_amount_fen)

    def _void(self, reason: str, at: datetime, refund_id: str | None = None) -> Change:
        voided = self.amount_fen
        self.voided_fen, self.void_reason = voided, reason
        return self._move("voided", "voided", at, 0, voided, reason=reason, refund_id=refund_id)

    def _reverse(
        self,
        clawback: int,
        at: datetime,
        *,
        reason: str | None = None,
        refund_id: str | None = None,
    ) -> Change:
        self.reversed_fen += clawback
        left = self.amount_fen - clawback
        status: Status = "settled" if left > 0 else "reversed"
        return self._move(
            "reversed", status, at, left, clawback, reason=reason, refund_id=refund_id
        )

    def _move(
        self,
        kind: ChangeKind,
        status: Status,
        at: datetime,
        amount: int,
        reported: int | None = None,
        *,
        reason: str | None = None,
        refund_id: str | None = None,
    ) -> Change:
        # An event never predates the order it is about (a late-arriving fact may be older).
        change = Change(
            kind=kind,
            at=max(at, self.paid_at),
            status_before=self.status,
            status_after=status,
            amount_before=self.amount_fen,
            amount_after=amount,
            reported_fen=amount if reported is None else reported,
            reason=reason,
            refund_id=refund_id,
        )
        self.status, self.amount_fen = status, amount
        return change


def accrue_line(
    *,
    distributor_id: str,
    order_id: str,
    line: PaidLine,
    paid_at: datetime,
    plan: RatePlan,
    fate: Fate,
    at: datetime,
    completed_at: datetime | None,
    refunds: Sequence[RefundLine],
    settlement_hold: timedelta,
    tier: Tier = 1,
    source_distributor_id: str | None = None,
) -> tuple[Commission, list[Change]]:
    """The commission of an attributed line, with what arrived before its attribution.

    Accrued under the plan in force at payment, then completed (the hold starts), refunded
    (this line's refunds, in the order given), then given its fate: the same outcome as
    if each fact had arrived after the attribution.
    """
    commission, accrued = Commission.accrue(
        distributor_id=distributor_id, order_id=order_id, line=line, paid_at=paid_at,
        plan=plan, fate=fate, at=at, tier=tier, source_distributor_id=source_distributor_id,
    )  # fmt: skip
    changes = [accrued]
    if completed_at is not None:
        changes += commission.complete(completed_at, settlement_hold)
    for refund in refunds:
        if refund.line_id == line.line_id:
            changes += commission.refund(
                refund.refund_id, refund.refund_amount_fen, refund.refunded_at
            )
    changes += commission.apply_fate(fate)
    return commission, changes


# ── reading the figures ───────────────────────────────────────────────────────────────


def period_starts(now: datetime, utc_offset: timedelta) -> tuple[datetime, datetime]:
    """Start of today and of this month, in the merchant's local time, as UTC instants."""
    local = now + utc_offset
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - utc_offset, day.replace(day=1) - utc_offset
