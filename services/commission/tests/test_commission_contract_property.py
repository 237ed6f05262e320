"""No contract-valid event stops commission: every event its contract accepts (strategies built
from the contract models, extremes included) is applied or refused with `Rejected`, the store
(SQLite and Postgres) accepts what the handlers write, and what it publishes is valid."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from commission.app import SPEC
from fx_common import db
from fx_common.clock import SimulatedClock
from fx_common.contract_strategies import apply_all, events
from fx_common.contracts.base import EARLIEST_TIME
from fx_common.runtime import processor_for
from fx_common.testing import fresh_postgres_database

TYPES = sorted({*SPEC.handler_table(), "fx.clock.set"})
SEQUENCES = st.lists(events(TYPES), min_size=1, max_size=8)
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)  # SQLite examples are many; Postgres ones share one database (ids collide: more states)


@settings(SETTINGS, max_examples=120)
@given(drawn=SEQUENCES, batch_size=st.integers(1, 8))
def test_every_contract_valid_event_is_applied_or_refused_on_sqlite(
    drawn: list[Any], batch_size: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{tmp}/store.db")
        db.create_schema(engine, SPEC.tables)
        processor = processor_for(SPEC, engine, clock=SimulatedClock(EARLIEST_TIME))
        apply_all(processor, engine, drawn, batch_size)
        engine.dispose()


@pytest.fixture(scope="module")
def postgres() -> Iterator[Engine]:
    with fresh_postgres_database(os.environ["FX_TEST_POSTGRES_URL"]) as url:
        engine = db.make_engine(url)
        db.create_schema(engine, SPEC.tables)
        yield engine
        engine.dispose()


@pytest.mark.postgres
@settings(SETTINGS, max_examples=40)
@given(drawn=SEQUENCES, batch_size=st.integers(1, 8))
def test_every_contract_valid_event_is_applied_or_refused_on_postgres(
    postgres: Engine, drawn: list[Any], batch_size: int
) -> None:
    processor = processor_for(SPEC, postgres, clock=SimulatedClock(EARLIEST_TIME))
    apply_all(processor, postgres, drawn, batch_size)
