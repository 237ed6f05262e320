"""The sweeper lease: a sweep renews and locks it in its own transaction, so no other replica
takes it (and sweeps) before that sweep commits, however long the sweep takes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import db
from fx_common.testing import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
        made = db.make_engine(url)
        db.create_schema(made, [])
        yield made
        made.dispose()
        return
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    with fresh_postgres_database(server) as url:
        made = db.make_engine(url)
        db.create_schema(made, [])
        yield made
        made.dispose()


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
