"""The migration step shared by every history (`fx_common/alembic/plumbing_steps.py`): each
service's store goes down past it and up again with its rows, on SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, text

from fx_common import db, migrations
from fx_common.runtime import processor_for
from tests.test_migrations import (
    APPS,
    T0,
    dump,
    events,
    history_of,
    load_release_store,
    spec_of,
)


@pytest.fixture(params=list(APPS))
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    made = db.make_engine(store_url)
    yield made
    made.dispose()


def _plumbing_shape(engine: Engine) -> tuple[set[str], bool, bool]:
    """The outbox's indexes, whether a unique constraint covers its `ce_id`, and whether the
    SQLite inbox has rowids."""
    found = inspect(engine)
    indexes = {
        ix["name"]
        for ix in found.get_indexes("fx_outbox")
        if ix["name"] and "duplicates_constraint" not in ix  # Postgres: a constraint's own
    }
    unique = any(c["column_names"] == ["ce_id"] for c in found.get_unique_constraints("fx_outbox"))
    with_rowid = True
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'fx_inbox'"))
            with_rowid = "WITHOUT ROWID" not in sql.scalar_one()
    return indexes, unique, with_rowid


def test_fewer_plumbing_indexes_goes_down_and_up_again_with_the_rows(
    service: str, engine: Engine
) -> None:
    history = history_of(service)
    load_release_store(service, engine)
    migrations.upgrade(engine, history)
    spec = spec_of(service)
    processor_for(spec, engine).process(events(spec, "after", T0 + timedelta(days=1)))
    before = dump(engine)
    assert before["fx_inbox"] and before["fx_outbox"]
    sqlite = engine.dialect.name == "sqlite"
    assert _plumbing_shape(engine) == ({"ix_fx_outbox_pending"}, False, not sqlite)

    (step,) = [r for r in history.script.walk_revisions() if "plumbing" in (r.doc or "")]
    with engine.begin() as conn:
        command.downgrade(history.config(conn), str(step.down_revision))
    both = {"ix_fx_outbox_pending", "ix_fx_outbox_cause_id"}
    assert _plumbing_shape(engine) == (both, True, True)
    assert dump(engine) == before

    assert migrations.upgrade(engine, history).at_head
    assert _plumbing_shape(engine) == ({"ix_fx_outbox_pending"}, False, not sqlite)
    assert dump(engine) == before
    assert migrations.differences(engine, history) == []
