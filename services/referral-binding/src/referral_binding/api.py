"""Read API: a customer's binding and history, a distributor's customers and stats.

"Now" is the runtime clock (simulated under `FX_CLOCK=simulated`). A distributor reads only
its own data: its own bindings of a customer, its own customers and stats; ops reads all,
and a customer may read its own binding history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlmodel import Session

from fx_common.http import ApiError, Auth, MallReader, Runtime, errors, require_reader
from fx_common.http_fields import PathId, Rfc3339
from fx_common.leaderboard_http import router_for
from fx_common.runtime import ServiceRuntime
from referral_binding import domain, store
from referral_binding.board import BOARD
from referral_binding.cache import Answer, BindingCache

router = APIRouter(prefix="/v1", tags=["referral-binding"])


class BindingPublic(BaseModel):
    binding_id: str
    customer_id: str
    distributor_id: str
    share_id: str
    order_id: str | None
    bound_at: datetime
    protected_until: datetime
    released_at: datetime | None
    release_reason: str | None

    @classmethod
    def of(cls, row: store.RbBinding) -> BindingPublic:
        return cls.model_validate(row, from_attributes=True)


class BindingHistory(BaseModel):
    customer_id: str
    at: datetime | None
    owner_id: str | None
    """With `at`: the distributor protecting the customer at that moment (if visible to you)."""
    bindings: list[BindingPublic]
    """Without `at`: every binding you may see, oldest first; with `at`: the one protecting."""


class CustomerPublic(BaseModel):
    customer_id: str
    binding_id: str
    bound_at: datetime
    protected_until: datetime


class DistributorCustomers(BaseModel):
    distributor_id: str
    total: int
    customers: list[CustomerPublic]


class DistributorStats(BaseModel):
    distributor_id: str
    visits: int
    unique_visitors: int
    bound_customers: int
    contested_visits: int


@router.get("/customers/{customer_id}/binding", responses=errors(404))
def current_binding(customer_id: PathId, runtime: Runtime, who: MallReader) -> BindingPublic:
    """The binding protecting the customer now; 404 when there is none. Served from the Redis
    cache when it holds a current answer (see `referral_binding.cache`)."""
    now = runtime.clock.now()

    def from_store() -> Answer:
        with Session(runtime.engine) as session:
            row = store.protected_binding(session, customer_id, now)
            if row is not None:
                return Answer(BindingPublic.of(row).model_dump(mode="json"))
            return Answer(None, store.next_binding_start(session, customer_id, now))

    answer = binding_cache(runtime).lookup(customer_id, now, from_store)
    binding = BindingPublic.model_validate(answer.binding) if answer.binding else None
    if who.may_read(customer_id) or (binding is not None and binding.distributor_id == who.sub):
        if binding is None:
            raise ApiError(404, "not_bound", f"customer {customer_id} is not bound now")
        return binding
    raise ApiError(403, "forbidden", "a distributor may read only its own customers")


def binding_cache(runtime: ServiceRuntime) -> BindingCache:
    cache = runtime.spec.extra.get("binding_cache")
    return cache if isinstance(cache, BindingCache) else _NO_CACHE


_NO_CACHE = BindingCache("", "", 0)


@router.get("/customers/{customer_id}/bindings")
def binding_history(
    customer_id: PathId,
    runtime: Runtime,
    who: MallReader,
    at: Annotated[Rfc3339 | None, Query(description="The owner at this moment")] = None,
) -> BindingHistory:
    with Session(runtime.engine) as session:
        history = store.customer_history(session, customer_id)
    if not who.may_read(customer_id):
        history = [row for row in history if row.distributor_id == who.sub]
        if not history:
            raise ApiError(403, "forbidden", "a distributor may read only its own customers")
    bindings = [BindingPublic.of(row) for row in history]
    if at is None:
        return BindingHistory(customer_id=customer_id, at=None, owner_id=None, bindings=bindings)
    owning = [b for b in bindings if _protects(b, at)]
    owner_id = owning[0].distributor_id if owning else None
    return BindingHistory(customer_id=customer_id, at=at, owner_id=owner_id, bindings=owning)


def _protects(binding: BindingPublic, at: datetime) -> bool:
    return domain.protected_at(binding.bound_at, binding.protected_until, binding.released_at, at)


@router.get("/distributors/{distributor_id}/customers")
def distributor_customers(
    distributor_id: PathId,
    runtime: Runtime,
    who: Auth,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> DistributorCustomers:
    """Customers protected for the distributor now, soonest protection end first."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        total, rows = store.protected_customers(
            session, distributor_id, runtime.clock.now(), limit, offset
        )
    customers = [
        CustomerPublic(
            customer_id=row.customer_id,
            binding_id=row.binding_id,
            bound_at=row.bound_at,
            protected_until=row.protected_until,
        )
        for row in rows
    ]
    return DistributorCustomers(distributor_id=distributor_id, total=total, customers=customers)


@router.get("/distributors/{distributor_id}/stats")
def distributor_stats(distributor_id: PathId, runtime: Runtime, who: Auth) -> DistributorStats:
    """Visits of the distributor's shares (self-visits aside), unique visitors, customers
    protected now, and visits that found the visitor protected by someone else."""
    require_reader(who, distributor_id)
    with Session(runtime.engine) as session:
        visits, visitors, contested = store.visit_stats(session, distributor_id)
        bound = store.bound_customer_count(session, distributor_id, runtime.clock.now())
    return DistributorStats(
        distributor_id=distributor_id,
        visits=visits,
        unique_visitors=visitors,
        bound_customers=bound,
        contested_visits=contested,
    )


router.include_router(router_for(BOARD))
