"""Eligibility histories and bindings (intervals) of referral-binding: the state the rules
of `referral_binding.domain` read and change."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from referral_binding.binding_modes import PERMANENT_UNTIL, BindingMode

DEFAULT_PROTECTION_PERIOD = timedelta(days=180)


@dataclass(frozen=True)
class Rules:
    """The switches of §2 a merchant configures (defaults: docs/domain.md)."""

    bind_candidates: bool = True
    """Whether an `assessing` sharer binds visitors (else only `qualified` ones do; a
    candidate's share link still earns the attribution of the order, without a binding)."""
    self_attribution: bool = True
    """Whether an eligible buyer's own orders are attributed to them (basis `self`)."""
    binding_mode: BindingMode = BindingMode.PROTECTION
    """How long a binding protects the customer, and whether another sharer may take over."""

    def protection_end(self, start: datetime, period: timedelta) -> datetime:
        """The end of a protection starting (or extended) at `start`."""
        if self.binding_mode is BindingMode.PERMANENT:
            return PERMANENT_UNTIL
        return start + period


DEFAULT_RULES = Rules()


# --- eligibility ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EligibilityChange:
    """From `since` on, the user is (or is not) a candidate/distributor (`qualified`: a
    distributor)."""

    since: datetime
    eligible: bool
    qualified: bool = False


class Eligibility:
    """One user's eligibility history: `assessing`/`qualified` are eligible, anything else not.

    Changes may be learnt in any order; reading at a moment applies every change up to and
    including it. Two changes at the same instant resolve to *ineligible*, so attribution
    never points to a user whose status is in doubt.
    """

    def __init__(self, changes: Iterable[EligibilityChange] = ()) -> None:
        # Same instant: ineligible wins, then qualified over assessing (learnt in any order).
        self.changes = sorted(changes, key=lambda c: (c.since, c.eligible is False, c.qualified))

    def at(self, moment: datetime) -> bool:
        latest = self._latest(moment)
        return latest is not None and latest.eligible

    def qualified_at(self, moment: datetime) -> bool:
        latest = self._latest(moment)
        return latest is not None and latest.eligible and latest.qualified

    def may_bind_at(self, moment: datetime, rules: Rules) -> bool:
        return self.qualified_at(moment) if not rules.bind_candidates else self.at(moment)

    def _latest(self, moment: datetime) -> EligibilityChange | None:
        latest = None
        for change in self.changes:
            if change.since > moment:
                break
            latest = change
        return latest

    def first_ineligible_moment(self, start: datetime, end: datetime) -> datetime | None:
        """The earliest moment in `[start, end)` at which the user is not eligible."""
        if start >= end:
            return None
        if not self.at(start):
            return start
        for change in self.changes:
            if start < change.since < end and not self.at(change.since):
                return change.since
        return None


# --- bindings -------------------------------------------------------------------------------


class ReleaseReason(StrEnum):
    EXPIRED = "expired"
    DISTRIBUTOR_INELIGIBLE = "distributor_ineligible"
    OVERWRITTEN = "overwritten"  # `overwrite` mode: another sharer's visit re-bound the customer


def protected_at(
    bound_at: datetime, protected_until: datetime, released_at: datetime | None, moment: datetime
) -> bool:
    """Whether a binding protects its customer at `moment`: from `bound_at` (included) until
    `protected_until` or its release, whichever comes first (excluded). The one definition:
    the aggregate, the API, the Redis cache and the store's SQL (`store.queries`, tested to
    agree) all ask it."""
    ends = protected_until if released_at is None else min(protected_until, released_at)
    return bound_at <= moment < ends


@dataclass(frozen=True)
class Binding:
    """Customer → distributor, protected from `bound_at` until `protected_until` or release."""

    binding_id: str
    customer_id: str
    distributor_id: str
    share_id: str
    bound_at: datetime
    protected_until: datetime
    order_id: str | None = None
    released_at: datetime | None = None
    release_reason: ReleaseReason | None = None

    @property
    def released(self) -> bool:
        return self.released_at is not None

    @property
    def protection_ends(self) -> datetime:
        if self.released_at is None:
            return self.protected_until
        return min(self.protected_until, self.released_at)

    def protected_at(self, moment: datetime) -> bool:
        return protected_at(self.bound_at, self.protected_until, self.released_at, moment)


@dataclass(frozen=True)
class BindingCreated:
    binding: Binding


@dataclass(frozen=True)
class BindingExtended:
    binding: Binding
    order_id: str
    extended_at: datetime


@dataclass(frozen=True)
class BindingReleased:
    binding: Binding


BindingEvent = BindingCreated | BindingExtended | BindingReleased


def release_if_ineligible(binding: Binding, distributor: Eligibility) -> BindingReleased | None:
    """Release an unreleased binding at the first moment of its protection at which its
    distributor is not eligible (a failure or revocation, possibly learnt late)."""
    if binding.released:
        return None
    moment = distributor.first_ineligible_moment(binding.bound_at, binding.protected_until)
    if moment is None:
        return None
    return BindingReleased(
        replace(binding, released_at=moment, release_reason=ReleaseReason.DISTRIBUTOR_INELIGIBLE)
    )


def expire(binding: Binding, now: datetime) -> BindingReleased | None:
    """Release an unreleased binding whose protection ended at or before `now`."""
    if binding.released or binding.protected_until > now:
        return None
    return BindingReleased(
        replace(binding, released_at=binding.protected_until, release_reason=ReleaseReason.EXPIRED)
    )


class CustomerBindings:
    """All bindings of one customer (the aggregate that keeps their protections disjoint)."""

    def __init__(
        self,
        customer_id: str,
        bindings: Iterable[Binding],
        latest_order_paid_at: datetime | None = None,
    ) -> None:
        self.customer_id = customer_id
        self.bindings = sorted(bindings, key=lambda b: (b.bound_at, b.binding_id))
        self.latest_order_paid_at = latest_order_paid_at

    def protected_at(self, moment: datetime) -> Binding | None:
        return next((b for b in self.bindings if b.protected_at(moment)), None)

    def decided_after(self, moment: datetime) -> bool:
        """Whether a binding starts after `moment`, or an order was paid at or after it: a
        cause at `moment` learnt now is late (an order of the same instant counts as earlier,
        since it was already attributed without this binding)."""
        if self.latest_order_paid_at is not None and self.latest_order_paid_at >= moment:
            return True
        return any(b.bound_at > moment for b in self.bindings)

    def expire_until(self, now: datetime) -> list[BindingReleased]:
        """Release the bindings whose protection ended by `now` (before a new one may start)."""
        released = [r for r in (expire(b, now) for b in self.bindings) if r is not None]
        for event in released:
            self._put(event.binding)
        return released

    def bind(
        self,
        binding_id: str,
        distributor_id: str,
        share_id: str,
        at: datetime,
        period: timedelta,
        distributor: Eligibility,
        order_id: str | None = None,
        rules: Rules = DEFAULT_RULES,
    ) -> list[BindingEvent]:
        """Bind at `at`; the caller has checked there is no protection at `at` and no later
        decision. Learnt-late ineligibility of the distributor releases it straight away."""
        binding = Binding(
            binding_id=binding_id,
            customer_id=self.customer_id,
            distributor_id=distributor_id,
            share_id=share_id,
            bound_at=at,
            protected_until=rules.protection_end(at, period),
            order_id=order_id,
        )
        self._put(binding)
        events: list[BindingEvent] = [BindingCreated(binding)]
        released = release_if_ineligible(binding, distributor)
        if released is not None:
            self._put(released.binding)
            events.append(released)
        return events

    def extend(
        self,
        binding: Binding,
        order_id: str,
        paid_at: datetime,
        period: timedelta,
        distributor: Eligibility,
        rules: Rules = DEFAULT_RULES,
    ) -> list[BindingEvent]:
        """A paid order inside the protection moves its end to `max(end, paid_at + period)`;
        a permanent binding has nothing to extend (no event)."""
        if rules.binding_mode is BindingMode.PERMANENT:
            return []
        extended = replace(binding, protected_until=max(binding.protected_until, paid_at + period))
        self._put(extended)
        events: list[BindingEvent] = [BindingExtended(extended, order_id, paid_at)]
        released = release_if_ineligible(extended, distributor)
        if released is not None:
            self._put(released.binding)
            events.append(released)
        return events

    def overwrite(self, binding: Binding, at: datetime) -> BindingReleased:
        """Release `binding` at `at`: another sharer's visit re-binds the customer then."""
        released = replace(binding, released_at=at, release_reason=ReleaseReason.OVERWRITTEN)
        self._put(released)
        return BindingReleased(released)

    def _put(self, binding: Binding) -> None:
        self.bindings = [b for b in self.bindings if b.binding_id != binding.binding_id]
        self.bindings.append(binding)
        self.bindings.sort(key=lambda b: (b.bound_at, b.binding_id))
