"""Tables of the qualification service (prefix `qf_`) and the queries it needs.

A `Qualification` aggregate is stored as one row per user, one row per qualifying order and
one row per refund of such an order; `qf_history` keeps every event published for the user,
so the whole way to (or out of) distributor status stays queryable. Nothing is deleted.
Store functions never commit: the unit of work owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Table,
    Update,
    bindparam,
    func,
    insert,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Row as SqlRow
from sqlmodel import Field, Session, SQLModel, col, select

from fx_common.db import UtcDateTime
from fx_common.processing import Keys, UnitOfWork
from qualification.domain import Mode, Qualification, QualifyingOrder, Refund, Status


class QualificationRow(SQLModel, table=True):
    __tablename__ = "qf_qualification"
    __table_args__ = (Index("ix_qf_qualification_due", "status", "deadline"),)
    user_id: str = Field(primary_key=True, max_length=128)
    status: str = Field(max_length=16)
    attempt: int
    wechat_id: str | None = Field(default=None, max_length=128)
    applied_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    confirmed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    deadline: datetime | None = Field(default=None, sa_type=UtcDateTime)
    required_orders: int | None = None
    counts_own_orders: bool | None = None
    qualified_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    failed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoke_reason: str | None = Field(default=None, max_length=1000)
    qualified_via: str | None = Field(default=None, max_length=16)
    appointed_by: str | None = Field(default=None, max_length=128)
    appoint_reason: str | None = Field(default=None, max_length=1000)


class QualifyingOrderRow(SQLModel, table=True):
    __tablename__ = "qf_order"
    user_id: str = Field(primary_key=True, max_length=128)
    order_id: str = Field(primary_key=True, max_length=128)
    attempt: int
    paid_at: datetime = Field(sa_type=UtcDateTime)
    paid_fen: int = Field(sa_type=BigInteger)
    counted_at: datetime = Field(sa_type=UtcDateTime)
    uncounted_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class RefundRow(SQLModel, table=True):
    __tablename__ = "qf_refund"
    user_id: str = Field(primary_key=True, max_length=128)
    order_id: str = Field(primary_key=True, max_length=128)
    refund_id: str = Field(primary_key=True, max_length=128)
    amount_fen: int = Field(sa_type=BigInteger)
    refunded_at: datetime = Field(sa_type=UtcDateTime)


class HistoryRow(SQLModel, table=True):
    __tablename__ = "qf_history"
    user_id: str = Field(primary_key=True, max_length=128)
    seq: int = Field(primary_key=True)
    ce_type: str = Field(max_length=128)
    at: datetime = Field(sa_type=UtcDateTime)
    data: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    actor: str | None = Field(default=None, max_length=128)  # who ran the causing command


TABLES: tuple[type[SQLModel], ...] = (QualificationRow, QualifyingOrderRow, RefundRow, HistoryRow)

# The hot paths read and write plain rows with Core, never ORM objects (SQLModel's
# constructor validates, which costs more than the SQL).
QUALIFICATIONS: Table = QualificationRow.__table__  # type: ignore[attr-defined]
ORDERS: Table = QualifyingOrderRow.__table__  # type: ignore[attr-defined]
REFUNDS: Table = RefundRow.__table__  # type: ignore[attr-defined]
HISTORY: Table = HistoryRow.__table__  # type: ignore[attr-defined]
AGGREGATE_TABLES = (QUALIFICATIONS, ORDERS, REFUNDS)
COLUMNS = {table: tuple(table.c.keys()) for table in AGGREGATE_TABLES}
KEY_AT = {table: [COLUMNS[table].index(c.name) for c in table.primary_key] for table in COLUMNS}
CHUNK = 500  # ids per `IN (...)`

Values = tuple[Any, ...]  # a row's values, in its table's column order
Key = tuple[Any, ...]  # a row's primary key


class Qualifications:
    """The qualifications one transaction reads and changes, and what the store holds of them.

    Loaded set-based, changed in memory (so later events of a batch see the effects of earlier
    ones without SQL), then written back once by `write`: only the rows that differ from the
    stored ones, one executemany per table and kind, plus the new history rows.
    """

    def __init__(self, session: Session, *, for_update: bool = True) -> None:
        self.session = session
        self.for_update = for_update
        self.found: dict[str, Qualification | None] = {}
        self.not_assessing: set[str] = set()  # read without their orders
        self.stored: dict[Table, dict[Key, Values]] = {table: {} for table in AGGREGATE_TABLES}
        self.changed: dict[str, Qualification] = {}
        self.history: list[dict[str, Any]] = []

    def load(self, keys: Keys) -> None:
        """A batch's pre-load: `keys["users"]` (refunds name them) and `keys["assessing"]`
        (attributions: only a running assessment needs its orders)."""
        self.read(keys.get("users", ()))
        self.read(keys.get("assessing", ()), assessing_only=True)

    def read(self, user_ids: Iterable[str], *, assessing_only: bool = False) -> None:
        """Read, set-based, the qualifications not read yet. With `assessing_only`, users not
        assessing are only noted (only a running assessment counts orders): `get` reads them
        if they are needed after all.

        For a change, a user's row stays locked until the transaction ends (where the database
        supports it), so concurrent commands and batches serialise.
        """
        skip = self.not_assessing if assessing_only else set()
        missing = [u for u in dict.fromkeys(user_ids) if u not in self.found and u not in skip]
        if assessing_only:
            statuses = self._statuses(missing)
            self.not_assessing.update(u for u, s in statuses.items() if s != Status.ASSESSING)
            self.found.update(dict.fromkeys(u for u in missing if u not in statuses))
            missing = [u for u, s in statuses.items() if s == Status.ASSESSING]
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            self.found.update(dict.fromkeys(chunk))
            rows = self._read(QUALIFICATIONS, chunk)  # first: it takes the lock
            refunds: dict[Key, dict[str, Refund]] = {}
            for r in self._read(REFUNDS, chunk):
                refunds.setdefault((r.user_id, r.order_id), {})[r.refund_id] = Refund(
                    r.refund_id, r.amount_fen, r.refunded_at
                )
            orders: dict[str, dict[str, QualifyingOrder]] = {}
            for r in self._read(ORDERS, chunk):
                orders.setdefault(r.user_id, {})[r.order_id] = QualifyingOrder(
                    order_id=r.order_id,
                    attempt=r.attempt,
                    paid_at=r.paid_at,
                    paid_fen=r.paid_fen,
                    counted_at=r.counted_at,
                    refunds=refunds.get((r.user_id, r.order_id), {}),
                    uncounted_at=r.uncounted_at,
                )
            for r in rows:
                via = Mode(r.qualified_via) if r.qualified_via is not None else None
                self.found[r.user_id] = Qualification(
                    **(r._asdict() | {"status": Status(r.status), "qualified_via": via}),
                    orders=orders.get(r.user_id, {}),
                )

    def _statuses(self, user_ids: list[str]) -> dict[str, str]:
        statuses: dict[str, str] = {}
        for start in range(0, len(user_ids), CHUNK):
            query = select(QUALIFICATIONS.c.user_id, QUALIFICATIONS.c.status).where(
                QUALIFICATIONS.c.user_id.in_(user_ids[start : start + CHUNK])
            )
            if self.for_update:
                query = query.with_for_update()
            statuses.update(
                {user_id: status for user_id, status in self.session.connection().execute(query)}
            )
        return statuses

    def _read(self, table: Table, user_ids: list[str]) -> list[SqlRow[Any]]:
        query = table.select().where(table.c.user_id.in_(user_ids))
        if self.for_update and table is QUALIFICATIONS:
            query = query.with_for_update()
        rows = list(self.session.connection().execute(query))
        stored = self.stored[table]
        for row in rows:
            values = tuple(row)
            stored[_key(table, values)] = values
        return rows

    def get(self, user_id: str) -> Qualification | None:
        """The user's qualification as this transaction sees it; None if never applied."""
        if user_id not in self.found:
            self.read([user_id])
        return self.found[user_id]

    def assessing(self, user_id: str) -> Qualification | None:
        """The user's qualification while its assessment runs; None otherwise."""
        if user_id not in self.found and user_id not in self.not_assessing:
            self.read([user_id], assessing_only=True)
        found = self.found.get(user_id)
        return found if found is not None and found.status is Status.ASSESSING else None

    def assessing_due(self, now: datetime) -> list[str]:
        """Users assessing here whose window closed before `now` (the store lists those written)."""
        assessing = (q for q in self.found.values() if q and q.status is Status.ASSESSING)
        return [q.user_id for q in assessing if q.deadline is not None and q.deadline < now]

    def save(self, qualification: Qualification) -> None:
        """Write the aggregate as it is when `write` runs."""
        self.get(qualification.user_id)  # what the store holds, to write only the differences
        self.found[qualification.user_id] = self.changed[qualification.user_id] = qualification

    def append_history(
        self, user_id: str, ce_type: str, at: datetime, data: dict[str, Any], actor: str | None
    ) -> None:
        """An event for the user's history, numbered after the stored ones when `write` runs."""
        row = {"user_id": user_id, "ce_type": ce_type, "at": at, "data": data, "actor": actor}
        self.history.append(row)

    def write(self) -> None:
        connection = self.session.connection()
        current: dict[Table, dict[Key, Values]] = {table: {} for table in AGGREGATE_TABLES}
        for qualification in self.changed.values():
            for table, row in _rows(qualification):
                values = tuple(row[name] for name in COLUMNS[table])
                current[table][_key(table, values)] = values
        self.changed = {}
        for table, rows in current.items():
            stored = self.stored[table]
            new = [_named(table, v) for key, v in rows.items() if key not in stored]
            updated = [
                _named(table, v) for key, v in rows.items() if key in stored and stored[key] != v
            ]
            if new:
                connection.execute(insert(table), new)
            if updated:
                connection.execute(_update_by_key(table), [_by_key(table, r) for r in updated])
            stored.update(rows)
        if self.history:
            lengths = _history_lengths(connection, [row["user_id"] for row in self.history])
            for row in self.history:
                row["seq"] = lengths.get(row["user_id"], 0)
                lengths[row["user_id"]] = row["seq"] + 1
            connection.execute(insert(HISTORY), self.history)
            self.history = []


