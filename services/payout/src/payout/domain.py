"""Payout rules: the distributor's ledger, the balances derived from it, and withdrawals.

Pure: no I/O, no ORM, no clock. Times are not needed here; the caller stamps them.

The ledger is append-only. Every entry moves money between three buckets, and its signed
`amount_fen` is the change of the bucket it draws from or pays into:

| kind    | sign | available | on hold | paid out | recorded when                          |
|---------|------|-----------|---------|----------|----------------------------------------|
| credit  |  +a  |    +a     |         |          | a commission settled                   |
| debit   |  −a  |    −a     |         |          | a settled commission was reversed      |
| hold    |  −a  |    −a     |   +a    |          | a withdrawal was requested             |
| release |  +a  |    +a     |   −a    |          | a withdrawal was rejected or failed    |
| payout  |  −a  |           |   −a    |    +a    | a withdrawal was paid                  |

So `available` is the sum of every entry except payouts, and the three buckets always add up to
credits + debits (what the distributor earned net of clawbacks). Every hold is settled exactly
once, by a release or a payout, when its withdrawal reaches a final state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal

from fx_common.money import apply_bps

Method = Literal["wechat_wallet", "alipay", "bank_card"]
METHODS: tuple[Method, ...] = ("wechat_wallet", "alipay", "bank_card")


class EntryKind(StrEnum):
    CREDIT = "credit"
    DEBIT = "debit"
    HOLD = "hold"
    RELEASE = "release"
    PAYOUT = "payout"


_POSITIVE_KINDS = {EntryKind.CREDIT, EntryKind.RELEASE}


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of money; `amount_fen` carries the sign of its kind (see the table)."""

    kind: EntryKind
    amount_fen: int

    def __post_init__(self) -> None:
        positive = self.kind in _POSITIVE_KINDS
        if (positive and self.amount_fen < 0) or (not positive and self.amount_fen > 0):
            raise ValueError(f"a {self.kind} entry cannot be {self.amount_fen} fen")


def credit(amount_fen: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.CREDIT, amount_fen)


def debit(amount_fen: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.DEBIT, -amount_fen)


def hold(amount_fen: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.HOLD, -amount_fen)


def release(amount_fen: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.RELEASE, amount_fen)


def payout(amount_fen: int) -> LedgerEntry:
    return LedgerEntry(EntryKind.PAYOUT, -amount_fen)


@dataclass(frozen=True)
class Balance:
    available_fen: int = 0
    on_hold_fen: int = 0
    paid_out_fen: int = 0


def balance(entries: Iterable[LedgerEntry]) -> Balance:
    """The balances a ledger adds up to. Linear, so per-kind subtotals give the same answer."""
    available = on_hold = paid_out = 0
    for entry in entries:
        if entry.kind is EntryKind.PAYOUT:
            on_hold += entry.amount_fen
            paid_out -= entry.amount_fen
            continue
        available += entry.amount_fen
        if entry.kind in (EntryKind.HOLD, EntryKind.RELEASE):
            on_hold -= entry.amount_fen
    return Balance(available, on_hold, paid_out)


# --- withdrawal accounts -------------------------------------------------------------------


class InvalidAccount(ValueError):
    """The account does not look like one the chosen method can pay into."""


# WeChat does not document the openid format; today they are 28 URL-safe characters. Accept
# that alphabet with some slack in length so a format change does not lock distributors out.
_OPENID = re.compile(r"[A-Za-z0-9_-]{16,64}")
_CN_MOBILE = re.compile(r"1[3-9][0-9]{9}")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD_SEPARATORS = re.compile(r"[ -]")


def luhn_valid(digits: str) -> bool:
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def normalise_account(method: Method, account: str) -> str:
    """The account in its canonical form, or InvalidAccount saying what is wrong with it."""
    account = account.strip()
    if method == "wechat_wallet":
        if not _OPENID.fullmatch(account):
            raise InvalidAccount(
                "a wechat_wallet account is the user's openid: 16-64 letters, digits, _ or -"
            )
        return account
    if method == "alipay":
        if _CN_MOBILE.fullmatch(account):
            return account
        if len(account) <= 254 and _EMAIL.fullmatch(account):
            return account.lower()
        raise InvalidAccount(
            "an alipay account is a mainland mobile number (11 digits) or an email address"
        )
    digits = _CARD_SEPARATORS.sub("", account)
    if not (digits.isascii() and digits.isdigit() and 12 <= len(digits) <= 19):
        raise InvalidAccount("a bank_card account is a card number of 12-19 digits")
    if not luhn_valid(digits):
        raise InvalidAccount("the bank card number fails its check digit (Luhn)")
    return digits


# --- withdrawals ---------------------------------------------------------------------------


