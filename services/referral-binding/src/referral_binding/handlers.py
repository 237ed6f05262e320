"""Event handlers: decode → domain → store + outbox.

Documented ignores (applied, nothing published, never dead-lettered): a visit from the sharer
itself or any visit the rules do not bind (kept in `rb_visit` with its outcome); an order
paid again under another event id (the first payment counts); an order nobody is eligible
for (kept unattributed); completions and refunds of unknown or unattributed orders.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event as orm_event

from fx_common.contracts import attributions, bindings, mall_orders, mall_shares, qualification
from fx_common.envelope import Event
from fx_common.ids import uuid5_str
from fx_common.processing import On, Prepare, TickHandler, UnitOfWork
from referral_binding import domain, late, store
from referral_binding.cache import BindingCache
from referral_binding.late_visits import DEFAULT_LATE_VISIT_HORIZON

_BINDING_IDS = uuid.UUID("0c8f5a52-1d0e-4c1b-9b7a-3a4f2d6e8b11")

EligibilityEvent = (
    qualification.AssessmentStarted
    | qualification.DistributorQualified
    | qualification.AssessmentFailed
    | qualification.DistributorRevoked
)
_ELIGIBLE_FROM: dict[type[EligibilityEvent], bool] = {
    qualification.AssessmentStarted: True,
    qualification.DistributorQualified: True,
    qualification.AssessmentFailed: False,
    qualification.DistributorRevoked: False,
}

Uow = UnitOfWork[store.Repository]
Keys = Mapping[str, Iterable[Any]]


def binding_id_for(cause_event_id: str) -> str:
    """A binding's id derives from the event that caused it, so replays reproduce it."""
    return uuid5_str(_BINDING_IDS, cause_event_id)


# --- what each event needs loaded (merged for the batch: `Repository.load`)


def share_created_keys(event: Event, data: mall_shares.ShareCreated) -> Keys:
    return {"shares": [data.share_id], "users": [data.sharer_id]}


def share_visited_keys(event: Event, data: mall_shares.ShareVisited) -> Keys:
    return {"shares": [data.share_id], "users": [data.sharer_id], "customers": [data.visitor_id]}


def order_paid_keys(event: Event, data: mall_orders.OrderPaid) -> Keys:
    shares = [data.share_id] if data.share_id else []
    return {"orders": [data.order_id], "customers": [data.buyer_id], "shares": shares}


def order_keys(event: Event, data: mall_orders.OrderCompleted | mall_orders.OrderRefunded) -> Keys:
    return {"orders": [data.order_id]}


def eligibility_keys(event: Event, data: EligibilityEvent) -> Keys:
    """The distributor's open bindings; made eligible, their visits refused since then."""
    reopen = [(data.user_id, event.time)] if _ELIGIBLE_FROM[type(data)] else []
    return {"distributors": [data.user_id], "reopen": reopen}


def applied_keys(event: Event, data: qualification.DistributorApplied) -> Keys:
    """The applicant's bindings as a customer, and whether their recruiter is recorded."""
    return {"customers": [data.user_id], "recruits": [data.user_id]}


def on_applied(uow: Uow, event: Event, data: qualification.DistributorApplied) -> None:
    """Record the applicant's recruiter once: the distributor whose binding covered them when
    they applied (nothing is published when none did, or one is already recorded)."""
    batch, user_id = uow.repo, data.user_id
    binding = domain.recruiter_binding(
        user_id, event.time, batch.customer(user_id), recorded=user_id in batch.recruited
    )
    if binding is None:
        return
    batch.add_recruiter(user_id, binding, event.time, event.id)
    recorded = attributions.RecruiterRecorded(
        distributor_id=user_id,
        recruiter_id=binding.distributor_id,
        binding_id=binding.binding_id,
        applied_at=event.time,
    )
    uow.publish(recorded, time=event.time)


def _record(uow: Uow, events: Sequence[domain.BindingEvent]) -> None:
    batch = uow.repo
    for event in events:
        binding = event.binding
        batch.save_binding(binding, created=isinstance(event, domain.BindingCreated))
        match event:
            case domain.BindingCreated():
                created = bindings.BindingCreated(
                    binding_id=binding.binding_id,
                    customer_id=binding.customer_id,
                    distributor_id=binding.distributor_id,
                    share_id=binding.share_id,
                    protected_until=binding.protected_until,
                    order_id=binding.order_id,
                )
                uow.publish(created, time=binding.bound_at)
            case domain.BindingExtended(order_id=order_id, extended_at=extended_at):
                batch.add_extension(
                    order_id, binding.binding_id, extended_at, binding.protected_until
                )
                extended = bindings.BindingExtended(
                    binding_id=binding.binding_id,
                    customer_id=binding.customer_id,
                    distributor_id=binding.distributor_id,
                    order_id=order_id,
                    protected_until=binding.protected_until,
                )
                uow.publish(extended, time=extended_at)
            case domain.BindingReleased():
                assert binding.released_at is not None and binding.release_reason is not None
                released = bindings.BindingReleased(
                    binding_id=binding.binding_id,
                    customer_id=binding.customer_id,
                    distributor_id=binding.distributor_id,
                    reason=binding.release_reason.value,
                )
                uow.publish(released, time=binding.released_at)