def repository(uow: UnitOfWork) -> Qualifications:
    """The unit of work's qualifications (`uow.repo`), written back just before its
    transaction commits; a command that reads its writes back calls `write` itself first."""
    found = Qualifications(uow.session)
    uow.before_flush(found.write)
    return found


def _rows(q: Qualification) -> Iterator[tuple[Table, dict[str, Any]]]:
    yield (
        QUALIFICATIONS,
        {
            "user_id": q.user_id,
            "status": q.status.value,
            "attempt": q.attempt,
            "wechat_id": q.wechat_id,
            "applied_at": q.applied_at,
            "confirmed_at": q.confirmed_at,
            "deadline": q.deadline,
            "required_orders": q.required_orders,
            "counts_own_orders": q.counts_own_orders,
            "qualified_at": q.qualified_at,
            "failed_at": q.failed_at,
            "revoked_at": q.revoked_at,
            "revoke_reason": q.revoke_reason,
            "qualified_via": q.qualified_via.value if q.qualified_via is not None else None,
            "appointed_by": q.appointed_by,
            "appoint_reason": q.appoint_reason,
        },
    )
    for order in q.orders.values():
        yield (
            ORDERS,
            {
                "user_id": q.user_id,
                "order_id": order.order_id,
                "attempt": order.attempt,
                "paid_at": order.paid_at,
                "paid_fen": order.paid_fen,
                "counted_at": order.counted_at,
                "uncounted_at": order.uncounted_at,
            },
        )
        for refund in order.refunds.values():
            yield (
                REFUNDS,
                {
                    "user_id": q.user_id,
                    "order_id": order.order_id,
                    "refund_id": refund.refund_id,
                    "amount_fen": refund.amount_fen,
                    "refunded_at": refund.refunded_at,
                },
            )


