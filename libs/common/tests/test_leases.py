"""The sweeper lease: a sweep renews and locks it in its own transaction, so no other replica
takes it (and sweeps) before that sweep commits, however long the sweep takes."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import db


@pytest.fixture
def engine(plumbing_engine: Engine) -> Engine:
    """SQLite, then Postgres (`conftest.plumbing_engine`)."""
    return plumbing_engine


def test_only_the_holder_renews_in_its_transaction(engine: Engine) -> None:
    assert db.try_lease(engine, "sweeper", "a", 60)
    with Session(engine) as session, session.begin():
        assert db.hold_lease(session, "sweeper", "a", 60)
    with Session(engine) as session, session.begin():
        assert not db.hold_lease(session, "sweeper", "b", 60)
    assert not db.try_lease(engine, "sweeper", "b", 60)


def test_a_sweep_outlasting_the_lease_keeps_it_until_it_commits(engine: Engine) -> None:
    assert db.try_lease(engine, "sweeper", "a", 0.2)
    taken: list[bool] = []
    with Session(engine) as session, session.begin():
        assert db.hold_lease(session, "sweeper", "a", 0.2)
        time.sleep(0.5)  # the sweep runs past the lease's time to live
        other = threading.Thread(
            target=lambda: taken.append(db.try_lease(engine, "sweeper", "b", 60))
        )
        other.start()
        time.sleep(0.5)
        assert taken == [], "another replica took the lease while the sweep was running"
    other.join(30)
    assert taken == [True]  # once the sweep committed, the expired lease passed to b
    with Session(engine) as session, session.begin():
        assert not db.hold_lease(session, "sweeper", "a", 60)  # a's next sweep does not run
