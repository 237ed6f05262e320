"""HTTP: balances and withdrawals for distributors (their own) and ops (everyone's)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlmodel import Session

from fx_common.http import ApiError, Auth, Ops, Principal, Runtime, errors, require_reader
from fx_common.http_fields import PathId
from fx_common.runtime import ServiceRuntime
from payout import commands, domain, store
from payout.api_models import (
    IDEMPOTENCY_KEY,
    WITHDRAWAL_LINKS,
    AuditEntry,
    AuditPage,
    BalancePublic,
    LedgerEntryPublic,
    LedgerPage,
    Rejection,
    TransferDone,
    TransferFailure,
    WithdrawalList,
    WithdrawalPage,
    WithdrawalPublic,
    WithdrawalRequest,
    WithdrawalRules,
)
from payout.domain import InvalidAccount, InvalidTransition, Status, WithdrawalRefused
from payout.gateway import PayoutGateway
from payout.settings import PayoutSettings

router = APIRouter(prefix="/v1", tags=["payout"])

GATEWAY_KEY = "gateway"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# --- queries -------------------------------------------------------------------------------


@router.get("/distributors/{distributor_id}/balance")
def get_balance(distributor_id: PathId, who: Auth, runtime: Runtime) -> BalancePublic:
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        return _balance(session, distributor_id)


@router.get("/distributors/{distributor_id}/withdrawal-page")
def get_withdrawal_page(
    distributor_id: PathId,
    who: Auth,
    runtime: Runtime,
    history_limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> WithdrawalPage:
    require_reader(who, distributor_id)
    policy = _settings(runtime).withdrawal_policy()
    with Session(runtime.engine) as session:
        balance = _balance(session, distributor_id)
        pending = store.open_withdrawals(session, distributor_id)
        history = store.list_withdrawals(
            session, distributor_id=distributor_id, limit=history_limit
        )
        blocker = domain.withdrawal_blocker(balance.available_fen, policy)
        return WithdrawalPage(
            distributor_id=distributor_id,
            balance=balance,
            can_withdraw=blocker is None,
            blocked_reason=blocker,
            max_withdrawal_fen=max(balance.available_fen, 0),
            rules=WithdrawalRules(
                min_withdrawal_fen=policy.min_withdrawal_fen,
                withdrawal_fee_bps=policy.withdrawal_fee_bps,
                auto_approve_limit_fen=policy.auto_approve_limit_fen,
                methods=list(domain.METHODS),
            ),
            pending=_public(session, pending, who),
            history=_public(session, history, who),
        )


@router.get("/distributors/{distributor_id}/withdrawals")
def list_distributor_withdrawals(
    distributor_id: PathId,
    who: Auth,
    runtime: Runtime,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WithdrawalList:
    """The withdrawal history, newest first."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        rows = store.list_withdrawals(
            session, distributor_id=distributor_id, status=status, limit=limit
        )
        return WithdrawalList(withdrawals=_public(session, rows, who))


@router.get("/distributors/{distributor_id}/ledger")
def get_ledger(
    distributor_id: PathId,
    who: Auth,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**53 - 1)] = None,
) -> LedgerPage:
    """The append-only ledger behind the balance, newest first, a page at a time (the
    distributor's own, or anyone's for ops)."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        rows = store.ledger_page(session, distributor_id, before_id=before_id, limit=limit + 1)
        entries = [LedgerEntryPublic.of(row) for row in rows[:limit]]
    more = len(rows) > limit
    return LedgerPage(entries=entries, next_before_id=entries[-1].entry_id if more else None)


@router.get("/withdrawals")
def list_withdrawals(
    who: Ops,
    runtime: Runtime,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> WithdrawalList:
    """Ops' review queue (e.g. `?status=requested`), newest first."""
    with Session(runtime.engine) as session:
        rows = store.list_withdrawals(session, status=status, limit=limit)
        return WithdrawalList(withdrawals=_public(session, rows, who))


@router.get("/withdrawals/{withdrawal_id}", responses=errors(404))
def get_withdrawal(withdrawal_id: PathId, who: Auth, runtime: Runtime) -> WithdrawalPublic:
    with Session(runtime.engine) as session:
        row = store.get_withdrawal(session, withdrawal_id)
        if row is None:
            raise ApiError(404, "not_found", f"no withdrawal {withdrawal_id}")
        require_reader(who, row.distributor_id)
        return _public(session, [row], who)[0]


