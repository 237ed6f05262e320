"""HTTP API: apply, confirm the contact, revoke, read a user's qualification, list candidates.

Commands take their time from the runtime's clock and run in one transaction with the
outbox. They are idempotent: repeating one that already took effect answers 200 with the
current state and publishes nothing; one that does not fit the state answers 409, one about a
user who never applied 404, and neither writes anything. Endpoints are plain `def`, so
FastAPI runs them (and their DB work) in a thread, except the webhook, which needs the raw
body and offloads its command itself.

WeCom-style contact callback, `POST /v1/webhooks/wecom/contact-added`: the customer-service
system calls it when the applicant added the mall's customer-service account. It confirms the
contact exactly like the ops endpoint. No JWT; instead
- body (JSON): `{"user_id": str, "external_contact_id": str (optional), "timestamp": int
  (Unix seconds), "nonce": str}`; unknown fields are ignored;
- header `X-Fx-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared secret
  `FX_WECOM_WEBHOOK_SECRET` of the bytes `<timestamp>.<nonce>.<raw body>` (timestamp in
  decimal, as in the body);
- a missing or wrong signature, or a timestamp more than 5 minutes away from the clock port's
  now, answers 401 and writes nothing. A replay inside those 5 minutes is harmless: the
  confirmation is idempotent. While the secret is unset the webhook is off: 404
  (`webhook_disabled`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request
from sqlmodel import Session

from fx_common.contracts.qualification import CommandAccepted
from fx_common.http import (
    ApiError,
    Auth,
    MallReader,
    Ops,
    Role,
    Runtime,
    errors,
    require_reader,
)
from fx_common.http_fields import ID_PATTERN, Rfc3339
from fx_common.openapi import link_to
from fx_common.processing import UnitOfWork
from fx_common.runtime import ServiceRuntime
from qualification import audit, commands, store
from qualification.api_models import (
    MAX_ID_LENGTH,
    ApplyRequest,
    AppointRequest,
    CandidatePage,
    CandidateView,
    ContactAdded,
    DistributorView,
    HistoryEntry,
    RevokeRequest,
)
from qualification.audit import WECOM_CALLBACK, actor_of
from qualification.domain import Qualification, Status, TransitionRefused
from qualification.settings import QualificationSettings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["qualification"])

SIGNATURE_MAX_AGE = timedelta(minutes=5)
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)]


def _settings(runtime: ServiceRuntime) -> QualificationSettings:
    settings = runtime.settings
    assert isinstance(settings, QualificationSettings)
    return settings


def _required(q: Qualification, settings: QualificationSettings) -> int:
    return q.required_orders or settings.required_orders


def _progress(q: Qualification, required: int, days_left: int | None) -> str:
    count = f"{q.qualifying_orders} of {required}"
    match q.status:
        case Status.APPLIED:
            return f"{count}; the assessment starts once customer service confirms the contact"
        case Status.ASSESSING:
            return f"{count}, {days_left} day{'' if days_left == 1 else 's'} left"
        case Status.QUALIFIED:
            return f"{count}, qualified"
        case Status.FAILED:
            return f"{count}, the assessment window closed"
        case _:
            return f"revoked: {q.revoke_reason}"


def _view(
    session: Session,
    q: Qualification,
    settings: QualificationSettings,
    now: datetime,
    reveal: bool = True,
) -> DistributorView:
    """The user's view; `reveal`: with who ran each command (ops only)."""
    required = _required(q, settings)
    days_left = q.days_left(now)
    return DistributorView(
        user_id=q.user_id,
        status=q.status,
        qualifying_orders=q.qualifying_orders,
        required_orders=required,
        deadline=q.deadline,
        days_left=days_left,
        progress=_progress(q, required, days_left),
        discount_bps=q.discount_bps(settings.distributor_discount_bps),
        wechat_id=q.wechat_id,
        qualified_via=q.qualified_via if q.status in (Status.QUALIFIED, Status.REVOKED) else None,
        appointed_by=q.appointed_by,
        appoint_reason=q.appoint_reason,
        history=[
            HistoryEntry(
                type=row.ce_type, at=row.at, data=row.data, actor=row.actor if reveal else None
            )
            for row in store.history(session, q.user_id)
        ],
    )


def _unknown(user_id: str) -> ApiError:
    return ApiError(404, "unknown_user", f"{user_id} has never applied to be a distributor")