def on_share_created(uow: Uow, event: Event, data: mall_shares.ShareCreated) -> None:
    uow.repo.record_share(
        data.share_id,
        data.sharer_id,
        event.time,
        created=True,
        product_sku=data.product_sku,
        channel=data.channel,
    )


def on_order_completed(uow: Uow, event: Event, data: mall_orders.OrderCompleted) -> None:
    batch = uow.repo
    distributor_id = batch.attributed_to(data.order_id)
    if distributor_id is None:
        if batch.is_paid(data.order_id):
            late.keep_follow_up(uow, event, data.order_id)
        return
    completed = attributions.AttributedOrderCompleted(
        order_id=data.order_id, distributor_id=distributor_id
    )
    uow.publish(completed, time=event.time)


def on_order_refunded(uow: Uow, event: Event, data: mall_orders.OrderRefunded) -> None:
    batch = uow.repo
    distributor_id = batch.attributed_to(data.order_id)
    if distributor_id is None:
        if batch.is_paid(data.order_id):
            late.keep_follow_up(uow, event, data.order_id)
        return
    refunded = attributions.AttributedOrderRefunded(
        order_id=data.order_id,
        distributor_id=distributor_id,
        refund_id=data.refund_id,
        lines=data.lines,
    )
    uow.publish(refunded, time=event.time)


def on_tick(uow: Uow, now: datetime) -> None:
    """Release every binding whose protection ended by `now`, at the moment it ended."""
    _record(uow, domain.expire_all(uow.repo.open_bindings_ended_by(now), now))


def invalidating(cache: BindingCache) -> tuple[Prepare, TickHandler]:
    """A `prepare` hook and `on_tick` that drop the cached answers of every customer whose
    bindings the unit of work changed, once its transaction has committed."""

    def prepare_batch(uow: UnitOfWork, events: Sequence[Event]) -> None:
        _invalidate_after_commit(uow, cache)

    def sweep(uow: UnitOfWork, now: datetime) -> None:
        _invalidate_after_commit(uow, cache)
        on_tick(uow, now)

    return prepare_batch, sweep


def _invalidate_after_commit(uow: UnitOfWork, cache: BindingCache) -> None:
    # After the commit, never before: a reader between an early delete and the commit would
    # read the old binding from the store and cache it again. A rolled-back batch (redone
    # without a rejected event) commits nothing, so it invalidates nothing.
    if "rb.invalidation" in uow.cache:
        return
    batch = uow.cache["rb.invalidation"] = uow.repo
    orm_event.listen(
        uow.session, "after_commit", lambda _: cache.invalidate(batch.changed_customers), once=True
    )


def handlers_for(
    protection_period: timedelta,
    rules: domain.Rules = domain.DEFAULT_RULES,
    late_visit_horizon: timedelta = DEFAULT_LATE_VISIT_HORIZON,
) -> list[On[Any]]:
    """The handlers, with the protection period, rules and late-visit horizon the service is
    configured with: the contract models each handles and what its events need loaded."""
    handlers = ReferralBindingHandlers(protection_period, rules, late_visit_horizon)
    return [
        On((mall_shares.ShareCreated,), on_share_created, keys=share_created_keys),
        On((mall_shares.ShareVisited,), handlers.on_share_visited, keys=share_visited_keys),
        On((mall_orders.OrderPaid,), handlers.on_order_paid, keys=order_paid_keys),
        On((mall_orders.OrderCompleted,), on_order_completed, keys=order_keys),
        On((mall_orders.OrderRefunded,), on_order_refunded, keys=order_keys),
        On(tuple(_ELIGIBLE_FROM), handlers.on_eligibility_changed, keys=eligibility_keys),
        On((qualification.DistributorApplied,), on_applied, keys=applied_keys),
    ]


