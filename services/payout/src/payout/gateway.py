"""The payout-gateway port: how an approved withdrawal reaches a wallet or a bank."""

from __future__ import annotations

from typing import Protocol

from payout.domain import Withdrawal


class PayoutGateway(Protocol):
    def submit(self, withdrawal: Withdrawal) -> None:
        """Hand an approved withdrawal to the payment rail.

        Called after the approval is committed, so a rail never sees an approval that was
        rolled back; `withdrawal_id` is the rail's idempotency key, so submitting twice is
        harmless. The outcome comes back as a mark-paid or mark-failed command (from ops,
        or from the rail's callback).
        """
        ...


class ManualGateway:
    """The default rail: a person transfers the money and ops marks the withdrawal paid."""

    def submit(self, withdrawal: Withdrawal) -> None:
        return None
