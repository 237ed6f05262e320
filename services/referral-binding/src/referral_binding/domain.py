"""Referral binding and attribution rules (docs/domain.md §2), as plain Python.

Every decision is taken at the time of the event that causes it, from the state the store
holds about that time, so processing the same records again into an empty store gives the
same bindings, attributions and event ids. Nothing here reads a clock or touches a store.

Events from different topics may arrive in any order. The rules that make that safe:
- eligibility is a history of changes, read at the moment that matters (`Eligibility.at`);
- a binding is an interval `[bound_at, min(protected_until, released_at))`, never deleted;
  whatever is released stays released (published events are never taken back);
- a binding is created at time T only when nothing was decided about the customer after T
  (no later binding, no later paid order): a late cause cannot rewrite published history,
  so a customer never has two overlapping protections;
- whenever a binding's interval or its distributor's history changes, the binding is
  released at the first moment its distributor is ineligible inside its protection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
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
        return self.bound_at <= moment < self.protection_ends


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


def settle(binding: Binding, distributor: Eligibility) -> BindingReleased | None:
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
        released = settle(binding, distributor)
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
        released = settle(extended, distributor)
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


# --- visits ---------------------------------------------------------------------------------


class VisitOutcome(StrEnum):
    BOUND = "bound"
    SELF_VISIT = "self_visit"
    VISITOR_IS_DISTRIBUTOR = "visitor_is_distributor"
    SHARER_INELIGIBLE = "sharer_ineligible"
    SHARER_NOT_QUALIFIED = "sharer_not_qualified"
    ALREADY_BOUND = "already_bound"
    CONTESTED = "contested"
    LATE = "late"


REOPENABLE = frozenset({VisitOutcome.SHARER_INELIGIBLE, VisitOutcome.SHARER_NOT_QUALIFIED})
"""Visit outcomes that a sharer's eligibility learnt late may change: when a change arrives
that makes the sharer eligible from S, their visits so refused at or after S are decided
again, in `visited_at` order, by the same rules at the visit's time (`late` included)."""


@dataclass(frozen=True)
class VisitDecision:
    outcome: VisitOutcome
    protected_by: Binding | None = None


def decide_visit(
    *,
    sharer_id: str,
    visitor_id: str,
    visited_at: datetime,
    sharer: Eligibility,
    visitor: Eligibility,
    customer: CustomerBindings,
    rules: Rules = DEFAULT_RULES,
) -> VisitDecision:
    """DOMAIN §2.1/2.2: whether a visit binds the visitor to the sharer, and if not, why.

    A visit from another eligible sharer while the visitor is protected is `contested` (kept
    for stats and disputes). A visit older than something already decided about the visitor
    is `late`: binding it would rewrite published history.
    """
    if visitor_id == sharer_id:
        return VisitDecision(VisitOutcome.SELF_VISIT)
    if visitor.at(visited_at):
        return VisitDecision(VisitOutcome.VISITOR_IS_DISTRIBUTOR)
    if not sharer.at(visited_at):
        return VisitDecision(VisitOutcome.SHARER_INELIGIBLE)
    if not sharer.may_bind_at(visited_at, rules):
        return VisitDecision(VisitOutcome.SHARER_NOT_QUALIFIED)
    current = customer.protected_at(visited_at)
    if current is not None:
        same = current.distributor_id == sharer_id
        outcome = VisitOutcome.ALREADY_BOUND if same else VisitOutcome.CONTESTED
        if outcome is VisitOutcome.CONTESTED and _overwrites(customer, visited_at, rules):
            outcome = VisitOutcome.BOUND  # `overwrite`: `protected_by` is released at the visit
        return VisitDecision(outcome, protected_by=current)
    if customer.decided_after(visited_at):
        return VisitDecision(VisitOutcome.LATE)
    return VisitDecision(VisitOutcome.BOUND)


def _overwrites(customer: CustomerBindings, visited_at: datetime, rules: Rules) -> bool:
    """In `overwrite`, a contested visit re-binds unless something about the customer was
    decided after it (re-binding then would rewrite published history: it stays contested)."""
    return rules.binding_mode is BindingMode.OVERWRITE and not customer.decided_after(visited_at)


# --- attribution ----------------------------------------------------------------------------


class Basis(StrEnum):
    SELF = "self"
    BINDING = "binding"
    SHARE_LINK = "share_link"


@dataclass(frozen=True)
class Attribution:
    distributor_id: str
    basis: Basis


