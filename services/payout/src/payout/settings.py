"""Payout's configurable rules (environment `FX_*`), on top of the shared settings."""

from __future__ import annotations

from pydantic import Field

from fx_common.settings import SERVICE_PORTS, ServiceSettings
from payout.domain import WithdrawalPolicy


class PayoutSettings(ServiceSettings):
    service: str = "payout"
    http_port: int = SERVICE_PORTS["payout"]
    min_withdrawal_fen: int = Field(1000, ge=1)
    withdrawal_fee_bps: int = Field(0, ge=0, le=10_000)
    auto_approve_limit_fen: int = Field(50000, ge=0)
    # The in-service ledger check (`payout.ledger_watch`); 0 turns it off.
    reconcile_interval_s: float = Field(300.0, ge=0)

    def withdrawal_policy(self) -> WithdrawalPolicy:
        return WithdrawalPolicy(
            min_withdrawal_fen=self.min_withdrawal_fen,
            withdrawal_fee_bps=self.withdrawal_fee_bps,
            auto_approve_limit_fen=self.auto_approve_limit_fen,
        )
