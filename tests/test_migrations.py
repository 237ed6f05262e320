"""Each service's migration history, on SQLite and Postgres: an empty store upgraded to the
head has exactly the models' schema; a store the previous release made with `create_all`,
holding data, is refused until upgraded, upgrades with its data intact and the service
carries on; the command line says what to run."""

from __future__ import annotations

import base64
import importlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import DateTime, Engine, LargeBinary, MetaData, inspect, select, text
from sqlmodel import Session

from fx_common import db, migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.runtime import ServiceSpec, processor_for
from fx_common.testing import fresh_postgres_database, record

REPO = Path(__file__).resolve().parents[1]
Dump = dict[str, list[dict[str, Any]]]
T0 = datetime(2025, 1, 3, 0, 30, tzinfo=UTC)  # when the samples were paid
APPS = {
    "referral-binding": "referral_binding.app",
    "qualification": "qualification.app",
    "commission": "commission.app",
    "payout": "payout.app",
}


def spec_of(service: str) -> ServiceSpec:
    spec: ServiceSpec = importlib.import_module(APPS[service]).SPEC
    return spec


def history_of(service: str) -> migrations.History:
    history = spec_of(service).migrations
    assert history is not None, f"{service} ships no migration history"
    return history


@pytest.fixture(params=list(APPS))
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = db.make_engine(store_url)
    yield engine
    engine.dispose()


def dump(engine: Engine, like: Dump | None = None) -> Dump:
    """Every row of every table as {column: value}, in primary-key order; with `like`, only
    the tables and columns it has (a later revision may add some: those rows keep theirs)."""
    tables = MetaData()
    tables.reflect(engine)
    found: Dump = {}
    with engine.connect() as conn:
        for name, table in tables.tables.items():
            if name == "alembic_version" or (like is not None and name not in like):
                continue
            rows = [
                dict(r._mapping) for r in conn.execute(select(table).order_by(*table.primary_key))
            ]
            if like is not None and like[name]:
                rows = [{c: row[c] for c in like[name][0]} for row in rows]
            found[name] = rows
    return found


def events(spec: ServiceSpec, batch: str, at: datetime) -> list[Any]:
    """One contract-valid event of every type the service handles."""
    return [
        record(ce_type, SAMPLES[ce_type], time=at, event_id=f"{batch}-{ce_type}")
        for ce_type in spec.handler_table()
        if ce_type in SAMPLES
    ]


RELEASE = Path(__file__).parent / "fixtures" / "release-0001"


def load_release_store(service: str, engine: Engine) -> None:
    """A store as the release before migrations left it: its schema (the baseline, which is
    what its `create_all` made) without a revision, and the rows it wrote (fixtures written by
    `python -m tests.test_migrations` on that release)."""
    history = history_of(service)
    migrations.upgrade(engine, history, history.baseline)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    saved = json.loads((RELEASE / f"{service}.json").read_text(encoding="utf-8"))
    tables = MetaData()
    tables.reflect(engine)
    with engine.begin() as conn:
        for name, rows in saved.items():
            table = tables.tables[name]
            if rows:
                conn.execute(table.insert(), [_decoded(table, row) for row in rows])
            if engine.dialect.name == "postgresql" and "id" in table.c:
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name})) WHERE EXISTS (SELECT 1 FROM {name})"
                    )
                )


