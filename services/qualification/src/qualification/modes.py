"""Qualification modes (docs/domain.md §1, "Qualification modes"): how a user becomes a
distributor, `FX_QUALIFICATION_MODE`.

- `assessment` (the seed's, the default): apply → contact confirmed → the assessment window
  (domain.py); nothing here changes it.
- `everyone` (人人分销): an application qualifies at once; with `FX_QUALIFICATION_CONTACT_STEP`
  it waits for the contact confirmation and qualifies then, with no assessment.
- `appointed` (仅指定用户): applications are closed; ops appoint a user, naming why, and the
  appointment records who did it.

The mode is read when a command runs: switching it never changes anyone already qualified (or
revoked), and an assessment already running keeps its terms (orders still count, the window
still closes). Commands that do not fit raise `TransitionRefused` (409), like domain.py's.
Pure: no I/O, every `now` is handed in.
"""

from __future__ import annotations

from datetime import datetime

from qualification.domain import (
    DomainEvent,
    Mode,
    Policy,
    Qualification,
    Qualified,
    Status,
    TransitionRefused,
)


def apply(
    q: Qualification, now: datetime, policy: Policy, wechat_id: str | None = None
) -> list[DomainEvent]:
    """The user applies, under the mode in force. In `appointed`, a user who could start an
    application (never applied, or failed) is refused; the others get the seed's answers."""
    if policy.mode is Mode.APPOINTED and q.status in (Status.NONE, Status.FAILED):
        raise TransitionRefused(
            "applications_closed",
            "distributors are appointed by ops (FX_QUALIFICATION_MODE=appointed); "
            "applications are closed",
        )
    events = q.apply(now, policy, wechat_id)
    if policy.mode is Mode.EVERYONE and not policy.contact_step and q.status is Status.APPLIED:
        events += _qualify(q, now, Mode.EVERYONE)
    return events


def confirm_contact(q: Qualification, now: datetime, policy: Policy) -> list[DomainEvent]:
    """Customer service confirmed the contact: an assessment starts (`assessment`), the
    applicant qualifies (`everyone`); `appointed` takes no applications to confirm."""
    if policy.mode is Mode.ASSESSMENT or q.status is not Status.APPLIED:
        return q.confirm_contact(now, policy)
    if policy.mode is Mode.APPOINTED:
        raise TransitionRefused(
            "applications_closed",
            f"distributors are appointed by ops (FX_QUALIFICATION_MODE=appointed); appoint "
            f"{q.user_id} instead of confirming the contact",
        )
    q.confirmed_at = now
    return _qualify(q, now, Mode.EVERYONE)


def appoint(
    q: Qualification, now: datetime, policy: Policy, by: str, reason: str
) -> list[DomainEvent]:
    """Ops appoint the user a distributor (`appointed` mode only), recording who and why.

    Any user not yet qualified may be appointed: one who never applied, a pending applicant,
    a candidate mid-assessment (the assessment ends; its counted orders stay in the history),
    one who failed. Appointing a distributor again changes nothing; a revoked one stays
    revoked.
    """
    if policy.mode is not Mode.APPOINTED:
        raise TransitionRefused(
            "appointments_off",
            f"ops appoint distributors only in the appointed mode; the mode is {policy.mode}",
        )
    if q.status is Status.QUALIFIED:
        return []
    if q.status is Status.REVOKED:
        raise TransitionRefused(
            "revoked", f"the distributor status of {q.user_id} was revoked; it cannot be appointed"
        )
    if q.status in (Status.NONE, Status.FAILED):
        q.attempt += 1  # a new attempt: a failed one's orders never count again
        q.confirmed_at = q.deadline = q.failed_at = None
        q.required_orders = q.counts_own_orders = None
    q.appointed_by = by
    q.appoint_reason = reason
    return _qualify(q, now, Mode.APPOINTED, by, reason)


def _qualify(
    q: Qualification, now: datetime, via: Mode, by: str | None = None, reason: str | None = None
) -> list[DomainEvent]:
    orders = tuple(o.order_id for o in q.counting_orders) if q.status is Status.ASSESSING else ()
    q.status = Status.QUALIFIED
    q.qualified_at = now
    q.qualified_via = via
    return [Qualified(q.user_id, now, orders, via=via, appointed_by=by, reason=reason)]
