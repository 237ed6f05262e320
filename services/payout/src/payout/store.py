"""Payout tables and the queries the service needs. Nothing here commits: the unit of work
(a consumed batch or an HTTP command) owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy import BigInteger, DateTime, UniqueConstraint, func
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Field, Session, SQLModel, col, select

from fx_common.processing import Keys, UnitOfWork
from fx_common.repository import rows_in, table_of
from payout.domain import EntryKind, LedgerEntry, Status, Withdrawal
from payout.reconciliation import LedgerLine, WithdrawalFacts


class Account(SQLModel, table=True):
    """One row per distributor: the lock every balance-changing transaction takes first."""

    __tablename__ = "po_account"
    distributor_id: str = Field(primary_key=True, max_length=128)
    opened_at: datetime = Field(sa_type=DateTime(timezone=True))
    # Bumped on every lock so taking the lock is a real write: on SQLite that write is what
    # makes the transaction the only writer until it commits.
    lock_version: int = Field(default=0, sa_type=BigInteger)


class LedgerEntryRow(SQLModel, table=True):
    """An append-only ledger line; see `payout.domain` for what each kind and sign means."""

    __tablename__ = "po_ledger_entry"
    # A withdrawal is held once and its hold settled once: the store enforces it too.
    __table_args__ = (UniqueConstraint("withdrawal_id", "kind"),)
    id: int | None = Field(default=None, primary_key=True)
    distributor_id: str = Field(index=True, max_length=128)
    kind: str = Field(max_length=16)
    amount_fen: int = Field(sa_type=BigInteger)
    commission_id: str | None = Field(default=None, index=True, max_length=128)
    withdrawal_id: str | None = Field(default=None, max_length=128)
    source_event_id: str = Field(unique=True, max_length=128)
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True))


class WithdrawalRow(SQLModel, table=True):
    """A withdrawal's current state, with the time it reached each state (history kept)."""

    __tablename__ = "po_withdrawal"
    __table_args__ = (UniqueConstraint("distributor_id", "idempotency_key"),)
    withdrawal_id: str = Field(primary_key=True, max_length=128)
    distributor_id: str = Field(index=True, max_length=128)
    idempotency_key: str = Field(max_length=128)
    request_fingerprint: str = Field(max_length=64)
    amount_fen: int = Field(sa_type=BigInteger)
    fee_fen: int = Field(sa_type=BigInteger)
    method: str = Field(max_length=16)
    account: str = Field(max_length=256)
    status: str = Field(index=True, max_length=16)
    reason: str | None = Field(default=None, max_length=1000)
    transfer_ref: str | None = Field(default=None, max_length=128)
    requested_at: datetime = Field(sa_type=DateTime(timezone=True))
    approved_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    rejected_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    paid_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    failed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class WithdrawalStepRow(SQLModel, table=True):
    """The audit of withdrawals, append-only: each state a withdrawal entered, when, and who
    made the change (`actor`: the token `sub`; None when the service did it itself)."""

    __tablename__ = "po_withdrawal_step"
    id: int | None = Field(default=None, primary_key=True)
    withdrawal_id: str = Field(index=True, max_length=128)
    distributor_id: str = Field(index=True, max_length=128)
    status: str = Field(max_length=16)
    at: datetime = Field(sa_type=DateTime(timezone=True))
    actor: str | None = Field(default=None, max_length=128)
    amount_fen: int = Field(sa_type=BigInteger)
    reason: str | None = Field(default=None, max_length=1000)
    transfer_ref: str | None = Field(default=None, max_length=128)


TABLES: tuple[type[SQLModel], ...] = (Account, LedgerEntryRow, WithdrawalRow, WithdrawalStepRow)


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored here is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# --- the account lock ----------------------------------------------------------------------


def lock_account(session: Session, distributor_id: str, at: datetime) -> None:
    """Serialise every balance change of one distributor until the transaction ends.

    Must be the transaction's first statement: on SQLite the write takes the database write
    lock (the driver begins the transaction at the first write), so no other writer can
    move the balance between our read and our hold; on Postgres the upsert and the
    `FOR UPDATE` hold the account row.
    """
    dialect = session.get_bind().dialect.name
    insert = sqlite_insert if dialect == "sqlite" else postgres_insert
    upsert = (
        insert(Account)
        .values(distributor_id=distributor_id, opened_at=at, lock_version=1)
        .on_conflict_do_update(
            index_elements=["distributor_id"],
            set_={"lock_version": Account.lock_version + 1},
        )
    )
    session.execute(upsert)
    session.exec(
        select(Account).where(Account.distributor_id == distributor_id).with_for_update()
    ).one()


# --- ledger --------------------------------------------------------------------------------


