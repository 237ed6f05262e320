"""Schema migrations: one Alembic history per service store.

Each service ships its revisions inside its package (`<pkg>/alembic/versions/`); the Alembic
environment and the revision template are shared (`fx_common/alembic/`). The common tables
(inbox, outbox, lease) belong to every service's history.

A service never creates its schema when it starts: `ensure` refuses a store behind the code's
head and names the command that upgrades it (`fx-<service> migrate`), unless `FX_MIGRATE=auto`
(local runs, the demo, the benchmarks and the tests), which upgrades it first. `upgrade` holds
a lock while it migrates — a Postgres advisory lock, or an flock beside an SQLite file — and looks
again once it holds it, so replicas starting together migrate a store once.

A store written before migrations existed (by `create_all`: the schema of the baseline
revision) is adopted: stamped at the baseline, then upgraded like any other.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel

from fx_common import db

ENVIRONMENT = Path(__file__).parent / "alembic"
# The baseline revision lists the tables `create_all` made before migrations existed.
LEGACY_TABLES = "LEGACY_TABLES"


class StoreNotReady(RuntimeError):
    """The store cannot be used by this code as it is (the message says what to do)."""


@dataclass(frozen=True, eq=False)
class History:
    """A service's migration history: its revisions and the tables they must arrive at."""

    service: str
    versions: Path
    tables: tuple[type[SQLModel], ...]

    @classmethod
    def of(cls, service: str, package_file: str, tables: Sequence[type[SQLModel]]) -> History:
        """The history shipped in the package of `package_file` (its `alembic/versions/`)."""
        return cls(service, Path(package_file).parent / "alembic" / "versions", tuple(tables))

    @property
    def command(self) -> str:
        return f"fx-{self.service} migrate"

    def metadata(self) -> MetaData:
        """The tables of this store only (SQLModel's metadata holds every service's)."""
        return self._metadata

    @cached_property
    def _metadata(self) -> MetaData:
        metadata = MetaData()
        for model in (*db.PLUMBING_TABLES, *self.tables):
            model.__table__.to_metadata(metadata)  # type: ignore[attr-defined]
        return metadata

    def config(self, connection: Connection | None = None) -> Config:
        config = Config()
        config.set_main_option("script_location", str(ENVIRONMENT))
        config.set_main_option("version_locations", str(self.versions))
        config.set_main_option("path_separator", "os")
        config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
        config.attributes["history"] = self
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    @cached_property
    def script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    @property
    def head(self) -> str:
        head = self.script.get_current_head()
        if head is None:
            raise StoreNotReady(f"{self.service}: no revision in {self.versions}")
        return head

    @property
    def baseline(self) -> str:
        (base,) = self.script.get_bases()
        return base

    def knows(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except CommandError:
            return False


@dataclass(frozen=True)
class Status:
    service: str
    current: str | None  # None: no revision recorded (an empty or a pre-migrations store)
    head: str
    legacy: bool  # tables written by `create_all` before migrations, no revision recorded

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    def describe(self) -> str:
        if self.at_head:
            return f"{self.service}: at revision {self.head}, this code's"
        if self.legacy:
            where = "a store from before migrations (no revision)"
        else:
            where = "an empty store" if self.current is None else f"revision {self.current}"
        return f"{self.service}: {where}; this code needs revision {self.head}"


def status(engine: Engine, history: History) -> Status:
    with engine.connect() as conn:
        return status_of(conn, history)


def status_of(conn: Connection, history: History) -> Status:
    """Where the store on `conn` is against the code's head (`fxctl doctor` reads this)."""
    heads = MigrationContext.configure(conn).get_current_heads()
    if len(heads) > 1:
        raise StoreNotReady(f"{history.service}: the store records several revisions {heads}")
    current = heads[0] if heads else None
    legacy = current is None and inspect(conn).has_table(db.InboxRecord.__tablename__)
    return Status(history.service, current, history.head, legacy)


def ensure(engine: Engine, history: History, *, auto: bool) -> Status:
    """The store at the code's head: upgraded first when `auto`, else refused when behind."""
    found = status(engine, history)
    if found.at_head:
        return found
    _refuse_unknown(found, history)
    if auto:
        return upgrade(engine, history)
    raise StoreNotReady(
        f"{found.describe()}. Upgrade it with `{history.command}` (same DATABASE_URL), "
        "or start with FX_MIGRATE=auto"
    )


def _refuse_unknown(found: Status, history: History) -> None:
    if found.current is not None and not history.knows(found.current):
        raise StoreNotReady(
            f"{found.service}: the store is at revision {found.current}, which this code does "
            f"not know (a newer release migrated it); this code needs {found.head}"
        )


def upgrade(engine: Engine, history: History, revision: str = "head") -> Status:
    """Upgrade the store to `revision` under the migration lock; returns where it ends."""
    with _locked(engine, history) as conn:
        found = status_of(conn, history)
        _refuse_unknown(found, history)
        if found.legacy:
            _adopt(conn, history)
        command.upgrade(history.config(conn), revision)
        return status_of(conn, history)


def _adopt(conn: Connection, history: History) -> None:
    baseline = history.script.get_revision(history.baseline)
    assert baseline is not None
    wanted: frozenset[str] = getattr(baseline.module, LEGACY_TABLES)
    missing = wanted - set(inspect(conn).get_table_names())
    if missing:
        raise StoreNotReady(
            f"{history.service}: a store without a revision but with only part of the "
            f"baseline's tables (missing {sorted(missing)}); not adopting it"
        )
    command.stamp(history.config(conn), history.baseline)


@contextlib.contextmanager
def _locked(engine: Engine, history: History) -> Iterator[Connection]:
    """One transaction holding the store's migration lock (Postgres DDL is transactional,
    so a failed upgrade leaves the store as it was)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(history)})
            yield conn
        return
    path = engine.url.database
    with _file_lock(path if path and path != ":memory:" else None), engine.begin() as conn:
        yield conn


@contextlib.contextmanager
def _file_lock(path: str | None) -> Iterator[None]:
    """An flock on `<store>.migrate-lock`, never on the store itself: closing a descriptor of
    the database file would drop the POSIX locks SQLite holds on it in this process."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(f"{path}.migrate-lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def lock_key(history: History) -> int:
    digest = hashlib.sha256(f"fx-migrate:{history.service}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def differences(engine: Engine, history: History) -> list[Any]:
    """What autogenerate would change to bring the store to the models (empty: identical)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, history.metadata()))


def run_environment(context: Any) -> None:
    """The body of the shared `env.py`: run on the connection `upgrade` (or
    `new_revision`) hands over, against this store's tables only. `context` is
    `alembic.context`, the module that proxies the running `EnvironmentContext`."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise CommandError("run migrations with `fx-<service> migrate` (fx_common.migrations)")
    history: History = context.config.attributes["history"]
    context.configure(
        connection=connection,
        target_metadata=history.metadata(),
        render_as_batch=True,  # SQLite alters tables by copy; Postgres gets plain ALTERs
        render_item=_render_item,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _render_item(kind: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """Revisions name plain SQLAlchemy types (the column's type in the database), never the
    application's decorators, so an old revision keeps working when the code moves on."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def new_revision(history: History, message: str, url: str | None = None) -> Path:
    """Write the next revision from what the models changed since the head (autogenerate,
    against `url` or a scratch SQLite store upgraded to the head). Review it before landing."""
    number = f"{sum(1 for _ in history.script.walk_revisions()) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = db.make_engine(url or f"sqlite:///{Path(scratch) / 'head.db'}")
        try:
            if history.script.get_current_head() is not None:
                upgrade(engine, history)
            with engine.begin() as conn:
                script = command.revision(
                    history.config(conn), message, autogenerate=True, rev_id=number
                )
        finally:
            engine.dispose()
    assert script is not None and not isinstance(script, list)
    return Path(script.path)
