"""`fx.commissions.v1`: the lifecycle of each commission (producer: commission).

Kafka key: `distributor_id` (who earns it). A commission is earned on one order line and
tier; `commission_id` identifies it across all its events. Amounts are integer fen; the
per-line amount is `floor(paid_amount_fen × rate_bps / 10000)`. Tier 2 (the second tier,
`FX_COMMISSION_TIERS=2`): the recruiter's commission on an order attributed to their recruit,
`source_distributor_id`.
"""

from typing import Literal

from pydantic import Field

from fx_common.contracts.base import Bps, ContractModel, Count, Fen, Reason, StrictId

__all__ = [
    "COMMISSION_ACCRUED",
    "COMMISSION_ADJUSTED",
    "COMMISSION_RELEASED",
    "COMMISSION_REVERSED",
    "COMMISSION_SETTLED",
    "COMMISSION_VOIDED",
    "CommissionAccrued",
    "CommissionAdjusted",
    "CommissionEvent",
    "CommissionReleased",
    "CommissionReversed",
    "CommissionSettled",
    "CommissionVoided",
]

COMMISSION_ACCRUED = "fx.commission.accrued"
COMMISSION_RELEASED = "fx.commission.released"
COMMISSION_VOIDED = "fx.commission.voided"
COMMISSION_ADJUSTED = "fx.commission.adjusted"
COMMISSION_SETTLED = "fx.commission.settled"
COMMISSION_REVERSED = "fx.commission.reversed"


class CommissionEvent(ContractModel):
    """Fields every commission event carries."""

    commission_id: StrictId
    distributor_id: StrictId
    order_id: StrictId
    line_id: StrictId | None = Field(default=None, description="The order line it was earned on.")
    plan_version: Count | None = Field(
        default=None, description="Version of the rate plan snapshotted on the commission."
    )
    tier: Literal[1, 2] = Field(
        default=1,
        description="1: the attributed distributor's commission; 2: their recruiter's (the "
        "second tier). Absent: 1.",
    )
    source_distributor_id: StrictId | None = Field(
        default=None,
        description="Tier 2: the recruit whose attributed order earned it (`distributor_id` "
        "is the recruiter).",
    )


class CommissionAccrued(CommissionEvent):
    """Commission was earned on an attributed order line.

    `held` while the distributor is still being assessed (escrow), `pending` once qualified.
    """

    line_id: StrictId = Field(description="The order line it was earned on.")
    amount_fen: Fen
    rate_bps: Bps = Field(
        description="Rate applied; for a fixed per-unit rule, the effective rate of the line."
    )
    status: Literal["held", "pending"]


class CommissionReleased(CommissionEvent):
    """Held commission became pending because the distributor qualified."""

    amount_fen: Fen | None = Field(default=None, description="The amount released.")


class CommissionVoided(CommissionEvent):
    """Commission was cancelled: the distributor failed or was revoked, or the line was fully
    refunded before settlement.
    """

    amount_fen: Fen | None = Field(default=None, description="The amount cancelled.")
    reason: Reason | None = None


class CommissionAdjusted(CommissionEvent):
    """A partial refund before settlement reduced the commission pro rata."""

    amount_fen: Fen = Field(description="The new amount of the commission.")
    refund_id: StrictId | None = Field(default=None, description="The refund that caused it.")


class CommissionSettled(CommissionEvent):
    """The after-sales hold ended: the commission is withdrawable (payout credits it)."""

    amount_fen: Fen = Field(description="The amount settled.")


class CommissionReversed(CommissionEvent):
    """A refund after settlement clawed back part or all of a settled commission (payout
    debits it).
    """

    amount_fen: Fen = Field(description="The amount clawed back.")
    refund_id: StrictId | None = Field(default=None, description="The refund that caused it.")