def _command(
    runtime: ServiceRuntime,
    command: CommandAccepted,
    now: datetime,
    *,
    known_only: bool = True,
) -> DistributorView:
    """Run `command` on the user's qualification in one transaction with the outbox.

    A command that changes the qualification is recorded as its event first
    (`commands.record_accepted`): the cause id numbers the user's history, so each such
    command gets a fresh, deterministic event id; one that changes nothing publishes nothing.
    With `known_only`, a user who never applied is 404.
    """
    settings = _settings(runtime)
    user_id = command.user_id
    with Session(runtime.engine) as session:
        seq = store.history_length(session, user_id)

    def run(uow: UnitOfWork[store.Qualifications]) -> DistributorView:
        qualifications = uow.repo
        qualification = qualifications.get(user_id)
        if qualification is None:
            if known_only:
                raise _unknown(user_id)
            qualification = Qualification(user_id)
        try:
            events = commands.decide(qualification, command, now)
        except TransitionRefused as refused:
            raise ApiError(409, refused.code, refused.message) from refused
        if events:
            commands.record_accepted(uow, qualification, command, events, now)
        qualifications.write()  # the view reads the history back
        return _view(uow.session, qualification, settings, now)

    result: DistributorView = runtime.command(f"{command.command}:{user_id}:{seq}", run)
    return result


def _confirm(runtime: ServiceRuntime, user_id: str, actor: str) -> DistributorView:
    now = runtime.clock.now()
    policy = _settings(runtime).policy()
    command = commands.accepted("confirm_contact", user_id, policy, actor=actor)
    return _command(runtime, command, now)


_USER = {"user_id": "$response.body#/user_id"}
USER = "/v1/distributors/{user_id}"
CONFIRM = "/v1/applications/{user_id}/contact-confirmed"


@router.post(
    "/applications",
    responses={
        **errors(409),
        200: {
            "description": "The application (or the current state, if already made).",
            "links": {
                "GetDistributor": link_to(
                    "get_distributor", "/v1/distributors/{user_id}", "GET", **_USER
                ),
                "ConfirmContact": link_to(
                    "confirm_contact",
                    "/v1/applications/{user_id}/contact-confirmed",
                    "POST",
                    **_USER,
                ),
                "Revoke": link_to(
                    "revoke_distributor", "/v1/distributors/{user_id}/revoke", "POST", **_USER
                ),
            },
        },
    },
)
def apply_for_distributor(
    who: Auth, runtime: Runtime, body: Annotated[ApplyRequest | None, Body()] = None
) -> DistributorView:
    """The caller (the JWT's `sub`, a mall user) applies to become a distributor."""
    if who.role is not Role.DISTRIBUTOR:
        raise ApiError(
            403, "forbidden", "applications are made by mall users for themselves, not by ops"
        )
    actor = actor_of(who)
    now = runtime.clock.now()
    policy = _settings(runtime).policy()
    wechat_id = body.wechat_id if body is not None else None
    command = commands.accepted("apply", actor, policy, wechat_id=wechat_id, actor=actor)
    return _command(runtime, command, now, known_only=False)


@router.post("/applications/{user_id}/contact-confirmed", responses=errors(404, 409))
def confirm_contact(user_id: UserId, who: Ops, runtime: Runtime) -> DistributorView:
    """Customer service (ops) confirmed the applicant's contact (the audit records who)."""
    return _confirm(runtime, user_id, actor_of(who))


