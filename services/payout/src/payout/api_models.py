"""The bodies of payout's HTTP API: requests, answers, and what OpenAPI says about them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from fx_common.contracts.base import Reason, StrictId
from fx_common.openapi import link_to
from payout import store
from payout.domain import EntryKind, Method, Status

MAX_AMOUNT_FEN = 1_000_000_000_000  # ¥10 billion: anything above is a typo
_ID = {"withdrawal_id": "$response.body#/withdrawal_id"}
WITHDRAWAL = "/v1/withdrawals/{withdrawal_id}"
WITHDRAWAL_LINKS = {
    name.title().replace("_", ""): link_to(
        name, f"/v1/withdrawals/{{withdrawal_id}}{tail}", verb, **_ID
    )
    for name, tail, verb in (
        ("get_withdrawal", "", "GET"),
        ("approve", "/approve", "POST"),
        ("reject", "/reject", "POST"),
        ("mark_paid", "/mark-paid", "POST"),
        ("mark_failed", "/mark-failed", "POST"),
    )
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "Makes the request safe to retry: the same key and body return the same "
    "withdrawal; the same key with another body is 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 128, "pattern": "^[ -~]+$"},
    "example": "order-7f3a-withdraw-1",
}


class WithdrawalRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "amount_fen": 5000,
                    "method": "wechat_wallet",
                    "account": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o",
                    "distributor_id": "distributor-1",
                }
            ]
        },
    )

    amount_fen: int = Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT_FEN,
        description="Integer fen to take from the available balance, fee included (the "
        "transfer is amount_fen - fee_fen).",
    )
    method: Method
    account: str = Field(strict=True, min_length=1, max_length=254)
    distributor_id: StrictId | None = Field(
        default=None,
        description="Whose balance: a distributor may omit it (itself); ops must give it.",
    )


class Rejection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class TransferFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason


class TransferDone(BaseModel):
    model_config = ConfigDict(extra="forbid")
    transfer_ref: StrictId


class BalancePublic(BaseModel):
    """Sums over the distributor's ledger, integer fen."""

    available_fen: int = Field(
        description="Settled commission not yet withdrawn or held; negative after a clawback "
        "of money already withdrawn (withdrawals are refused until it is positive again)."
    )
    on_hold_fen: int = Field(description="Held by withdrawals requested or approved, not paid.")
    paid_out_fen: int = Field(description="Withdrawn and paid out, all time.")


class WithdrawalStep(BaseModel):
    """One change of a withdrawal's state: what, when, who and why."""

    status: Status = Field(description="The state the withdrawal entered.")
    at: datetime
    actor: str | None = Field(
        description="Who made the change (the token `sub` of the operator, or of the user who "
        "requested); null when the service made it (an approval within the auto-approve limit) "
        "it predates the audit, or the reader is not ops (only ops see who)."
    )
    reason: str | None = Field(description="Why it was rejected or failed.")
    transfer_ref: str | None = Field(description="The transfer reference, once paid.")

    @classmethod
    def of(cls, step: store.WithdrawalStepRow, reveal: bool = True) -> WithdrawalStep:
        return cls(
            status=Status(step.status),
            at=store.utc(step.at),
            actor=step.actor if reveal else None,
            reason=step.reason,
            transfer_ref=step.transfer_ref,
        )


class AuditEntry(WithdrawalStep):
    """One step of the audit, with the withdrawal it belongs to."""

    entry_id: int = Field(description="The step's number (pages go by `before_id`).")
    withdrawal_id: str
    distributor_id: str
    amount_fen: int = Field(description="The withdrawal's amount (fen, fee included).")

    @classmethod
    def from_step(cls, step: store.WithdrawalStepRow) -> AuditEntry:
        assert step.id is not None
        return cls(
            **WithdrawalStep.of(step).model_dump(),
            entry_id=step.id,
            withdrawal_id=step.withdrawal_id,
            distributor_id=step.distributor_id,
            amount_fen=step.amount_fen,
        )


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    next_before_id: int | None = Field(description="Pass as `before_id` for the next page.")