@router.get("/audit")
def get_audit(
    who: Ops,
    runtime: Runtime,
    distributor_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=2**53 - 1)] = None,
) -> AuditPage:
    """Ops: who did what to withdrawals (requested, approved, rejected, marked paid or failed),
    when and why, newest first, a page at a time; `distributor_id` narrows it to one."""
    with Session(runtime.engine) as session:
        rows = store.audit_page(
            session, distributor_id=distributor_id, before_id=before_id, limit=limit + 1
        )
        entries = [AuditEntry.from_step(row) for row in rows[:limit]]
    more = len(rows) > limit
    return AuditPage(entries=entries, next_before_id=entries[-1].entry_id if more else None)


# --- commands ------------------------------------------------------------------------------


@router.post(
    "/withdrawals",
    status_code=201,
    responses={
        201: {"description": "Created (held).", "links": WITHDRAWAL_LINKS},
        200: {"model": WithdrawalPublic, "description": "The same request repeated (same key)."},
        **errors(
            400,
            409,
            422,
            s400="No or an invalid `Idempotency-Key`, or a body that is not JSON.",
            s409="Not enough available balance (`insufficient_balance`).",
            s422="Invalid input, an account that is not one (e.g. a card number failing its "
            "check digit), below the minimum, ops without `distributor_id`, or the key reused "
            "with another body.",
        ),
    },
    # Read from the request (so a missing or bad key is 400 with its own code), stated here.
    openapi_extra={"parameters": [IDEMPOTENCY_KEY]},
)
def request_withdrawal(
    body: WithdrawalRequest, who: Auth, runtime: Runtime, request: Request, response: Response
) -> WithdrawalPublic:
    """Hold `amount_fen` for a withdrawal. 201 when created; 200 when the same request is
    repeated with the same `Idempotency-Key` (the withdrawal it created is returned)."""
    key = _checked_key(request.headers.get("Idempotency-Key"))
    distributor_id = _acting_for(who, body.distributor_id)
    actor = _actor(who)
    try:
        account = domain.normalise_account(body.method, body.account)
    except InvalidAccount as exc:
        raise ApiError(422, "invalid_account", str(exc)) from exc
    order = commands.WithdrawalOrder(
        distributor_id=distributor_id,
        idempotency_key=key,
        amount_fen=body.amount_fen,
        method=body.method,
        account=account,
    )
    policy = _settings(runtime).withdrawal_policy()
    now = runtime.clock.now()
    try:
        outcome: commands.Outcome = runtime.command(
            f"withdrawal:{order.withdrawal_id}",
            lambda uow: commands.request_withdrawal(uow, order, policy, now, actor),
        )
    except commands.IdempotencyKeyReused as exc:
        raise ApiError(422, "idempotency_key_reused", str(exc)) from exc
    except WithdrawalRefused as exc:
        status = 409 if exc.code == "insufficient_balance" else 422
        raise ApiError(status, exc.code, exc.message) from exc
    if not outcome.changed:
        response.status_code = 200
    elif outcome.withdrawal.status is Status.APPROVED:
        _gateway(runtime).submit(outcome.withdrawal)
    return _read(runtime, outcome.withdrawal.withdrawal_id, who)


@router.post("/withdrawals/{withdrawal_id}/approve", responses=errors(404, 409))
def approve(withdrawal_id: PathId, who: Ops, runtime: Runtime) -> WithdrawalPublic:
    """Ops: approve a requested withdrawal; the gateway is asked to transfer it."""
    outcome = _advance(runtime, withdrawal_id, Status.APPROVED, _actor(who))
    if outcome.changed:
        _gateway(runtime).submit(outcome.withdrawal)
    return _read(runtime, withdrawal_id, who)


@router.post("/withdrawals/{withdrawal_id}/reject", responses=errors(404, 409))
def reject(withdrawal_id: PathId, body: Rejection, who: Ops, runtime: Runtime) -> WithdrawalPublic:
    """Refuse a requested withdrawal; the held amount returns to available."""
    _advance(runtime, withdrawal_id, Status.REJECTED, _actor(who), reason=body.reason)
    return _read(runtime, withdrawal_id, who)


