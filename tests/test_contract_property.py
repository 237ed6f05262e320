"""No contract-valid event stops a service: for each of the four services, every event its
contract accepts (strategies built from the contract models, extremes included) is applied or
refused with `Rejected`, the store (SQLite and Postgres) accepts what the handlers write, and
what it publishes is valid."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from commission.app import SPEC as COMMISSION
from fx_common import db
from fx_common.clock import SimulatedClock
from fx_common.contract_strategies import apply_all, events
from fx_common.contracts.base import EARLIEST_TIME
from fx_common.runtime import ServiceSpec, processor_for
from fx_common.testing import fresh_postgres_database
from payout.app import SPEC as PAYOUT
from qualification.app import SPEC as QUALIFICATION
from referral_binding.app import ReferralBindingSettings, spec_for

SPECS: dict[str, ServiceSpec] = {
    # No Redis for referral-binding: the cache has its own tests.
    "referral-binding": spec_for(ReferralBindingSettings(redis_url="")),
    "qualification": QUALIFICATION,
    "commission": COMMISSION,
    "payout": PAYOUT,
}
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # SQLite examples are many; Postgres ones share one database (ids collide: more states)


def sequences(spec: ServiceSpec) -> st.SearchStrategy[list[Any]]:
    """Up to 8 events of the types `spec` handles, and the clock's."""
    types = sorted({*spec.handler_table(), "fx.clock.set"})
    return st.lists(events(types), min_size=1, max_size=8)


@pytest.mark.parametrize("service", sorted(SPECS))
@settings(SETTINGS, max_examples=120)
@given(data=st.data(), batch_size=st.integers(1, 8))
def test_every_contract_valid_event_is_applied_or_refused_on_sqlite(
    service: str, data: st.DataObject, batch_size: int
) -> None:
    spec = SPECS[service]
    drawn = data.draw(sequences(spec))
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{tmp}/store.db")
        db.create_schema(engine, spec.tables)
        processor = processor_for(spec, engine, clock=SimulatedClock(EARLIEST_TIME))
        apply_all(processor, engine, drawn, batch_size)
        engine.dispose()


@pytest.fixture(scope="module", params=sorted(SPECS))
def postgres(request: pytest.FixtureRequest) -> Iterator[tuple[ServiceSpec, Engine]]:
    """One fresh Postgres database per service, shared by that service's examples."""
    spec = SPECS[request.param]
    with fresh_postgres_database(os.environ["FX_TEST_POSTGRES_URL"]) as url:
        engine = db.make_engine(url)
        db.create_schema(engine, spec.tables)
        yield spec, engine
        engine.dispose()


@pytest.mark.postgres
@settings(SETTINGS, max_examples=40)
@given(data=st.data(), batch_size=st.integers(1, 8))
def test_every_contract_valid_event_is_applied_or_refused_on_postgres(
    postgres: tuple[ServiceSpec, Engine], data: st.DataObject, batch_size: int
) -> None:
    spec, engine = postgres
    drawn = data.draw(sequences(spec))
    processor = processor_for(spec, engine, clock=SimulatedClock(EARLIEST_TIME))
    apply_all(processor, engine, drawn, batch_size)