class ReferralBindingHandlers:
    """The handlers that apply the binding rules under the configured protection period,
    switches and late-visit horizon: each loads from the batch `prepare` loaded, calls the
    domain and stages."""

    def __init__(
        self, protection_period: timedelta, rules: domain.Rules, late_visit_horizon: timedelta
    ) -> None:
        self.protection_period = protection_period
        self.rules = rules
        self.late_visit_horizon = late_visit_horizon

    def decide_visit(
        self,
        uow: Uow,
        *,
        event_id: str,
        share_id: str,
        sharer_id: str,
        visitor_id: str,
        visited_at: datetime,
    ) -> tuple[domain.VisitOutcome, str | None, str | None]:
        """Apply the visit rules at `visited_at`, recording what they did: (outcome, binding
        id, distributor whose protection covered the visit)."""
        batch = uow.repo
        result = domain.visit(
            binding_id=binding_id_for(event_id),
            share_id=share_id,
            sharer_id=sharer_id,
            visitor_id=visitor_id,
            visited_at=visited_at,
            period=self.protection_period,
            customer=batch.customer(visitor_id),
            eligibility_of=batch.eligibility_of,
            rules=self.rules,
        )
        _record(uow, result.events)
        outcome, protected_by = result.decision.outcome, result.decision.protected_by
        if outcome is domain.VisitOutcome.LATE and late.try_bind_late(
            uow,
            binding_id=binding_id_for(event_id),
            share_id=share_id,
            sharer_id=sharer_id,
            visitor_id=visitor_id,
            visited_at=visited_at,
            period=self.protection_period,
            horizon=self.late_visit_horizon,
            rules=self.rules,
            record=_record,
        ):
            outcome = domain.VisitOutcome.BOUND
        bound = outcome is domain.VisitOutcome.BOUND
        return (
            outcome,
            binding_id_for(event_id) if bound else None,
            protected_by.distributor_id if protected_by else None,
        )

    def on_share_visited(self, uow: Uow, event: Event, data: mall_shares.ShareVisited) -> None:
        batch = uow.repo
        # The visit names its sharer, so a share we have not seen created is no error.
        batch.record_share(data.share_id, data.sharer_id, event.time, created=False)
        outcome, binding_id, protected_by = self.decide_visit(
            uow,
            event_id=event.id,
            share_id=data.share_id,
            sharer_id=data.sharer_id,
            visitor_id=data.visitor_id,
            visited_at=event.time,
        )
        batch.add_visit(
            event_id=event.id,
            share_id=data.share_id,
            sharer_id=data.sharer_id,
            visitor_id=data.visitor_id,
            visited_at=event.time,
            outcome=outcome,
            binding_id=binding_id,
            protected_by=protected_by,
        )

    def on_eligibility_changed(self, uow: Uow, event: Event, data: EligibilityEvent) -> None:
        """Record the change and release the user's bindings it makes ineligible; a change
        making the user eligible from its time S reopens their visits refused as not
        eligible at or after S (arrived before it), decided again in `visited_at` order."""
        user_id, batch = data.user_id, uow.repo
        eligible = _ELIGIBLE_FROM[type(data)]
        batch.add_eligibility(event.id, user_id, event.time, eligible, event.type)
        open_bindings = batch.open_bindings_of_distributor(user_id)
        _record(uow, domain.distributor_changed(open_bindings, batch.eligibility_of(user_id)))
        if not eligible:
            return
        for visit in batch.reopenable_visits(user_id, event.time):
            outcome, binding_id, protected_by = self.decide_visit(
                uow,
                event_id=visit["event_id"],
                share_id=visit["share_id"],
                sharer_id=visit["sharer_id"],
                visitor_id=visit["visitor_id"],
                visited_at=visit["visited_at"],
            )
            batch.redecide_visit(
                visit["event_id"],
                outcome=outcome,
                binding_id=binding_id,
                protected_by=protected_by,
            )

    def on_order_paid(self, uow: Uow, event: Event, data: mall_orders.OrderPaid) -> None:
        batch = uow.repo
        if batch.is_paid(data.order_id):
            return
        sharer_id = batch.sharer_of(data.share_id) if data.share_id else None
        result = domain.order_paid(
            binding_id=binding_id_for(event.id),
            order_id=data.order_id,
            buyer_id=data.buyer_id,
            paid_at=event.time,
            share_id=data.share_id,
            share_sharer_id=sharer_id,
            period=self.protection_period,
            customer=batch.customer(data.buyer_id),
            eligibility_of=batch.eligibility_of,
            rules=self.rules,
        )
        _record(uow, result.events)
        attribution = result.attribution
        batch.add_order(
            order_id=data.order_id,
            buyer_id=data.buyer_id,
            paid_at=event.time,
            share_id=data.share_id,
            distributor_id=attribution.distributor_id if attribution else None,
            basis=attribution.basis if attribution else None,
            binding_id=result.binding_id,
            event_id=event.id,
            lines=late.lines_json(data) if attribution is None else None,
        )
        if attribution is None:
            return
        # Each field copies the validated mall.order.paid (its ids, lines and time) or an id
        # of the store that arrived validated: not validated a second time (that cost as much
        # as the rest of the handler). The handler tests decode what is published.
        attributed = attributions.OrderAttributed.model_construct(
            order_id=data.order_id,
            buyer_id=data.buyer_id,
            distributor_id=attribution.distributor_id,
            basis=attribution.basis.value,
            paid_at=event.time,
            lines=data.lines,
        )
        uow.publish(attributed, time=event.time)
