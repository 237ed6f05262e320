"""bulk.insert_rows stores exactly what SQLAlchemy's executemany stores."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

from fx_common import bulk, db


def _tables(metadata: sa.MetaData, name: str) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("at", db.UtcDateTime(), nullable=False),
        sa.Column("plain_at", sa.DateTime, nullable=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("refunded_fen", sa.BigInteger, default=0, nullable=False),
        sa.Column("note", sa.String(16), nullable=True),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("stamped", UTCDateTime(), nullable=True),  # SQLModel's, the plumbing's type
    )


def _rows() -> list[dict[str, object]]:
    start = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    rows: list[dict[str, object]] = [
        {
            "key": f"k-{n}",
            "at": start + timedelta(seconds=n),
            "plain_at": None if n % 2 else datetime(2026, 1, 1, 0, 0, n),
            "amount_fen": 10**12 + n,
            "note": None if n % 3 else "note",
            "payload": bytes([n, 0, 255]),
            "stamped": None if n == 3 else start - timedelta(days=n, microseconds=n),
        }
        for n in range(7)
    ]
    edges: list[dict[str, object]] = [
        # Other offsets, a whole second, an early year, a date in a plain DateTime column.
        {
            "key": "edge-1",
            "at": datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8))),
            "plain_at": datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5))),
            "amount_fen": 0,
            "note": None,
            "payload": None,
            "stamped": datetime(2026, 1, 1, 23, 59, tzinfo=timezone(timedelta(hours=9))),
        },
        {
            "key": "edge-2",
            "at": datetime(1, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
            "plain_at": date(2026, 2, 28),
            "amount_fen": -1,
            "note": "",
            "payload": b"",
            "stamped": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        },
    ]
    return rows + edges


def test_insert_rows_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    metadata = sa.MetaData()
    ours, theirs = _tables(metadata, "ours"), _tables(metadata, "theirs")
    metadata.create_all(engine)
    with engine.begin() as connection:
        bulk.insert_rows(connection, ours, _rows())
        connection.execute(sa.insert(theirs), _rows())
        bulk.insert_rows(connection, ours, [])
    with engine.connect() as connection:
        # The raw stored values (text of datetimes included), then the typed ones.
        raw = [
            connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id").all()
            for name in ("ours", "theirs")
        ]
        typed = [connection.execute(sa.select(t).order_by(t.c.id)).all() for t in (ours, theirs)]
    assert raw[0] == raw[1]
    assert len(raw[0]) == 9
    assert typed[0] == typed[1]
    assert typed[0][0].refunded_fen == 0  # the column's default, left out of the rows
    assert typed[0][1].at == datetime(2026, 3, 1, 8, 30, 16, 123456, tzinfo=UTC)


def test_insert_rows_keeps_sqlalchemy_for_callable_defaults(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    metadata = sa.MetaData()
    table = sa.Table(
        "t",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("label", sa.String(8), default=lambda: "made"),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        bulk.insert_rows(connection, table, [{"id": 1}, {"id": 2}])
    with engine.connect() as connection:
        assert connection.execute(sa.select(table.c.label)).scalars().all() == ["made", "made"]


def test_update_rows_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'bulk.db'}")
    metadata = sa.MetaData()
    ours, theirs = _tables(metadata, "ours"), _tables(metadata, "theirs")
    metadata.create_all(engine)
    later = datetime(2026, 4, 1, 10, 0, 0, 5, tzinfo=timezone(timedelta(hours=2)))
    changes = [
        {"at": later + timedelta(days=n), "note": None if n % 2 else f"n{n}", bulk.KEY: n + 1}
        for n in range(0, 9, 2)
    ]
    with engine.begin() as connection:
        for table in (ours, theirs):
            connection.execute(sa.insert(table), _rows())
        bulk.update_rows(connection, ours, changes)
        by_key = sa.update(theirs).where(theirs.c.id == sa.bindparam(bulk.KEY))
        connection.execute(by_key, changes)
        bulk.update_rows(connection, ours, [])
    with engine.connect() as connection:
        raw = [
            connection.exec_driver_sql(f"SELECT * FROM {name} ORDER BY id").all()
            for name in ("ours", "theirs")
        ]
        changed = connection.execute(sa.select(ours.c.at).where(ours.c.id == 3)).scalar_one()
    assert raw[0] == raw[1]
    assert changed == (later + timedelta(days=2)).astimezone(UTC)