@router.post(
    "/webhooks/wecom/contact-added",
    responses=errors(
        401,
        404,
        409,
        s401="Missing or wrong signature, or a stale timestamp (`invalid_signature`, "
        "`stale_timestamp`).",
        s404="The webhook is off (no `FX_WECOM_WEBHOOK_SECRET`: `webhook_disabled`), or the "
        "user never applied (`unknown_user`).",
    ),
)
async def wecom_contact_added(
    body: ContactAdded,
    request: Request,
    runtime: Runtime,
    x_fx_signature: Annotated[str | None, Header()] = None,
) -> DistributorView:
    """The customer-service system's callback (signed; see the module docstring)."""
    secret = _settings(runtime).wecom_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ApiError(
            404,
            "webhook_disabled",
            "the WeCom webhook is off: FX_WECOM_WEBHOOK_SECRET is not configured",
        )
    signed = f"{body.timestamp}.{body.nonce}.".encode() + await request.body()
    expected = hmac.new(secret.get_secret_value().encode(), signed, hashlib.sha256).hexdigest()
    scheme, _, given = (x_fx_signature or "").partition("=")
    if scheme != "sha256" or not hmac.compare_digest(given.lower().encode(), expected.encode()):
        raise ApiError(
            401,
            "invalid_signature",
            'X-Fx-Signature must be sha256=<hex HMAC-SHA256 of "<timestamp>.<nonce>.<body>">',
        )
    sent_at = datetime.fromtimestamp(body.timestamp, UTC)
    if abs(runtime.clock.now() - sent_at) > SIGNATURE_MAX_AGE:
        raise ApiError(
            401,
            "stale_timestamp",
            f"the callback was signed at {sent_at.isoformat()}, more than "
            f"{int(SIGNATURE_MAX_AGE.total_seconds()) // 60} minutes from now",
        )
    confirmed = await asyncio.to_thread(_confirm, runtime, body.user_id, WECOM_CALLBACK)
    log.info(
        "contact confirmed by the WeCom callback",
        extra={"user_id": body.user_id, "external_contact_id": body.external_contact_id},
    )
    return confirmed


@router.post("/distributors/{user_id}/revoke", responses=errors(404, 409))
def revoke_distributor(
    user_id: UserId, body: RevokeRequest, who: Ops, runtime: Runtime
) -> DistributorView:
    """Ops: end a distributor's programme (its unsettled commission is voided); the audit
    records who and why."""
    actor = actor_of(who)
    policy = _settings(runtime).policy()
    command = commands.accepted("revoke", user_id, policy, reason=body.reason, actor=actor)
    return _command(runtime, command, runtime.clock.now())


@router.post("/distributors/{user_id}/appoint", responses=errors(409))
def appoint_distributor(
    user_id: UserId, body: AppointRequest, who: Ops, runtime: Runtime
) -> DistributorView:
    """Ops appoint the user a distributor (FX_QUALIFICATION_MODE=appointed; 409
    `appointments_off` in the other modes). The appointment records the operator (the token's
    `sub`) and `reason`; appointing a distributor again changes nothing."""
    actor = actor_of(who)
    now = runtime.clock.now()
    policy = _settings(runtime).policy()
    command = commands.accepted(
        "appoint", user_id, policy, reason=body.reason, appointed_by=actor, actor=actor
    )
    return _command(runtime, command, now, known_only=False)


@router.get("/distributors/{user_id}", responses=errors(404))
def get_distributor(user_id: UserId, who: MallReader, runtime: Runtime) -> DistributorView:
    """A user's qualification and discount (checkout and the pop-up read it)."""
    require_reader(who, user_id)
    with Session(runtime.engine) as session:
        qualification = store.load(session, user_id, for_update=False)
        if qualification is None:
            raise _unknown(user_id)
        now = runtime.clock.now()
        reveal = who.role is Role.OPS
        return _view(session, qualification, _settings(runtime), now, reveal)


@router.get("/candidates")
def list_candidates(
    who: Ops,
    runtime: Runtime,
    status: Literal["applied", "assessing", "qualified", "failed", "revoked"] | None = None,
    deadline_before: Annotated[Rfc3339 | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CandidatePage:
    """Ops: users by state, earliest deadline first (those without one last)."""
    settings = _settings(runtime)
    now = runtime.clock.now()
    with Session(runtime.engine) as session:
        user_ids, total = store.candidates(
            session,
            status=Status(status) if status is not None else None,
            deadline_before=deadline_before,
            offset=(page - 1) * page_size,
            limit=page_size,
        )
        found = store.Qualifications(session, for_update=False)
        found.read(user_ids)
    items = []
    for user_id in user_ids:
        q = found.get(user_id)
        assert q is not None
        items.append(
            CandidateView(
                user_id=q.user_id,
                status=q.status,
                qualifying_orders=q.qualifying_orders,
                required_orders=_required(q, settings),
                deadline=q.deadline,
                days_left=q.days_left(now),
                applied_at=q.applied_at,
                confirmed_at=q.confirmed_at,
                wechat_id=q.wechat_id,
            )
        )
    return CandidatePage(items=items, page=page, page_size=page_size, total=total)


router.include_router(audit.router)
