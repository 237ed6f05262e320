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
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from referral_binding.binding_modes import BindingMode
from referral_binding.domain.bindings import DEFAULT_PROTECTION_PERIOD as DEFAULT_PROTECTION_PERIOD
from referral_binding.domain.bindings import DEFAULT_RULES as DEFAULT_RULES
from referral_binding.domain.bindings import Binding as Binding
from referral_binding.domain.bindings import BindingCreated as BindingCreated
from referral_binding.domain.bindings import BindingEvent as BindingEvent
from referral_binding.domain.bindings import BindingExtended as BindingExtended
from referral_binding.domain.bindings import BindingReleased as BindingReleased
from referral_binding.domain.bindings import CustomerBindings as CustomerBindings
from referral_binding.domain.bindings import Eligibility as Eligibility
from referral_binding.domain.bindings import EligibilityChange as EligibilityChange
from referral_binding.domain.bindings import ReleaseReason as ReleaseReason
from referral_binding.domain.bindings import Rules as Rules
from referral_binding.domain.bindings import expire as expire
from referral_binding.domain.bindings import protected_at as protected_at
from referral_binding.domain.bindings import release_if_ineligible as release_if_ineligible

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
    return [r for r in (release_if_ineligible(b, distributor) for b in bindings) if r is not None]


def expire_all(bindings: Iterable[Binding], now: datetime) -> list[BindingReleased]:
    """The clock moved to `now`: release every binding whose protection has ended."""
    return [r for r in (expire(b, now) for b in bindings) if r is not None]


def recruiter_binding(
    applicant_id: str, applied_at: datetime, customer: CustomerBindings, *, recorded: bool
) -> Binding | None:
    """DOMAIN §2.7: the binding whose distributor recruited `applicant_id`, who applied at
    `applied_at` — the binding (any mode) protecting them as a customer then. None when a
    recruiter is already recorded (the first stands), when no binding covered them, and
    never the applicant themself."""
    if recorded:
        return None
    binding = customer.protected_at(applied_at)
    if binding is None or binding.distributor_id == applicant_id:
        return None
    return binding
