"""The audit of qualification: who ran each command that changed a user's way to (or out of)
distributor status, when and why, read from the users' histories."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import Session, col, select

from fx_common.http import ApiError, Ops, Principal, Runtime
from fx_common.http_fields import ID_PATTERN
from qualification.api_models import MAX_ID_LENGTH, AuditEntry, AuditPage
from qualification.store import HistoryRow

router = APIRouter()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def entries(session: Session, *, user_id: str | None, offset: int, limit: int) -> list[HistoryRow]:
    """The history rows a command caused (they name who ran it), newest first."""
    query = select(HistoryRow).where(col(HistoryRow.actor).is_not(None))
    if user_id is not None:
        query = query.where(HistoryRow.user_id == user_id)
    query = query.order_by(
        col(HistoryRow.at).desc(), col(HistoryRow.user_id), col(HistoryRow.seq).desc()
    )
    return list(session.exec(query.offset(offset).limit(limit)))


WECOM_CALLBACK = "wecom-callback"
"""The actor the audit names when the customer-service system's callback confirmed."""


def actor_of(who: Principal) -> str:
    """The token's `sub`, recorded as who ran a command: an id, or nothing is written."""
    if len(who.sub) > MAX_ID_LENGTH or _CONTROL.search(who.sub):
        raise ApiError(
            422, "invalid_request", f"the token's sub is not an id (1-{MAX_ID_LENGTH} chars)"
        )
    return who.sub


@router.get("/audit")
def get_audit(
    who: Ops,
    runtime: Runtime,
    user_id: Annotated[
        str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, pattern=ID_PATTERN)
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AuditPage:
    """Ops: who ran each command (apply, confirm the contact, revoke, appoint), when, and
    what it caused (the reason in `data`), newest first; `user_id` narrows it to one user."""
    with Session(runtime.engine) as session:
        rows = entries(session, user_id=user_id, offset=(page - 1) * page_size, limit=page_size + 1)
    found = [
        AuditEntry(user_id=r.user_id, type=r.ce_type, at=r.at, data=r.data, actor=r.actor)
        for r in rows[:page_size]
    ]
    return AuditPage(entries=found, page=page, page_size=page_size, more=len(rows) > page_size)