@router.post("/withdrawals/{withdrawal_id}/mark-paid", responses=errors(404, 409))
def mark_paid(
    withdrawal_id: PathId, body: TransferDone, who: Ops, runtime: Runtime
) -> WithdrawalPublic:
    """The transfer of an approved withdrawal was made (manual gateway: by a person)."""
    _advance(runtime, withdrawal_id, Status.PAID, _actor(who), transfer_ref=body.transfer_ref)
    return _read(runtime, withdrawal_id, who)


@router.post("/withdrawals/{withdrawal_id}/mark-failed", responses=errors(404, 409))
def mark_failed(
    withdrawal_id: PathId, body: TransferFailure, who: Ops, runtime: Runtime
) -> WithdrawalPublic:
    """The transfer of an approved withdrawal failed; the held amount returns to available."""
    _advance(runtime, withdrawal_id, Status.FAILED, _actor(who), reason=body.reason)
    return _read(runtime, withdrawal_id, who)


# --- helpers -------------------------------------------------------------------------------


def _advance(
    runtime: ServiceRuntime,
    withdrawal_id: str,
    target: Status,
    actor: str,
    *,
    reason: str | None = None,
    transfer_ref: str | None = None,
) -> commands.Outcome:
    now = runtime.clock.now()
    try:
        outcome: commands.Outcome = runtime.command(
            f"withdrawal:{withdrawal_id}:{target.value}",
            lambda uow: commands.advance_withdrawal(
                uow,
                withdrawal_id,
                target,
                now,
                reason=reason,
                transfer_ref=transfer_ref,
                actor=actor,
            ),
        )
    except commands.WithdrawalNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    except InvalidTransition as exc:
        raise ApiError(409, "invalid_transition", exc.message) from exc
    return outcome


def _balance(session: Session, distributor_id: str) -> BalancePublic:
    totals = domain.balance(store.ledger_totals(session, distributor_id))
    return BalancePublic(
        available_fen=totals.available_fen,
        on_hold_fen=totals.on_hold_fen,
        paid_out_fen=totals.paid_out_fen,
    )


def _read(runtime: ServiceRuntime, withdrawal_id: str, who: Principal) -> WithdrawalPublic:
    with Session(runtime.engine) as session:
        row = store.get_withdrawal(session, withdrawal_id)
        assert row is not None, "a withdrawal is never deleted"
        return _public(session, [row], who)[0]


def _public(
    session: Session, rows: Sequence[store.WithdrawalRow], who: Principal
) -> list[WithdrawalPublic]:
    """The withdrawals with their histories; who made each change only for ops."""
    steps = store.steps_of(session, [row.withdrawal_id for row in rows])
    reveal = who.role == "ops"
    return [WithdrawalPublic.of(row, steps[row.withdrawal_id], reveal) for row in rows]


def _acting_for(who: Principal, distributor_id: str | None) -> str:
    if who.role == "ops":
        if distributor_id is None:
            raise ApiError(422, "distributor_required", "ops must name the distributor_id")
        return distributor_id
    if distributor_id not in (None, who.sub):
        raise ApiError(403, "forbidden", "a distributor may withdraw only its own balance")
    return who.sub


def _actor(who: Principal) -> str:
    """The token's `sub`, recorded as who made a change: an id (1-128 characters, no control
    characters) or the command is refused before anything is written."""
    if len(who.sub) > 128 or _CONTROL.search(who.sub):
        raise ApiError(
            422, "invalid_request", "the token's sub is not an id (1-128 chars, no controls)"
        )
    return who.sub


def _checked_key(key: str | None) -> str:
    if key is None or key == "":
        raise ApiError(
            400, "idempotency_key_required", "the Idempotency-Key header is required (1-128 chars)"
        )
    if len(key) > 128 or not (key.isascii() and key.isprintable()):
        raise ApiError(
            400, "invalid_idempotency_key", "Idempotency-Key must be 1-128 printable ASCII chars"
        )
    return key


def _settings(runtime: ServiceRuntime) -> PayoutSettings:
    settings = runtime.settings
    if not isinstance(settings, PayoutSettings):
        raise TypeError("the payout runtime needs PayoutSettings (see payout.app.SPEC)")
    return settings


def _gateway(runtime: ServiceRuntime) -> PayoutGateway:
    gateway: PayoutGateway = runtime.spec.extra[GATEWAY_KEY]
    return gateway