def attribute(
    *,
    buyer_id: str,
    paid_at: datetime,
    buyer: Eligibility,
    binding: Binding | None,
    bound_distributor: Eligibility | None,
    share_sharer_id: str | None,
    sharer: Eligibility | None,
    rules: Rules = DEFAULT_RULES,
) -> Attribution | None:
    """DOMAIN §2.4, evaluated at `paid_at`: self → binding → share_link → unattributed.

    `binding` is the buyer's binding protected at `paid_at` (if any); each candidate
    beneficiary must be eligible at `paid_at`, so an attribution never names anyone else.
    """
    if rules.self_attribution and buyer.at(paid_at):
        return Attribution(buyer_id, Basis.SELF)
    if binding is not None and bound_distributor is not None and bound_distributor.at(paid_at):
        return Attribution(binding.distributor_id, Basis.BINDING)
    if share_sharer_id is not None and sharer is not None and sharer.at(paid_at):
        return Attribution(share_sharer_id, Basis.SHARE_LINK)
    return None


# --- what one event does --------------------------------------------------------------------

EligibilityOf = Callable[[str], Eligibility]


@dataclass(frozen=True)
class VisitResult:
    decision: VisitDecision
    events: list[BindingEvent]


def visit(
    *,
    binding_id: str,
    share_id: str,
    sharer_id: str,
    visitor_id: str,
    visited_at: datetime,
    period: timedelta,
    customer: CustomerBindings,
    eligibility_of: EligibilityOf,
    rules: Rules = DEFAULT_RULES,
) -> VisitResult:
    """A share was opened: bind the visitor when §2.1 allows (expired bindings end first)."""
    sharer = eligibility_of(sharer_id)
    decision = decide_visit(
        sharer_id=sharer_id,
        visitor_id=visitor_id,
        visited_at=visited_at,
        sharer=sharer,
        visitor=eligibility_of(visitor_id),
        customer=customer,
        rules=rules,
    )
    if decision.outcome is not VisitOutcome.BOUND:
        return VisitResult(decision, [])
    events: list[BindingEvent] = [*customer.expire_until(visited_at)]
    if decision.protected_by is not None:
        events.append(customer.overwrite(decision.protected_by, visited_at))
    events += customer.bind(
        binding_id, sharer_id, share_id, visited_at, period, sharer, rules=rules
    )
    return VisitResult(decision, events)


@dataclass(frozen=True)
class OrderResult:
    attribution: Attribution | None
    binding_id: str | None
    """The buyer's binding the order extended or created, if any."""
    events: list[BindingEvent]


def order_paid(
    *,
    binding_id: str,
    order_id: str,
    buyer_id: str,
    paid_at: datetime,
    share_id: str | None,
    share_sharer_id: str | None,
    period: timedelta,
    customer: CustomerBindings,
    eligibility_of: EligibilityOf,
    rules: Rules = DEFAULT_RULES,
) -> OrderResult:
    """A paid order: attribute it (§2.4), extend the buyer's protected binding (§2.3) — whoever
    benefits — and bind through the share link when that is the basis.

    The share-link binding is skipped when something about the buyer was already decided
    after `paid_at` (the order is still attributed; history is not rewritten), and when the
    sharer may not bind (a candidate while `bind_candidates` is off).
    """
    protected = customer.protected_at(paid_at)
    attribution = attribute(
        buyer_id=buyer_id,
        paid_at=paid_at,
        buyer=eligibility_of(buyer_id),
        binding=protected,
        bound_distributor=eligibility_of(protected.distributor_id) if protected else None,
        share_sharer_id=share_sharer_id,
        sharer=eligibility_of(share_sharer_id) if share_sharer_id is not None else None,
        rules=rules,
    )
    if protected is not None:
        distributor = eligibility_of(protected.distributor_id)
        events = customer.extend(protected, order_id, paid_at, period, distributor, rules)
        return OrderResult(attribution, protected.binding_id, events)
    if (
        attribution is None
        or attribution.basis is not Basis.SHARE_LINK
        or share_id is None
        or customer.decided_after(paid_at)
        or not eligibility_of(attribution.distributor_id).may_bind_at(paid_at, rules)
    ):
        return OrderResult(attribution, None, [])
    events = [*customer.expire_until(paid_at)]
    events += customer.bind(
        binding_id,
        attribution.distributor_id,
        share_id,
        paid_at,
        period,
        eligibility_of(attribution.distributor_id),
        order_id=order_id,
        rules=rules,
    )
    return OrderResult(attribution, binding_id, events)


def distributor_changed(
    bindings: Iterable[Binding], distributor: Eligibility
) -> list[BindingReleased]:
    """The distributor's history changed: release their bindings covering an ineligible moment."""
    return [r for r in (settle(b, distributor) for b in bindings) if r is not None]


def expire_all(bindings: Iterable[Binding], now: datetime) -> list[BindingReleased]:
    """The clock moved to `now`: release every binding whose protection has ended."""
    return [r for r in (expire(b, now) for b in bindings) if r is not None]