def _key(table: Table, values: Values) -> Key:
    return tuple(values[at] for at in KEY_AT[table])


def _named(table: Table, values: Values) -> dict[str, Any]:
    return dict(zip(COLUMNS[table], values, strict=True))


def _by_key(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """An UPDATE's parameters: the key columns bind the WHERE clause, the others are SET."""
    keys = table.primary_key.columns
    return {f"key_{name}" if name in keys else name: value for name, value in row.items()}


def _update_by_key(table: Table) -> Update:
    return update(table).where(
        *(
            column == bindparam(f"key_{column.name}", type_=column.type)
            for column in table.primary_key
        )
    )


def _history_lengths(connection: Connection, user_ids: list[str]) -> dict[str, int]:
    users = list(dict.fromkeys(user_ids))
    lengths: dict[str, int] = {}
    for start in range(0, len(users), CHUNK):
        query = (
            select(HISTORY.c.user_id, func.count())
            .where(HISTORY.c.user_id.in_(users[start : start + CHUNK]))
            .group_by(HISTORY.c.user_id)
        )
        lengths.update({user_id: count for user_id, count in connection.execute(query)})
    return lengths


def load(session: Session, user_id: str, *, for_update: bool = True) -> Qualification | None:
    """The user's qualification (locked for a change: see `Qualifications.load`)."""
    return Qualifications(session, for_update=for_update).get(user_id)


def assessments_due(session: Session, now: datetime) -> list[str]:
    """Users still assessing whose window closed before `now`, earliest deadline first."""
    query = (
        select(QualificationRow.user_id)
        .where(QualificationRow.status == Status.ASSESSING.value)
        .where(col(QualificationRow.deadline) < now)
        .order_by(col(QualificationRow.deadline), col(QualificationRow.user_id))
    )
    return list(session.exec(query))


def history_length(session: Session, user_id: str) -> int:
    query = select(func.count()).select_from(HistoryRow).where(HistoryRow.user_id == user_id)
    return int(session.exec(query).one())


def history(session: Session, user_id: str) -> list[HistoryRow]:
    query = select(HistoryRow).where(HistoryRow.user_id == user_id).order_by(col(HistoryRow.seq))
    return list(session.exec(query))


def candidates(
    session: Session,
    *,
    status: Status | None,
    deadline_before: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[str], int]:
    """One page of users (and the total) by deadline, those without a deadline last."""
    where = []
    if status is not None:
        where.append(QUALIFICATIONS.c.status == status.value)
    if deadline_before is not None:
        where.append(QUALIFICATIONS.c.deadline < deadline_before)
    total = session.connection().execute(
        select(func.count()).select_from(QUALIFICATIONS).where(*where)
    )
    page = (
        select(QUALIFICATIONS.c.user_id)
        .where(*where)
        .order_by(
            QUALIFICATIONS.c.deadline.is_(None),
            QUALIFICATIONS.c.deadline,
            QUALIFICATIONS.c.applied_at,
            QUALIFICATIONS.c.user_id,
        )
        .offset(offset)
        .limit(limit)
    )
    return list(session.connection().execute(page).scalars()), int(total.scalar_one())