def append_entry(
    session: Session,
    distributor_id: str,
    entry: LedgerEntry,
    *,
    source_event_id: str,
    occurred_at: datetime,
    commission_id: str | None = None,
    withdrawal_id: str | None = None,
) -> None:
    session.add(
        LedgerEntryRow(
            distributor_id=distributor_id,
            kind=entry.kind.value,
            amount_fen=entry.amount_fen,
            commission_id=commission_id,
            withdrawal_id=withdrawal_id,
            source_event_id=source_event_id,
            occurred_at=occurred_at,
        )
    )
    session.flush()


def ledger_totals(session: Session, distributor_id: str) -> list[LedgerEntry]:
    """The ledger summed per kind: balances are linear, so this is the whole ledger's worth."""
    rows = session.exec(
        select(LedgerEntryRow.kind, func.sum(LedgerEntryRow.amount_fen))
        .where(LedgerEntryRow.distributor_id == distributor_id)
        .group_by(LedgerEntryRow.kind)
    )
    return [LedgerEntry(EntryKind(kind), int(total)) for kind, total in rows]


class Repository:
    """The consume path's view of the ledger: which of a batch's settled commissions were
    credited already (one query per 500), and the batch's new ledger lines (executemany)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.credited: dict[str, str] = {}
        """Commission id → the event id that credited it (loaded, then this batch's)."""

    def load(self, keys: Keys) -> None:
        """`keys["settled"]`: the commission ids the batch settles."""
        table = table_of(LedgerEntryRow)
        query = sa.select(table.c.commission_id, table.c.source_event_id).where(
            table.c.kind == EntryKind.CREDIT.value
        )
        rows = rows_in(
            self.uow.session.connection(), query, table.c.commission_id, keys.get("settled", ())
        )
        self.credited.update({c: e for c, e in rows if c is not None})

    def stage_entry(
        self,
        distributor_id: str,
        entry: LedgerEntry,
        *,
        source_event_id: str,
        occurred_at: datetime,
        commission_id: str,
    ) -> None:
        """A consumed ledger line, inserted with the rest of the batch's lines."""
        self.uow.stage(
            LedgerEntryRow,
            distributor_id=distributor_id,
            kind=entry.kind.value,
            amount_fen=entry.amount_fen,
            commission_id=commission_id,
            withdrawal_id=None,
            source_event_id=source_event_id,
            occurred_at=occurred_at,
        )


# --- withdrawals ---------------------------------------------------------------------------


def to_domain(row: WithdrawalRow) -> Withdrawal:
    return Withdrawal(
        withdrawal_id=row.withdrawal_id,
        distributor_id=row.distributor_id,
        amount_fen=row.amount_fen,
        fee_fen=row.fee_fen,
        method=row.method,  # type: ignore[arg-type]
        account=row.account,
        status=Status(row.status),
        reason=row.reason,
        transfer_ref=row.transfer_ref,
    )


def add_withdrawal(
    session: Session, withdrawal: Withdrawal, *, key: str, fingerprint: str, at: datetime
) -> WithdrawalRow:
    row = WithdrawalRow(
        withdrawal_id=withdrawal.withdrawal_id,
        distributor_id=withdrawal.distributor_id,
        idempotency_key=key,
        request_fingerprint=fingerprint,
        amount_fen=withdrawal.amount_fen,
        fee_fen=withdrawal.fee_fen,
        method=withdrawal.method,
        account=withdrawal.account,
        status=withdrawal.status.value,
        requested_at=at,
    )
    session.add(row)
    session.flush()
    return row


_STATE_TIME = {
    Status.APPROVED: "approved_at",
    Status.REJECTED: "rejected_at",
    Status.PAID: "paid_at",
    Status.FAILED: "failed_at",
}


def record_state(
    session: Session,
    row: WithdrawalRow,
    withdrawal: Withdrawal,
    at: datetime,
    actor: str | None = None,
) -> None:
    """The withdrawal's new state, and its step in the audit (who, when, why)."""
    session.add(
        WithdrawalStepRow(
            withdrawal_id=withdrawal.withdrawal_id,
            distributor_id=withdrawal.distributor_id,
            status=withdrawal.status.value,
            at=at,
            actor=actor,
            amount_fen=withdrawal.amount_fen,
            reason=withdrawal.reason,
            transfer_ref=withdrawal.transfer_ref,
        )
    )
    row.status = withdrawal.status.value
    row.reason = withdrawal.reason
    row.transfer_ref = withdrawal.transfer_ref
    if withdrawal.status in _STATE_TIME:
        setattr(row, _STATE_TIME[withdrawal.status], at)
    session.add(row)
    session.flush()


def get_withdrawal(session: Session, withdrawal_id: str) -> WithdrawalRow | None:
    return session.get(WithdrawalRow, withdrawal_id)


def withdrawal_by_key(session: Session, distributor_id: str, key: str) -> WithdrawalRow | None:
    query = select(WithdrawalRow).where(
        WithdrawalRow.distributor_id == distributor_id, WithdrawalRow.idempotency_key == key
    )
    return session.exec(query).first()


OPEN_STATUSES = (Status.REQUESTED, Status.APPROVED)


def open_withdrawals(session: Session, distributor_id: str) -> Sequence[WithdrawalRow]:
    """Requested or approved, not yet paid, rejected or failed: oldest first."""
    query = (
        select(WithdrawalRow)
        .where(
            WithdrawalRow.distributor_id == distributor_id,
            col(WithdrawalRow.status).in_([s.value for s in OPEN_STATUSES]),
        )
        .order_by(col(WithdrawalRow.requested_at), col(WithdrawalRow.withdrawal_id))
    )
    return list(session.exec(query))


def list_withdrawals(
    session: Session,
    *,
    distributor_id: str | None = None,
    status: Status | None = None,
    limit: int = 100,
) -> Sequence[WithdrawalRow]:
    """Newest first."""
    query = select(WithdrawalRow)
    if distributor_id is not None:
        query = query.where(WithdrawalRow.distributor_id == distributor_id)
    if status is not None:
        query = query.where(WithdrawalRow.status == status.value)
    query = query.order_by(
        col(WithdrawalRow.requested_at).desc(), col(WithdrawalRow.withdrawal_id)
    ).limit(limit)
    return list(session.exec(query))


def steps_of(session: Session, withdrawal_ids: Sequence[str]) -> dict[str, list[WithdrawalStepRow]]:
    """Each withdrawal's steps, oldest first (one query per 500 withdrawals)."""
    found: dict[str, list[WithdrawalStepRow]] = {w: [] for w in withdrawal_ids}
    ids = list(found)
    for start in range(0, len(ids), 500):
        query = (
            select(WithdrawalStepRow)
            .where(col(WithdrawalStepRow.withdrawal_id).in_(ids[start : start + 500]))
            .order_by(col(WithdrawalStepRow.id))
        )
        for step in session.exec(query):
            found[step.withdrawal_id].append(step)
    return found


def audit_page(
    session: Session, *, distributor_id: str | None, before_id: int | None, limit: int
) -> Sequence[WithdrawalStepRow]:
    """The audit, newest first; `before_id` continues a page."""
    query = select(WithdrawalStepRow)
    if distributor_id is not None:
        query = query.where(WithdrawalStepRow.distributor_id == distributor_id)
    if before_id is not None:
        query = query.where(col(WithdrawalStepRow.id) < before_id)
    return list(session.exec(query.order_by(col(WithdrawalStepRow.id).desc()).limit(limit)))


def ledger_page(
    session: Session, distributor_id: str, *, before_id: int | None, limit: int
) -> Sequence[LedgerEntryRow]:
    """One distributor's ledger entries, newest first; `before_id` continues a page."""
    query = select(LedgerEntryRow).where(LedgerEntryRow.distributor_id == distributor_id)
    if before_id is not None:
        query = query.where(col(LedgerEntryRow.id) < before_id)
    return list(session.exec(query.order_by(col(LedgerEntryRow.id).desc()).limit(limit)))


# --- reconciliation ------------------------------------------------------------------------


def ledger_lines(session: Session) -> list[LedgerLine]:
    """The whole ledger in booking order, as plain rows."""
    query = sa_select(
        col(LedgerEntryRow.id),
        col(LedgerEntryRow.distributor_id),
        col(LedgerEntryRow.kind),
        col(LedgerEntryRow.amount_fen),
        col(LedgerEntryRow.source_event_id),
        col(LedgerEntryRow.commission_id),
        col(LedgerEntryRow.withdrawal_id),
    ).order_by(col(LedgerEntryRow.id))
    return [
        LedgerLine(
            entry_id=row.id,
            distributor_id=row.distributor_id,
            kind=row.kind,
            amount_fen=row.amount_fen,
            source_event_id=row.source_event_id,
            commission_id=row.commission_id,
            withdrawal_id=row.withdrawal_id,
        )
        for row in session.connection().execute(query)
    ]


def withdrawal_facts(session: Session) -> list[WithdrawalFacts]:
    query = select(
        WithdrawalRow.withdrawal_id,
        WithdrawalRow.distributor_id,
        WithdrawalRow.amount_fen,
        WithdrawalRow.status,
    ).order_by(col(WithdrawalRow.withdrawal_id))
    return [WithdrawalFacts(*row) for row in session.exec(query)]
