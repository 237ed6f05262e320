"""Qualification rules (docs/domain.md §1): a user's way from applicant to distributor.

    none ─apply─> applied ─confirm_contact─> assessing ─count reached─> qualified ─revoke─> revoked
                    ^                            │ window closed short of the count
                    └─apply after cooldown──── failed

Pure rules: no I/O, no clock reads (every `now` / `at` is handed in). Commands that do not fit
the state raise `TransitionRefused`; inputs that come from events (attributions, refunds, the
clock) never raise: what does not apply to the state is ignored. Every transition returns the
domain events it caused, past tense, in the order they happened.

The terms of an assessment (deadline, required count, whether own orders count) are fixed when
it starts and announced in `AssessmentStarted`: a later change of the merchant's settings applies
to assessments that start afterwards, never to a candidate mid-window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

Basis = Literal["self", "binding", "share_link"]


class Mode(StrEnum):
    """How a user becomes a distributor (`FX_QUALIFICATION_MODE`, modes.py)."""

    ASSESSMENT = "assessment"
    EVERYONE = "everyone"
    APPOINTED = "appointed"


class Status(StrEnum):
    NONE = "none"
    APPLIED = "applied"
    ASSESSING = "assessing"
    QUALIFIED = "qualified"
    FAILED = "failed"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Policy:
    """The merchant's configurable terms (defaults and env names in `settings.py`)."""

    required_orders: int
    assessment_window: timedelta
    counts_own_orders: bool
    reapply_cooldown: timedelta
    mode: Mode = Mode.ASSESSMENT
    contact_step: bool = False  # `everyone` only: qualify at the contact confirmation


