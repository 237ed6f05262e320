"""`fx.attributions.v1`: which distributor benefits from an order (producer: referral-binding).

Kafka key: `distributor_id`. Completions and refunds of an attributed order follow it to the
same distributor; orders that were not attributed produce no event here.

`fx.recruiter.recorded` attributes a distributor (not an order) to their recruiter: the
distributor whose binding covered them when they applied (docs/domain.md §2.7). Keyed by the
recruit, so it is ordered with the recruit's attributed orders.
"""

from typing import Literal

from pydantic import Field, field_validator

from fx_common.contracts.base import ContractModel, EventTime, StrictId
from fx_common.contracts.mall_orders import MAX_LINES, OrderLine, RefundLine, check_lines

__all__ = [
    "ATTRIBUTED_ORDER_COMPLETED",
    "ATTRIBUTED_ORDER_REFUNDED",
    "ORDER_ATTRIBUTED",
    "RECRUITER_RECORDED",
    "AttributedOrderCompleted",
    "AttributedOrderRefunded",
    "OrderAttributed",
    "RecruiterRecorded",
]

ORDER_ATTRIBUTED = "fx.order.attributed"
ATTRIBUTED_ORDER_COMPLETED = "fx.order.completed"
ATTRIBUTED_ORDER_REFUNDED = "fx.order.refunded"
RECRUITER_RECORDED = "fx.recruiter.recorded"


class OrderAttributed(ContractModel):
    """A paid order was attributed to a distributor (evaluated at `paid_at`).

    `basis`: `self` (the buyer is the candidate/distributor), `binding` (the buyer's
    protected binding) or `share_link` (the order's share link). The lines are the mall's,
    unchanged: qualification counts the order, commission accrues per line.
    """

    order_id: StrictId
    buyer_id: StrictId
    distributor_id: StrictId
    basis: Literal["self", "binding", "share_link"]
    paid_at: EventTime
    lines: list[OrderLine] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("lines")
    @classmethod
    def _line_ids_unique(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_lines(lines, "paid_amount_fen")
        return lines


class AttributedOrderCompleted(ContractModel):
    """The buyer confirmed receipt of an attributed order; the after-sales hold starts."""

    order_id: StrictId
    distributor_id: StrictId


class AttributedOrderRefunded(ContractModel):
    """An attributed order was (partly) refunded; the mall's refund lines, unchanged."""

    order_id: StrictId
    distributor_id: StrictId
    refund_id: StrictId
    lines: list[RefundLine] = Field(min_length=1, max_length=MAX_LINES)

    @field_validator("lines")
    @classmethod
    def _line_ids_unique(cls, lines: list[RefundLine]) -> list[RefundLine]:
        check_lines(lines, "refund_amount_fen")
        return lines


class RecruiterRecorded(ContractModel):
    """A distributor's recruiter, recorded once and never changed: the distributor whose
    binding (any binding mode) covered `distributor_id` as a customer when they applied.

    Published once per distributor, and only when such a binding existed (no event: no
    recruiter). Never names the distributor themself (a consumer ignores one that does).
    Commission reads it for the second tier (`FX_COMMISSION_TIERS=2`) and the team page.
    """

    distributor_id: StrictId = Field(description="The recruit: the distributor who applied.")
    recruiter_id: StrictId = Field(description="The distributor whose binding covered them.")
    binding_id: StrictId = Field(description="The binding that covered them when they applied.")
    applied_at: EventTime = Field(description="When they applied (their fx.distributor.applied).")