def _decoded(table: Any, row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for column, value in row.items():
        kind = table.c[column].type
        if isinstance(value, str) and isinstance(kind, DateTime):
            value = datetime.fromisoformat(value)
        elif isinstance(value, str) and isinstance(kind, LargeBinary):
            value = base64.b64decode(value)
        out[column] = value
    return out


def _encoded(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def write_release_fixtures() -> None:
    """Run on a release to record what its stores hold after some processing."""
    import tempfile

    RELEASE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for service in APPS:
            spec = spec_of(service)
            engine = db.make_engine(f"sqlite:///{Path(scratch) / service}.db")
            db.create_schema(engine, spec.tables)  # the release's own store-making
            seed_commands(service, engine)
            processor_for(spec, engine).process(events(spec, "before", T0))
            rows = {
                name: [{c: _encoded(v) for c, v in row.items()} for row in table]
                for name, table in dump(engine).items()
            }
            text_ = json.dumps(rows, indent=1, sort_keys=True) + "\n"
            (RELEASE / f"{service}.json").write_text(text_, encoding="utf-8")
            engine.dispose()


def seed_commands(service: str, engine: Engine) -> None:
    """What only HTTP commands write: qualification's candidates (its events need one)."""
    if service != "qualification":
        return
    from qualification import store
    from qualification.domain import Policy, Qualification

    policy = Policy(3, timedelta(days=30), True, timedelta(0))
    candidate = Qualification("u-sharer")
    candidate.apply(T0 - timedelta(days=2), policy)
    candidate.confirm_contact(T0 - timedelta(days=1), policy)
    with Session(engine) as session, session.begin():
        written = store.Qualifications(session)
        written.save(candidate)
        written.write()


def test_every_service_ships_a_history_with_one_head_and_the_baseline_first() -> None:
    for service in APPS:
        history = history_of(service)
        assert history.versions.is_dir(), history.versions
        assert history.baseline == "0001"
        assert len(history.script.get_heads()) == 1, f"{service}: branched history"
        assert history.versions.is_relative_to(REPO / "services"), "ships inside the package"


def test_an_empty_store_upgraded_to_head_has_exactly_the_models_schema(
    service: str, engine: Engine
) -> None:
    history = history_of(service)
    found = migrations.upgrade(engine, history)
    assert found.at_head and found.current == history.head
    assert migrations.differences(engine, history) == []
    expected = set(history.metadata().tables) | {"alembic_version"}
    assert set(inspect(engine).get_table_names()) == expected


def test_the_differences_see_a_model_the_revisions_do_not_have(engine: Engine) -> None:
    history = history_of("payout")
    migrations.upgrade(engine, history)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_po_withdrawal_status"))
    (difference,) = migrations.differences(engine, history)
    assert difference[0] == "add_index"


def test_a_store_the_previous_release_made_upgrades_with_its_data_and_carries_on(
    service: str, engine: Engine
) -> None:
    spec = spec_of(service)
    history = history_of(service)
    load_release_store(service, engine)
    before = dump(engine)
    assert before["fx_inbox"], "the release's store holds consumed events"
    assert any(rows for name, rows in before.items() if not name.startswith("fx_")), before

    with pytest.raises(migrations.StoreNotReady, match=f"`fx-{service} migrate`"):
        migrations.ensure(engine, history, auto=False)
    assert migrations.status(engine, history).legacy

    assert migrations.upgrade(engine, history).at_head
    assert dump(engine, like=before) == before
    assert migrations.differences(engine, history) == []
    assert migrations.ensure(engine, history, auto=False).at_head

    later = events(spec, "after", T0 + timedelta(days=1))
    outcome = processor_for(spec, engine).process(later)
    assert outcome.duplicates == 0
    assert len(dump(engine)["fx_inbox"]) == len(before["fx_inbox"]) + len(later)


def test_the_release_before_migrations_made_the_baseline_schema(
    service: str, tmp_path: Path
) -> None:
    """The baseline is what `create_all` made in the release the fixtures come from (its
    models are these until a revision changes them: then this holds for the baseline only)."""
    history = history_of(service)
    legacy = db.make_engine(f"sqlite:///{tmp_path / 'legacy.db'}")
    baseline = db.make_engine(f"sqlite:///{tmp_path / 'baseline.db'}")
    try:
        migrations.upgrade(baseline, history, history.baseline)
        if history.head != history.baseline:
            return  # the models moved on; the fixtures carry the release's schema
        db.create_schema(legacy, spec_of(service).tables)
        assert migrations.differences(legacy, history) == []
        assert set(inspect(legacy).get_table_names()) | {"alembic_version"} == set(
            inspect(baseline).get_table_names()
        )
    finally:
        legacy.dispose()
        baseline.dispose()


def test_auto_upgrades_an_empty_store_and_a_second_start_does_nothing(engine: Engine) -> None:
    history = history_of("commission")
    assert migrations.ensure(engine, history, auto=True).at_head
    assert migrations.ensure(engine, history, auto=True).current == history.head
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1


def test_a_store_from_a_newer_release_is_refused_even_with_auto(engine: Engine) -> None:
    history = history_of("qualification")
    migrations.upgrade(engine, history)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(migrations.StoreNotReady, match="9999, which this code does not know"):
        migrations.ensure(engine, history, auto=True)


def test_a_partial_store_without_a_revision_is_not_adopted(engine: Engine) -> None:
    history = history_of("referral-binding")
    db.create_schema(engine, [])  # only the common tables
    with pytest.raises(migrations.StoreNotReady, match="only part of the baseline"):
        migrations.upgrade(engine, history)


def test_a_replay_builds_its_fresh_store_through_the_migrations(tmp_path: Path) -> None:
    from fx_common.replay import replay

    spec = spec_of("payout")
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    replay(spec, url, {})
    rebuilt = db.make_engine(url)
    try:
        assert migrations.status(rebuilt, history_of("payout")).at_head
    finally:
        rebuilt.dispose()
    with pytest.raises(ValueError, match="no migration history"):
        replay(replace(spec, migrations=None), url, {})


def run(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / argv[0]), *argv[1:]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def command_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`fx-payout ARGV` in this process: its exit status and what it printed."""
    from fx_common.cli import main

    with pytest.raises(SystemExit) as exited:
        main(spec_of("payout"), argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 2), out + err + (
        code if isinstance(code, str) else ""
    )


@pytest.mark.postgres
def test_the_command_line_refuses_to_serve_a_store_behind_and_migrates_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from payout.reconcile_cli import read_store

    server = os.environ.get("FX_TEST_POSTGRES_URL")
    assert server, "FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it"
    with fresh_postgres_database(server) as url:
        engine = db.make_engine(url)
        try:
            load_release_store("payout", engine)
        finally:
            engine.dispose()
        head = history_of("payout").head
        env = {"DATABASE_URL": url, "FX_MIGRATE": "off", "FX_HTTP_PORT": "0", "FX_ENV": "test"}
        monkeypatch.setenv("DATABASE_URL", url)

        refused = run("fx-payout", env=env)
        assert refused.returncode == 2, refused.stderr
        assert "Upgrade it with `fx-payout migrate`" in refused.stderr
        assert "FX_MIGRATE=auto" in refused.stderr
        code, printed = command_line(["migrate", "--check"], capsys)
        assert code == 1 and "from before migrations" in printed, printed
        with pytest.raises(migrations.StoreNotReady, match="run `fx-payout migrate` first"):
            read_store(url)

        migrated = run("fx-payout", "migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert f"now at revision {head}" in migrated.stdout
        assert ":fx@" not in migrated.stdout, "the password is never printed"
        for argv in (["migrate", "--check"], ["migrate", "--wait", "1"], ["migrate"]):
            code, printed = command_line(argv, capsys)
            assert code == 0 and f"revision {head}" in printed, (argv, printed)
        ledger, withdrawals = read_store(url)
        assert ledger and withdrawals == []


def test_two_upgrades_racing_on_one_sqlite_file_migrate_it_once(tmp_path: Path) -> None:
    """The flock beside the store's file serialises them (Postgres: tests/integration/
    test_migration_race.py, with two processes)."""
    from concurrent.futures import ThreadPoolExecutor

    history = history_of("referral-binding")
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engines = [db.make_engine(url) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:
            ends = list(pool.map(lambda engine: migrations.upgrade(engine, history), engines))
        assert all(end.at_head for end in ends)
        assert migrations.differences(engines[0], history) == []
        with engines[0].connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        for engine in engines:
            engine.dispose()


if __name__ == "__main__":
    write_release_fixtures()


def test_the_sqlite_migration_lock_leaves_the_store_locks_of_this_process_alone(
    tmp_path: Path,
) -> None:
    """Closing any descriptor of a database file drops every POSIX lock this process holds
    on it, SQLite's included: the migration lock must never open the store itself."""
    import sqlite3
    import sys

    store = tmp_path / "store.db"
    writer = sqlite3.connect(store, isolation_level=None)
    try:
        writer.execute("CREATE TABLE t (x INTEGER)")
        writer.execute("BEGIN IMMEDIATE")  # this process holds the store's write lock
        with migrations._file_lock(str(store)):
            pass
        other = subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; "
             "c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None); "
             "c.execute('BEGIN IMMEDIATE')", str(store)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert other.returncode != 0 and "database is locked" in other.stderr, other.stderr
        assert (tmp_path / "store.db.migrate-lock").exists()
    finally:
        writer.close()