class Status(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    PAID = "paid"
    FAILED = "failed"


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.REQUESTED: frozenset({Status.APPROVED, Status.REJECTED}),
    Status.APPROVED: frozenset({Status.PAID, Status.FAILED}),
}


@dataclass(frozen=True)
class WithdrawalPolicy:
    min_withdrawal_fen: int = 1000
    withdrawal_fee_bps: int = 0
    auto_approve_limit_fen: int = 50000


@dataclass(frozen=True)
class Withdrawal:
    """`amount_fen` leaves the balance; the distributor receives `amount_fen - fee_fen`."""

    withdrawal_id: str
    distributor_id: str
    amount_fen: int
    fee_fen: int
    method: Method
    account: str
    status: Status
    reason: str | None = None
    transfer_ref: str | None = None

    @property
    def net_fen(self) -> int:
        return self.amount_fen - self.fee_fen


class WithdrawalRefused(Exception):
    """A well-formed request the rules refuse; `code` is stable for clients."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class InvalidTransition(Exception):
    def __init__(self, withdrawal: Withdrawal, target: Status, message: str = "") -> None:
        detail = message or f"a {withdrawal.status} withdrawal cannot become {target}"
        super().__init__(detail)
        self.message = detail


def withdrawal_blocker(available_fen: int, policy: WithdrawalPolicy) -> str | None:
    """Why no withdrawal can be requested right now, for the withdrawal page: a clawback left
    the balance negative, or there is less than the minimum. None when one can."""
    if available_fen < 0:
        return "negative_balance"
    if available_fen < policy.min_withdrawal_fen:
        return "below_minimum"
    return None


def request_withdrawal(
    *,
    withdrawal_id: str,
    distributor_id: str,
    amount_fen: int,
    method: Method,
    account: str,
    available_fen: int,
    policy: WithdrawalPolicy,
) -> list[Withdrawal]:
    """The states a new withdrawal passes through: requested, then approved when the amount is
    within the auto-approve limit. Refuses what the balance or the rules do not allow."""
    if amount_fen <= 0:
        raise WithdrawalRefused("invalid_amount", "amount_fen must be a positive integer")
    if amount_fen < policy.min_withdrawal_fen:
        raise WithdrawalRefused(
            "below_minimum", f"the minimum withdrawal is {policy.min_withdrawal_fen} fen"
        )
    if available_fen <= 0:
        raise WithdrawalRefused(
            "insufficient_balance", f"nothing is available to withdraw ({available_fen} fen)"
        )
    if amount_fen > available_fen:
        raise WithdrawalRefused(
            "insufficient_balance",
            f"{amount_fen} fen requested but only {available_fen} fen is available",
        )
    requested = Withdrawal(
        withdrawal_id=withdrawal_id,
        distributor_id=distributor_id,
        amount_fen=amount_fen,
        fee_fen=apply_bps(amount_fen, policy.withdrawal_fee_bps),
        method=method,
        account=normalise_account(method, account),
        status=Status.REQUESTED,
    )
    if amount_fen <= policy.auto_approve_limit_fen:
        return [requested, replace(requested, status=Status.APPROVED)]
    return [requested]


def advance(
    withdrawal: Withdrawal,
    target: Status,
    *,
    reason: str | None = None,
    transfer_ref: str | None = None,
) -> Withdrawal | None:
    """Move a withdrawal to `target`; None when it is already there (a retried command)."""
    if target is Status.PAID and not transfer_ref:
        raise InvalidTransition(withdrawal, target, "marking paid needs the transfer reference")
    if withdrawal.status is target:
        if target is Status.PAID and withdrawal.transfer_ref != transfer_ref:
            raise InvalidTransition(
                withdrawal,
                target,
                f"already paid with transfer reference {withdrawal.transfer_ref!r}",
            )
        return None
    if target not in _ALLOWED.get(withdrawal.status, frozenset()):
        raise InvalidTransition(withdrawal, target)
    return replace(
        withdrawal,
        status=target,
        reason=reason if target in (Status.REJECTED, Status.FAILED) else withdrawal.reason,
        transfer_ref=transfer_ref if target is Status.PAID else withdrawal.transfer_ref,
    )


def ledger_effect(withdrawal: Withdrawal) -> LedgerEntry | None:
    """The entry a withdrawal's arrival in its current state writes: the hold when requested,
    and the hold's settlement (release or payout) in a final state."""
    if withdrawal.status is Status.REQUESTED:
        return hold(withdrawal.amount_fen)
    if withdrawal.status in (Status.REJECTED, Status.FAILED):
        return release(withdrawal.amount_fen)
    if withdrawal.status is Status.PAID:
        return payout(withdrawal.amount_fen)
    return None
