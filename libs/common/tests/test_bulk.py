"""bulk.insert_rows stores exactly what SQLAlchemy's executemany stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

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
    )


def _rows() -> list[dict[str, object]]:
    start = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)
    return [
        {
            "key": f"k-{n}",
            "at": start + timedelta(seconds=n),
            "plain_at": None if n % 2 else datetime(2026, 1, 1, 0, 0, n),
            "amount_fen": 10**12 + n,
            "note": None if n % 3 else "note",
            "payload": bytes([n, 0, 255]),
        }
        for n in range(7)
    ]


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
    assert len(raw[0]) == 7
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
