"""`fx.payouts.v1`: withdrawals of settled commission (producer: payout).

Kafka key: `distributor_id`. Every state change of a withdrawal is an event carrying the
same `withdrawal_id`.
"""

from typing import Literal

from pydantic import Field, model_validator

from fx_common.contracts.base import ContractModel, Fen, PositiveFen, Reason, StrictId

__all__ = [
    "WITHDRAWAL_APPROVED",
    "WITHDRAWAL_FAILED",
    "WITHDRAWAL_PAID",
    "WITHDRAWAL_REJECTED",
    "WITHDRAWAL_REQUESTED",
    "PayoutMethod",
    "WithdrawalApproved",
    "WithdrawalEvent",
    "WithdrawalFailed",
    "WithdrawalPaid",
    "WithdrawalRejected",
    "WithdrawalRequested",
]

WITHDRAWAL_REQUESTED = "fx.withdrawal.requested"
WITHDRAWAL_APPROVED = "fx.withdrawal.approved"
WITHDRAWAL_REJECTED = "fx.withdrawal.rejected"
WITHDRAWAL_PAID = "fx.withdrawal.paid"
WITHDRAWAL_FAILED = "fx.withdrawal.failed"

PayoutMethod = Literal["wechat_wallet", "alipay", "bank_card"]


class WithdrawalEvent(ContractModel):
    """Fields every withdrawal event carries."""

    withdrawal_id: StrictId
    distributor_id: StrictId
    amount_fen: PositiveFen = Field(description="Amount withdrawn from the balance, fee included.")
    fee_fen: Fen = Field(description="Part of amount_fen kept as a fee.")
    method: PayoutMethod
    reason: Reason | None = Field(default=None, description="Why it was rejected or failed.")
    transfer_ref: StrictId | None = Field(
        default=None, description="External transfer reference, once paid."
    )
    actor: StrictId | None = Field(
        default=None,
        description="Who made this change: the token `sub` of the operator who approved, "
        "rejected, marked paid or marked failed, or of the user who requested; absent when the "
        "service made it itself (an approval within the auto-approve limit) and in events "
        "published before it was recorded.",
    )

    @model_validator(mode="after")
    def _fee_within_amount(self) -> "WithdrawalEvent":
        if self.fee_fen > self.amount_fen:
            raise ValueError("fee_fen exceeds amount_fen")
        return self


class WithdrawalRequested(WithdrawalEvent):
    """A distributor requested a withdrawal; the amount is held from the available balance."""


class WithdrawalApproved(WithdrawalEvent):
    """The withdrawal was approved (automatically under the limit, or by ops)."""


class WithdrawalRejected(WithdrawalEvent):
    """Ops rejected the withdrawal; the held amount returns to available."""


class WithdrawalPaid(WithdrawalEvent):
    """The transfer was made (`transfer_ref` is the external reference)."""


class WithdrawalFailed(WithdrawalEvent):
    """The transfer failed; the held amount returns to available."""
