"""Withdrawal commands, each run inside one `runtime.command` transaction with the outbox.

Every command first takes the distributor's account lock, then reads, decides and writes, so
two commands on one distributor never interleave: concurrent requests cannot overdraw, and one
idempotency key can never create two withdrawals.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from fx_common.contracts import payouts
from fx_common.processing import UnitOfWork
from payout import domain, store
from payout.domain import Method, Status, Withdrawal, WithdrawalPolicy

_WITHDRAWAL_IDS = uuid.UUID("3b0c8f52-2d3e-4a7f-9c61-5e2b7d9a0f14")

EVENTS: dict[Status, type[payouts.WithdrawalEvent]] = {
    Status.REQUESTED: payouts.WithdrawalRequested,
    Status.APPROVED: payouts.WithdrawalApproved,
    Status.REJECTED: payouts.WithdrawalRejected,
    Status.PAID: payouts.WithdrawalPaid,
    Status.FAILED: payouts.WithdrawalFailed,
}
"""The event of each state a withdrawal enters (its type and topic: the contract registry)."""


class IdempotencyKeyReused(Exception):
    """The key already created a withdrawal from a different request."""


class WithdrawalNotFound(Exception):
    pass


@dataclass(frozen=True)
class WithdrawalOrder:
    """A validated withdrawal request, as the distributor (or ops on their behalf) sent it."""

    distributor_id: str
    idempotency_key: str
    amount_fen: int
    method: Method
    account: str

    @property
    def withdrawal_id(self) -> str:
        """Derived from the key, so a retry names the same withdrawal (and the same events)."""
        return str(uuid.uuid5(_WITHDRAWAL_IDS, f"{self.distributor_id}|{self.idempotency_key}"))

    @property
    def fingerprint(self) -> str:
        body = {"amount_fen": self.amount_fen, "method": self.method, "account": self.account}
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    withdrawal: Withdrawal
    changed: bool


def request_withdrawal(
    uow: UnitOfWork,
    order: WithdrawalOrder,
    policy: WithdrawalPolicy,
    now: datetime,
    actor: str | None = None,
) -> Outcome:
    """Hold the amount and record the request by `actor` (approved at once, by the service,
    when under the limit).

    A repeated key with the same request returns the withdrawal it created, unchanged.
    """
    session = uow.session
    store.lock_account(session, order.distributor_id, now)
    existing = store.withdrawal_by_key(session, order.distributor_id, order.idempotency_key)
    if existing is not None:
        if existing.request_fingerprint != order.fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {order.idempotency_key!r} was used for a different request "
                f"(withdrawal {existing.withdrawal_id}); use a new key for a new withdrawal"
            )
        return Outcome(store.to_domain(existing), changed=False)
    available = domain.balance(store.ledger_totals(session, order.distributor_id)).available_fen
    states = domain.request_withdrawal(
        withdrawal_id=order.withdrawal_id,
        distributor_id=order.distributor_id,
        amount_fen=order.amount_fen,
        method=order.method,
        account=order.account,
        available_fen=available,
        policy=policy,
    )
    row = store.add_withdrawal(
        session, states[0], key=order.idempotency_key, fingerprint=order.fingerprint, at=now
    )
    for state in states:
        _record(uow, row, state, now, actor if state.status is Status.REQUESTED else None)
    return Outcome(states[-1], changed=True)


def advance_withdrawal(
    uow: UnitOfWork,
    withdrawal_id: str,
    target: Status,
    now: datetime,
    *,
    reason: str | None = None,
    transfer_ref: str | None = None,
    actor: str | None = None,
) -> Outcome:
    """An ops decision or a transfer outcome, made by `actor` (the token `sub`; None: the
    service or a rail's callback); repeating one that already happened is a no-op."""
    session = uow.session
    row = store.get_withdrawal(session, withdrawal_id)
    if row is None:
        raise WithdrawalNotFound(f"no withdrawal {withdrawal_id}")
    store.lock_account(session, row.distributor_id, now)
    session.refresh(row)  # read again under the lock: another command may have moved it
    current = store.to_domain(row)
    changed = domain.advance(current, target, reason=reason, transfer_ref=transfer_ref)
    if changed is None:
        return Outcome(current, changed=False)
    _record(uow, row, changed, now, actor)
    return Outcome(changed, changed=True)


def _record(
    uow: UnitOfWork,
    row: store.WithdrawalRow,
    state: Withdrawal,
    now: datetime,
    actor: str | None,
) -> None:
    """Publish the state change (with who made it), record it in the audit and book its
    ledger effect, keyed by the event's id."""
    model = EVENTS[state.status]
    event = uow.publish(
        model(
            withdrawal_id=state.withdrawal_id,
            distributor_id=state.distributor_id,
            amount_fen=state.amount_fen,
            fee_fen=state.fee_fen,
            method=state.method,
            reason=state.reason,
            transfer_ref=state.transfer_ref,
            actor=actor,
        ),
        time=now,
        subject=state.withdrawal_id,
    )
    store.record_state(uow.session, row, state, now, actor)
    entry = domain.ledger_effect(state)
    if entry is not None:
        store.append_entry(
            uow.session,
            state.distributor_id,
            entry,
            source_event_id=event.id,
            occurred_at=now,
            withdrawal_id=state.withdrawal_id,
        )
