"""`mall.orders.v1`: order lifecycle published by the mall (upstream; we only consume).

Kafka key: `buyer_id`. The event time (`ce_time`) is when it happened. Other `mall.*`
types on this topic are ignored, not dead-lettered.
"""

from typing import Any, Literal

from pydantic import Field, field_validator

from fx_common.contracts.base import (
    MAX_FEN,
    ContractModel,
    Fen,
    Quantity,
    StrictId,
    require_unique,
)

__all__ = [
    "MAX_LINES",
    "ORDER_COMPLETED",
    "ORDER_PAID",
    "ORDER_REFUNDED",
    "OrderCompleted",
    "OrderLine",
    "OrderPaid",
    "OrderRefunded",
    "RefundLine",
]

ORDER_PAID = "mall.order.paid"
ORDER_COMPLETED = "mall.order.completed"
ORDER_REFUNDED = "mall.order.refunded"

MAX_LINES = 1000
"""The most lines an order (or a refund) may have."""


def check_lines(lines: list[Any], amount: str) -> None:
    """Line ids unique, and the lines' `amount` fields summing to at most `MAX_FEN`."""
    require_unique([line.line_id for line in lines], "line_id")
    total = sum(getattr(line, amount) for line in lines)
    if total > MAX_FEN:
        raise ValueError(f"the lines' {amount} add up to {total}, more than {MAX_FEN} fen")


class OrderLine(ContractModel):
    """One line of a paid order."""

    line_id: StrictId = Field(description="Unique within the order.")
    sku: StrictId
    category: StrictId | None = Field(
        default=None, description="Product category, used for per-category commission rates."
    )
    quantity: Quantity
    paid_amount_fen: Fen = Field(
        description="What the buyer paid for the whole line, after discounts, without shipping."
    )


class RefundLine(ContractModel):
    """The refunded part of one order line."""

    line_id: StrictId = Field(description="The refunded line of the original order.")
    refund_amount_fen: Fen = Field(description="Amount refunded on this line by this refund.")


class OrderPaid(ContractModel):
    """A buyer paid an order; `ce_time` is the payment time.

    referral-binding relies on it to attribute the order (buyer, binding or `share_id`) and to
    extend the buyer's binding; the line amounts are the commission base.
    """

    order_id: StrictId
    buyer_id: StrictId
    share_id: StrictId | None = Field(
        default=None, description="The share link the order was placed through, if any."
    )
    currency: Literal["CNY"]
    lines: list[OrderLine] = Field(
        min_length=1,
        max_length=MAX_LINES,
        description="1 to 1000 lines; their paid_amount_fen add up to at most 2^53 - 1.",
    )
    shipping_fen: Fen | None = Field(default=None, description="Shipping, never commissioned.")

    @field_validator("lines")
    @classmethod
    def _lines_valid(cls, lines: list[OrderLine]) -> list[OrderLine]:
        check_lines(lines, "paid_amount_fen")
        return lines


class OrderCompleted(ContractModel):
    """The buyer confirmed receipt of an order; `ce_time` is the confirmation time.

    commission relies on it (via fx.order.completed) to start the after-sales hold.
    """

    order_id: StrictId
    buyer_id: StrictId


class OrderRefunded(ContractModel):
    """Part or all of a paid order was refunded; `ce_time` is the refund time.

    `refund_id` identifies this refund (an order may be refunded several times); commission
    relies on the per-line amounts to reduce or claw back commission pro rata.
    """

    order_id: StrictId
    buyer_id: StrictId
    refund_id: StrictId
    lines: list[RefundLine] = Field(
        min_length=1,
        max_length=MAX_LINES,
        description="1 to 1000 lines; their refund_amount_fen add up to at most 2^53 - 1.",
    )

    @field_validator("lines")
    @classmethod
    def _lines_valid(cls, lines: list[RefundLine]) -> list[RefundLine]:
        check_lines(lines, "refund_amount_fen")
        return lines
