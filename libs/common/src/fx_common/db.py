"""Store plumbing every service shares: engine, inbox, outbox and the relay lease.

Sessions are synchronous SQLModel sessions; the consumer runs each batch in a worker thread
(`asyncio.to_thread`), so the event loop keeps serving heartbeats and HTTP.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Row,
    bindparam,
    event,
    func,
    text,
)
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, Session, SQLModel, create_engine, select, update

from fx_common.clock import SystemClock


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on SQLite (which keeps no offset) and Postgres alike.

    Stored as naive UTC on SQLite so that comparisons in SQL order correctly; a naive value
    handed in is a bug (every time in fenxiao is aware UTC) and is refused.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: times must be timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class InboxRecord(SQLModel, table=True):
    """One row per consumed `ce_id`: the idempotency record of the consumer, with a digest of
    the content it applied (`processing.inbox`; `None` on rows written before digests)."""

    __tablename__ = "fx_inbox"
    # SQLite: the key is the only index, so the table is the key's B-tree (one insert per
    # event instead of a row and an index entry). Other databases ignore it.
    __table_args__ = {"sqlite_with_rowid": False}
    ce_id: str = Field(primary_key=True, max_length=128)
    ce_type: str = Field(max_length=128)
    topic: str = Field(max_length=128)
    partition: int
    offset: int = Field(sa_type=BigInteger)
    processed_at: datetime
    digest: str | None = Field(default=None, max_length=64)


class OutboxRecord(SQLModel, table=True):
    """An encoded record waiting to be published (events and dead letters alike).

    Indexed by its id and pending state only: the relay reads in id order, nothing else reads
    by `ce_id` or `cause_id` on the hot path (migration "fewer plumbing indexes" says why)."""

    __tablename__ = "fx_outbox"
    __table_args__ = (Index("ix_fx_outbox_pending", "published_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    ce_id: str | None = Field(default=None, max_length=128)
    ce_type: str | None = Field(default=None, max_length=128)
    cause_id: str | None = Field(default=None, max_length=160)
    topic: str = Field(max_length=128)
    key: str | None = Field(default=None, max_length=256)
    value: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    headers: str  # JSON list of [name, base64 value]
    created_at: datetime
    published_at: datetime | None = None


class Lease(SQLModel, table=True):
    """A named lease in the store: one outbox relay (or sweeper) at a time per service."""

    __tablename__ = "fx_lease"
    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128)
    expires_at: datetime


PLUMBING_TABLES: tuple[type[SQLModel], ...] = (InboxRecord, OutboxRecord, Lease)


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


SQLITE_POOL_SIZE = 50


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = make_url(url).database or ""
        in_memory = path in ("", ":memory:")
        if not in_memory:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # As many pooled connections as threads may read at once (anyio's 40 for synchronous
        # routes, the batch, the relay, asyncio's default executor): with SQLAlchemy's
        # default 5 (+10 overflow) every connection past 5 was opened, its pragmas run, and
        # closed again per request under HTTP load. An idle SQLite connection costs little.
        pool: dict[str, int] = {}
        if not in_memory:  # (in memory: SQLAlchemy keeps one connection per thread, no pool)
            pool = {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 10}
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def create_schema(engine: Engine, tables: Iterable[type[SQLModel]]) -> None:
    """Create the service's tables (plumbing included) if they are missing."""
    wanted = [*PLUMBING_TABLES, *tables]
    SQLModel.metadata.create_all(engine, tables=[t.__table__ for t in wanted])  # type: ignore[attr-defined]


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def inbox_digests(session: Session, ids: Sequence[str]) -> dict[str, str | None]:
    """`ce_id` → digest of those of `ids` already in the inbox."""
    found: dict[str, str | None] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(InboxRecord.ce_id, InboxRecord.digest).where(
            InboxRecord.ce_id.in_(chunk)  # type: ignore[attr-defined]
        )
        found.update((ce_id, content) for ce_id, content in session.exec(query))
    return found


def outbox_backlog(session: Session) -> int:
    query = (
        select(func.count())
        .select_from(OutboxRecord)
        .where(
            OutboxRecord.published_at.is_(None)  # type: ignore[union-attr]
        )
    )
    return int(session.exec(query).one())


def pending_outbox(session: Session, limit: int) -> list[Row[Any]]:
    """The next `limit` unpublished rows, oldest first, as plain rows of what the relay sends
    (`id`, `topic`, `key`, `value`, `headers`, `ce_type`): no ORM objects, no timestamps."""
    table = OutboxRecord.__table__  # type: ignore[attr-defined]
    sent = (table.c.id, table.c.topic, table.c.key, table.c.value, table.c.headers)
    pending = table.c.published_at.is_(None)
    query = sa_select(*sent, table.c.ce_type).where(pending).order_by(table.c.id).limit(limit)
    rows: list[Row[Any]] = list(session.connection().execute(query).all())  # type: ignore[arg-type]
    return rows


def mark_published(session: Session, ids: Sequence[int], at: datetime) -> None:
    """Stamp the rows `ids` (the relay's, as `pending_outbox` read them) published at `at`.

    The ids are written into the statement as integer literals: an expanding `IN` of a
    thousand bound parameters cost SQLAlchemy more than the update itself. Never a range
    (`BETWEEN`): on Postgres a row with a lower id can commit after the relay read, and a range
    would mark it published unsent."""
    if not ids:
        return
    listed = ",".join(str(int(row_id)) for row_id in ids)
    published = bindparam("at", type_=OutboxRecord.__table__.c.published_at.type)  # type: ignore[attr-defined]
    statement = text(f"UPDATE fx_outbox SET published_at = :at WHERE id IN ({listed})").bindparams(
        published
    )
    session.connection().execute(statement, {"at": at})


def try_lease(engine: Engine, name: str, owner: str, ttl_s: float) -> bool:
    """Take or renew the lease `name` for `owner`; True when `owner` holds it now.

    Leases are infrastructure, so they run on the system clock even under a simulated one.
    """
    now = SystemClock().now()
    until = now + timedelta(seconds=ttl_s)
    with Session(engine) as session:
        with session.begin():
            taken = session.exec(
                update(Lease)
                .where(Lease.name == name)  # type: ignore[arg-type]
                .where((Lease.owner == owner) | (Lease.expires_at < now))  # type: ignore[arg-type]
                .values(owner=owner, expires_at=until)
            )
            if taken.rowcount:
                return True
            if session.get(Lease, name) is not None:
                return False
        try:
            with session.begin():
                session.add(Lease(name=name, owner=owner, expires_at=until))
        except IntegrityError:
            return False
        return True


def hold_lease(session: Session, name: str, owner: str, ttl_s: float) -> bool:
    """In the caller's transaction: renew `name` if `owner` still holds it. The lease row stays
    locked until that transaction ends, so no other replica takes the lease meanwhile."""
    until = SystemClock().now() + timedelta(seconds=ttl_s)
    renewed = session.exec(
        update(Lease)
        .where(Lease.name == name)  # type: ignore[arg-type]
        .where(Lease.owner == owner)  # type: ignore[arg-type]
        .values(expires_at=until)
    )
    return bool(renewed.rowcount)


def release_lease(engine: Engine, name: str, owner: str) -> None:
    """Give the lease up (graceful stop), so another replica need not wait for it to expire."""
    with Session(engine) as session, session.begin():
        session.exec(
            update(Lease)
            .where(Lease.name == name)  # type: ignore[arg-type]
            .where(Lease.owner == owner)  # type: ignore[arg-type]
            .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
        )