class WithdrawalPublic(BaseModel):
    withdrawal_id: str
    distributor_id: str
    amount_fen: int = Field(description="Taken from the balance, fee included (fen).")
    fee_fen: int = Field(description="The fee kept (fen, floored from withdrawal_fee_bps).")
    net_fen: int = Field(description="What is transferred: amount_fen - fee_fen.")
    method: Method
    account: str
    status: Status = Field(
        description="requested (awaiting ops review), approved (transfer under way), paid, "
        "rejected or failed (the hold went back to available)."
    )
    reason: str | None
    transfer_ref: str | None
    requested_at: datetime
    approved_at: datetime | None
    rejected_at: datetime | None
    paid_at: datetime | None
    failed_at: datetime | None
    history: list[WithdrawalStep] = Field(
        description="Every state it entered, oldest first, with who made each change."
    )

    @classmethod
    def of(
        cls, row: store.WithdrawalRow, steps: list[store.WithdrawalStepRow], reveal: bool
    ) -> WithdrawalPublic:
        def at(moment: datetime | None) -> datetime | None:
            return store.utc(moment) if moment is not None else None

        return cls(
            withdrawal_id=row.withdrawal_id,
            distributor_id=row.distributor_id,
            amount_fen=row.amount_fen,
            fee_fen=row.fee_fen,
            net_fen=store.to_domain(row).net_fen,
            method=row.method,
            account=row.account,
            status=Status(row.status),
            reason=row.reason,
            transfer_ref=row.transfer_ref,
            requested_at=store.utc(row.requested_at),
            approved_at=at(row.approved_at),
            rejected_at=at(row.rejected_at),
            paid_at=at(row.paid_at),
            failed_at=at(row.failed_at),
            history=[WithdrawalStep.of(step, reveal) for step in steps],
        )


class WithdrawalList(BaseModel):
    withdrawals: list[WithdrawalPublic]


class WithdrawalRules(BaseModel):
    min_withdrawal_fen: int = Field(description="The smallest request accepted (fen).")
    withdrawal_fee_bps: int = Field(
        description="Fee in basis points, floored, taken from the amount."
    )
    auto_approve_limit_fen: int = Field(description="Up to this amount no ops review is needed.")
    methods: list[Method]


class WithdrawalPage(BaseModel):
    """What the withdrawal page shows: balance, rules, requests in progress, recent history."""

    distributor_id: str
    balance: BalancePublic
    can_withdraw: bool
    blocked_reason: str | None = Field(
        description="Why not, when it cannot: negative_balance (a clawback) or below_minimum."
    )
    max_withdrawal_fen: int = Field(description="The most one request may take now.")
    rules: WithdrawalRules
    pending: list[WithdrawalPublic] = Field(description="Requested or approved, oldest first.")
    history: list[WithdrawalPublic] = Field(description="The latest withdrawals, newest first.")


class LedgerEntryPublic(BaseModel):
    entry_id: int = Field(description="Booking order: a later entry has a larger id.")
    kind: EntryKind = Field(
        description="credit (a commission settled), debit (a settled commission reversed), "
        "hold (a withdrawal requested), release (a withdrawal rejected or failed: the hold "
        "returns), payout (a withdrawal paid)."
    )
    amount_fen: int = Field(
        description="Signed change of the bucket the entry draws from or pays into (fen): "
        "credit and release positive; debit, hold and payout negative."
    )
    commission_id: str | None = Field(description="The commission of a credit or a debit.")
    withdrawal_id: str | None = Field(description="The withdrawal of a hold, release or payout.")
    source_event_id: str = Field(description="The event or command that booked it (idempotence).")
    occurred_at: datetime

    @classmethod
    def of(cls, row: store.LedgerEntryRow) -> LedgerEntryPublic:
        assert row.id is not None
        return cls(
            entry_id=row.id,
            kind=EntryKind(row.kind),
            amount_fen=row.amount_fen,
            commission_id=row.commission_id,
            withdrawal_id=row.withdrawal_id,
            source_event_id=row.source_event_id,
            occurred_at=store.utc(row.occurred_at),
        )


class LedgerPage(BaseModel):
    entries: list[LedgerEntryPublic] = Field(description="Newest first.")
    next_before_id: int | None = Field(
        description="Pass as `before_id` for the next (older) page; null on the last page."
    )
