"""HTTP API: apply, confirm the contact, revoke, and read a user's qualification.

Commands take their time from the runtime's clock and run in one transaction with the
outbox. They are idempotent: repeating one that already took effect answers 200 with the
current state and publishes nothing; one that does not fit the state answers 409 and writes
nothing. Endpoints are plain `def`, so FastAPI runs them (and their DB work) in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlmodel import Session

from fx_common.http import ApiError, Auth, Runtime, require_ops, require_reader
from fx_common.processing import UnitOfWork
from fx_common.runtime import ServiceRuntime
from qualification import store
from qualification.domain import DomainEvent, Qualification, Status, TransitionRefused
from qualification.handlers import record
from qualification.settings import QualificationSettings

router = APIRouter(prefix="/v1", tags=["qualification"])

MAX_ID_LENGTH = 128  # the contracts' StrictId
UserId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wechat_id: Annotated[Text, StringConstraints(max_length=MAX_ID_LENGTH)] | None = None


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(max_length=1000)]


class HistoryEntry(BaseModel):
    type: str
    at: datetime
    data: dict[str, Any]


class DistributorView(BaseModel):
    user_id: str
    status: Status
    qualifying_orders: int
    required_orders: int
    deadline: datetime | None
    discount_bps: int
    wechat_id: str | None
    history: list[HistoryEntry]


def _settings(runtime: ServiceRuntime) -> QualificationSettings:
    settings = runtime.settings
    assert isinstance(settings, QualificationSettings)
    return settings


def _view(session: Session, q: Qualification, settings: QualificationSettings) -> DistributorView:
    qualified = q.status is Status.QUALIFIED
    return DistributorView(
        user_id=q.user_id,
        status=q.status,
        qualifying_orders=q.qualifying_orders,
        required_orders=q.required_orders or settings.required_orders,
        deadline=q.deadline,
        discount_bps=settings.distributor_discount_bps if qualified else 0,
        wechat_id=q.wechat_id,
        history=[
            HistoryEntry(type=row.ce_type, at=row.at, data=row.data)
            for row in store.history(session, q.user_id)
        ],
    )


def _command(
    runtime: ServiceRuntime,
    kind: str,
    user_id: str,
    change: Callable[[Qualification], list[DomainEvent]],
) -> DistributorView:
    """Run `change` on the user's qualification in one transaction with the outbox.

    The cause id numbers the user's history, so each command that publishes gets fresh,
    deterministic event ids; a command that publishes nothing needs none.
    """
    settings = _settings(runtime)
    with Session(runtime.engine) as session:
        seq = store.history_length(session, user_id)

    def run(uow: UnitOfWork) -> DistributorView:
        qualifications = store.qualifications(uow)
        qualification = qualifications.get(user_id) or Qualification(user_id)
        try:
            events = change(qualification)
        except TransitionRefused as refused:
            raise ApiError(409, refused.code, refused.message) from refused
        record(uow, qualification, events)
        qualifications.write()  # the view reads the history back
        return _view(uow.session, qualification, settings)

    result: DistributorView = runtime.command(f"{kind}:{user_id}:{seq}", run)
    return result


@router.post("/applications")
def apply_for_distributor(
    who: Auth, runtime: Runtime, body: Annotated[ApplyRequest | None, Body()] = None
) -> DistributorView:
    """The caller (the JWT's `sub`) applies to become a distributor."""
    if who.role != "distributor":
        raise ApiError(
            403, "forbidden", "applications are made by mall users for themselves, not by ops"
        )
    if len(who.sub) > MAX_ID_LENGTH:
        raise ApiError(
            422, "invalid_request", f"the token's sub is not a user id (over {MAX_ID_LENGTH} chars)"
        )
    now = runtime.clock.now()
    policy = _settings(runtime).policy()
    wechat_id = body.wechat_id if body is not None else None
    return _command(runtime, "apply", who.sub, lambda q: q.apply(now, policy, wechat_id))


@router.post("/applications/{user_id}/contact-confirmed")
def confirm_contact(user_id: UserId, who: Auth, runtime: Runtime) -> DistributorView:
    """Customer service (ops or the WeCom callback) confirmed the applicant's contact."""
    require_ops(who)
    now = runtime.clock.now()
    policy = _settings(runtime).policy()
    return _command(runtime, "confirm", user_id, lambda q: q.confirm_contact(now, policy))


@router.post("/distributors/{user_id}/revoke")
def revoke_distributor(
    user_id: UserId, body: RevokeRequest, who: Auth, runtime: Runtime
) -> DistributorView:
    require_ops(who)
    now = runtime.clock.now()
    return _command(runtime, "revoke", user_id, lambda q: q.revoke(now, body.reason))


@router.get("/distributors/{user_id}")
def get_distributor(user_id: UserId, who: Auth, runtime: Runtime) -> DistributorView:
    require_reader(who, user_id)
    with Session(runtime.engine) as session:
        qualification = store.load(session, user_id, for_update=False)
        if qualification is None:
            raise ApiError(404, "unknown_user", f"{user_id} has never applied to be a distributor")
        return _view(session, qualification, _settings(runtime))