class TransitionRefused(Exception):
    """A command that does not fit the user's state; `code` is machine-readable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class DomainEvent:
    user_id: str
    at: datetime


@dataclass(frozen=True)
class Applied(DomainEvent):
    pass


@dataclass(frozen=True)
class AssessmentStarted(DomainEvent):
    deadline: datetime
    required_orders: int


@dataclass(frozen=True)
class AssessmentProgressed(DomainEvent):
    qualifying_orders: int
    required_orders: int


@dataclass(frozen=True)
class Qualified(DomainEvent):
    """`via` is None for the seed's way (the assessment), as the seed's events say nothing of
    it; `appointed_by` and `reason` only for an appointment."""

    order_ids: tuple[str, ...]
    via: Mode | None = None
    appointed_by: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class AssessmentFailed(DomainEvent):
    qualifying_orders: int


@dataclass(frozen=True)
class Revoked(DomainEvent):
    reason: str


@dataclass(frozen=True)
class Refund:
    refund_id: str
    amount_fen: int
    refunded_at: datetime


@dataclass
class QualifyingOrder:
    """An order that counted towards the assessment of `attempt` when it was attributed.

    Refunds are kept per order (one entry per `refund_id`, so a re-delivered refund is a
    no-op); only a full refund can take the order out of the count.
    """

    order_id: str
    attempt: int
    paid_at: datetime
    paid_fen: int
    counted_at: datetime
    refunds: dict[str, Refund] = field(default_factory=dict)
    uncounted_at: datetime | None = None

    @property
    def refunded_fen(self) -> int:
        return sum(refund.amount_fen for refund in self.refunds.values())

    @property
    def fully_refunded(self) -> bool:
        return self.refunded_fen >= self.paid_fen

    @property
    def counts(self) -> bool:
        return self.uncounted_at is None


@dataclass
class Qualification:
    """One user's qualification: current state, terms of the current attempt, its orders.

    `attempt` numbers the applications (1 for the first); orders belong to the attempt during
    which they counted, so a failed attempt's orders never count towards the next one.
    """

    user_id: str
    status: Status = Status.NONE
    attempt: int = 0
    wechat_id: str | None = None
    applied_at: datetime | None = None
    confirmed_at: datetime | None = None
    deadline: datetime | None = None
    required_orders: int | None = None
    counts_own_orders: bool | None = None
    qualified_at: datetime | None = None
    failed_at: datetime | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    qualified_via: Mode | None = None
    appointed_by: str | None = None
    appoint_reason: str | None = None
    orders: dict[str, QualifyingOrder] = field(default_factory=dict)

    @property
    def counting_orders(self) -> list[QualifyingOrder]:
        """The orders that count for the current attempt, by payment time."""
        current = [o for o in self.orders.values() if o.attempt == self.attempt and o.counts]
        return sorted(current, key=lambda o: (o.paid_at, o.order_id))

    @property
    def qualifying_orders(self) -> int:
        return len(self.counting_orders)

    def discount_bps(self, distributor_discount_bps: int) -> int:
        """The discount on the user's own purchases: the programme's distributor discount
        while qualified, none in any other status (applied, assessing, failed, revoked)."""
        return distributor_discount_bps if self.status is Status.QUALIFIED else 0

    def days_left(self, now: datetime) -> int | None:
        """Whole days, rounded up, until the running assessment's deadline (0 once it passed);
        None when no assessment runs."""
        if self.status is not Status.ASSESSING:
            return None
        assert self.deadline is not None
        remaining = self.deadline - now
        if remaining <= timedelta(0):
            return 0
        return -(-remaining // timedelta(days=1))

    def apply(
        self, now: datetime, policy: Policy, wechat_id: str | None = None
    ) -> list[DomainEvent]:
        """The user applies. Applying again while the application is pending changes nothing."""
        if self.status is Status.APPLIED:
            return []
        if self.status is Status.ASSESSING:
            raise TransitionRefused(
                "already_assessing",
                f"the assessment of {self.user_id} is already running until {self.deadline}",
            )
        if self.status is Status.QUALIFIED:
            raise TransitionRefused("already_qualified", f"{self.user_id} is already a distributor")
        if self.status is Status.REVOKED:
            raise TransitionRefused(
                "revoked", f"the distributor status of {self.user_id} was revoked; it cannot apply"
            )
        if self.status is Status.FAILED:
            assert self.failed_at is not None
            reapply_from = self.failed_at + policy.reapply_cooldown
            if now < reapply_from:
                raise TransitionRefused(
                    "reapply_cooldown",
                    f"the assessment of {self.user_id} failed at {self.failed_at}; "
                    f"it may apply again from {reapply_from}",
                )
        self.status = Status.APPLIED
        self.attempt += 1
        self.wechat_id = wechat_id
        self.applied_at = now
        self.confirmed_at = self.deadline = self.failed_at = None
        self.required_orders = self.counts_own_orders = None
        return [Applied(self.user_id, now)]

    def confirm_contact(self, now: datetime, policy: Policy) -> list[DomainEvent]:
        """Customer service confirmed the contact: the assessment window opens now.

        A repeated confirmation (e.g. the WeCom callback firing twice) changes nothing.
        """
        if self.status in (Status.ASSESSING, Status.QUALIFIED):
            return []
        if self.status is Status.REVOKED:
            raise TransitionRefused(
                "revoked", f"the distributor status of {self.user_id} was revoked"
            )
        if self.status is not Status.APPLIED:
            raise TransitionRefused(
                "no_application",
                f"{self.user_id} has no pending application (status {self.status}); "
                "the user must apply first",
            )
        self.status = Status.ASSESSING
        self.confirmed_at = now
        self.deadline = now + policy.assessment_window
        self.required_orders = policy.required_orders
        self.counts_own_orders = policy.counts_own_orders
        return [AssessmentStarted(self.user_id, now, self.deadline, policy.required_orders)]

    def order_attributed(
        self, order_id: str, paid_at: datetime, paid_fen: int, basis: Basis, at: datetime
    ) -> list[DomainEvent]:
        """An order attributed to this user counts when it was paid inside the window.

        Counted once per `order_id`. An order paid after the deadline never counts, even when
        it is processed before the clock fails the candidate.
        """
        if self.status is not Status.ASSESSING or order_id in self.orders:
            return []
        assert self.confirmed_at is not None and self.deadline is not None
        assert self.required_orders is not None
        if basis == "self" and not self.counts_own_orders:
            return []
        if not self.confirmed_at <= paid_at <= self.deadline:
            return []
        self.orders[order_id] = QualifyingOrder(order_id, self.attempt, paid_at, paid_fen, at)
        counted = self.counting_orders
        events: list[DomainEvent] = [
            AssessmentProgressed(self.user_id, at, len(counted), self.required_orders)
        ]
        if len(counted) >= self.required_orders:
            self.status = Status.QUALIFIED
            self.qualified_at = at
            self.qualified_via = Mode.ASSESSMENT
            events.append(Qualified(self.user_id, at, tuple(o.order_id for o in counted)))
        return events

    def order_refunded(
        self, order_id: str, refund_id: str, amount_fen: int, at: datetime
    ) -> list[DomainEvent]:
        """Book a refund; a counted order fully refunded inside the window stops counting.

        Only while assessing: once qualified, the status is permanent and refunds change it
        no more; a failed attempt's count is final too.
        """
        order = self.orders.get(order_id)
        if order is None or refund_id in order.refunds:
            return []
        order.refunds[refund_id] = Refund(refund_id, amount_fen, at)
        if (
            self.status is not Status.ASSESSING
            or order.attempt != self.attempt
            or not order.counts
            or not order.fully_refunded
        ):
            return []
        assert self.deadline is not None and self.required_orders is not None
        if at > self.deadline:
            return []
        order.uncounted_at = at
        return [
            AssessmentProgressed(self.user_id, at, self.qualifying_orders, self.required_orders)
        ]

    def expire(self, now: datetime) -> list[DomainEvent]:
        """The clock moved to `now`: a window closed short of the count fails, at its deadline."""
        if self.status is not Status.ASSESSING:
            return []
        assert self.deadline is not None
        if now <= self.deadline:
            return []
        self.status = Status.FAILED
        self.failed_at = self.deadline
        return [AssessmentFailed(self.user_id, self.deadline, self.qualifying_orders)]

    def revoke(self, now: datetime, reason: str) -> list[DomainEvent]:
        """Ops revoke a distributor (fraud). Revoking again changes nothing."""
        if self.status is Status.REVOKED:
            return []
        if self.status is not Status.QUALIFIED:
            raise TransitionRefused(
                "not_qualified",
                f"only a qualified distributor can be revoked; {self.user_id} is {self.status}",
            )
        self.status = Status.REVOKED
        self.revoked_at = now
        self.revoke_reason = reason
        return [Revoked(self.user_id, now, reason)]
