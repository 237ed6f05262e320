"""The bodies of qualification's HTTP API (api.py): requests and views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from fx_common.http_fields import integer
from qualification.domain import Mode, Status

MAX_ID_LENGTH = 128  # the contracts' StrictId
LATEST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z, the last datetime can hold
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
Id = Annotated[Text, StringConstraints(max_length=MAX_ID_LENGTH)]


class ApplyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    wechat_id: Id | None = None


class RevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(max_length=1000)]


class AppointRequest(BaseModel):
    """Why ops appoint the user (kept with the appointment and its event)."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[Text, StringConstraints(max_length=1000)]


class ContactAdded(BaseModel):
    """The WeCom-style callback's body. Unknown fields are ignored (the signature covers
    them): the sending system may add some."""

    model_config = ConfigDict(extra="ignore")
    user_id: Id
    external_contact_id: Id | None = None
    timestamp: integer(0, LATEST_TIMESTAMP, "Unix seconds when the callback was signed.")  # type: ignore[valid-type]
    nonce: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class HistoryEntry(BaseModel):
    type: str
    at: datetime
    data: dict[str, Any]
    actor: str | None = Field(
        default=None,
        description="Who ran the command that caused it (the token `sub`, or `wecom-callback`); "
        "null when the service did (an order, the clock), before it was recorded, and in a "
        "distributor's own view (only ops see who).",
    )


class AuditEntry(HistoryEntry):
    """One event a command caused, with the user it concerns."""

    user_id: str


class AuditPage(BaseModel):
    entries: list[AuditEntry] = Field(description="Newest first.")
    page: int
    page_size: int
    more: bool = Field(description="Whether another page follows.")


STATUS_TEXT = (
    "applied (waiting for customer service to confirm the contact), assessing (the window "
    "runs), qualified (a distributor: earns commission, gets the discount), failed (the window "
    "closed short of the orders), revoked (by ops)."
)
COUNTED = (
    "Orders attributed to the user and paid inside the assessment window (each once); a fully "
    "refunded one stops counting."
)


class DistributorView(BaseModel):
    """A user's qualification; `progress`, `days_left` and the counts feed the assessment
    pop-up ("2 of 3, 11 days left")."""

    user_id: str
    status: Status = Field(description=STATUS_TEXT)
    qualifying_orders: int = Field(description=COUNTED)
    required_orders: int = Field(description="Orders the assessment needs (FX_REQUIRED_ORDERS).")
    deadline: datetime | None = Field(description="End of the assessment window.")
    days_left: int | None = Field(
        description="Whole days left in the running assessment, rounded up; 0 once the "
        "deadline passed; null when no assessment runs."
    )
    progress: str
    discount_bps: int = Field(
        description="The discount of the user's own purchases, in bps: FX_DISTRIBUTOR_DISCOUNT_BPS "
        "(default 500 = 5 %) while qualified, else 0. Checkout applies it."
    )
    wechat_id: str | None
    qualified_via: Mode | None = Field(
        default=None,
        description="How the user qualified (FX_QUALIFICATION_MODE at the time): assessment, "
        "everyone (applied) or appointed (by ops); null while not qualified.",
    )
    appointed_by: str | None = Field(
        default=None, description="The operator who appointed the user (appointed only)."
    )
    appoint_reason: str | None = Field(
        default=None, description="Why ops appointed the user (appointed only)."
    )
    history: list[HistoryEntry]


class CandidateView(BaseModel):
    user_id: str
    status: Status = Field(description=STATUS_TEXT)
    qualifying_orders: int
    required_orders: int
    deadline: datetime | None
    days_left: int | None
    applied_at: datetime | None
    confirmed_at: datetime | None
    wechat_id: str | None


class CandidatePage(BaseModel):
    items: list[CandidateView]
    page: int
    page_size: int
    total: int
