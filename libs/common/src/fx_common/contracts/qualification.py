"""`fx.qualification.v1`: a user's way to becoming a distributor (producer: qualification).

Kafka key: `user_id`. referral-binding and commission read it to know who is eligible
(`assessing` / `qualified`) and to hold, release or void commission.
"""

from typing import Literal

from pydantic import Field

from fx_common.contracts.base import ContractModel, Count, DerivedTime, Reason, StrictId

__all__ = [
    "ASSESSMENT_FAILED",
    "ASSESSMENT_PROGRESSED",
    "ASSESSMENT_STARTED",
    "COMMAND_ACCEPTED",
    "DISTRIBUTOR_APPLIED",
    "DISTRIBUTOR_QUALIFIED",
    "DISTRIBUTOR_REVOKED",
    "AssessmentFailed",
    "AssessmentProgressed",
    "AssessmentStarted",
    "CommandAccepted",
    "DistributorApplied",
    "DistributorQualified",
    "DistributorRevoked",
]

DISTRIBUTOR_APPLIED = "fx.distributor.applied"
ASSESSMENT_STARTED = "fx.distributor.assessment_started"
ASSESSMENT_PROGRESSED = "fx.distributor.assessment_progressed"
DISTRIBUTOR_QUALIFIED = "fx.distributor.qualified"
ASSESSMENT_FAILED = "fx.distributor.assessment_failed"
DISTRIBUTOR_REVOKED = "fx.distributor.revoked"
COMMAND_ACCEPTED = "fx.qualification.command_accepted"


class DistributorApplied(ContractModel):
    """A user applied to become a distributor; the assessment starts once contact is confirmed."""

    user_id: StrictId


class AssessmentStarted(ContractModel):
    """The applicant's customer-service contact was confirmed: the user is now a candidate
    (`assessing`) and must reach `required_orders` qualifying orders before `deadline`.
    """

    user_id: StrictId
    deadline: DerivedTime = Field(
        description="End of the assessment window (RFC 3339, before 2200-01-01T00:00:00Z)."
    )
    required_orders: Count


class AssessmentProgressed(ContractModel):
    """The candidate's count of qualifying orders changed (an order counted or was refunded)."""

    user_id: StrictId
    qualifying_orders: Count
    required_orders: Count


class DistributorQualified(ContractModel):
    """The user is a distributor, permanently: the candidate reached the required count (the
    seed's way, `via` absent), or, in another qualification mode, applied (`everyone`) or was
    appointed by ops (`appointed`, with who and why).
    """

    user_id: StrictId
    order_ids: list[StrictId] = Field(
        description="The qualifying orders that counted (empty when no assessment ran)."
    )
    via: Literal["assessment", "everyone", "appointed"] | None = Field(
        default=None,
        description="The qualification mode that qualified the user; absent: the assessment.",
    )
    appointed_by: StrictId | None = Field(
        default=None, description="`appointed`: the operator (token `sub`) who appointed."
    )
    reason: Reason | None = Field(default=None, description="`appointed`: why, in ops' words.")


class AssessmentFailed(ContractModel):
    """The assessment window closed short of the required count; held commission is voided."""

    user_id: StrictId
    qualifying_orders: Count


class DistributorRevoked(ContractModel):
    """Ops revoked a distributor (e.g. for fraud); their bindings are released."""

    user_id: StrictId
    reason: Reason


class CommandAccepted(ContractModel):
    """`fx.qualification.commands.v1` (producer and consumer: qualification): an HTTP command
    qualification accepted, with the terms it ran under, recorded in the transaction that
    applied it. qualification's own input: a replay of this topic (and `fx.attributions.v1`)
    rebuilds its store. Its time is when the command ran.
    """

    command: Literal["apply", "confirm_contact", "revoke", "appoint"]
    user_id: StrictId
    wechat_id: str | None = Field(
        default=None, max_length=128, description="`apply`: the applicant's WeChat id."
    )
    reason: Reason | None = Field(default=None, description="`revoke`, `appoint`: why.")
    appointed_by: StrictId | None = Field(
        default=None, description="`appoint`: the operator (token `sub`)."
    )
    actor: StrictId | None = Field(
        default=None,
        description="Who ran the command: the token `sub` (the applicant for `apply`, the "
        "operator for the others), or `wecom-callback` when the customer-service system's "
        "signed callback confirmed the contact; absent in commands recorded before it was.",
    )
    mode: Literal["assessment", "everyone", "appointed"]
    contact_step: bool
    required_orders: Count
    assessment_window_s: Count = Field(description="The assessment window, in seconds.")
    counts_own_orders: bool
    reapply_cooldown_s: Count = Field(description="The wait before reapplying, in seconds.")
