"""fx_common.repository: the changed-row write-back and the chunked IN loading, on SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from fx_common.repository import ChangedRows, chunks, rows_in, table_of


class _Thing(SQLModel, table=True):
    __tablename__ = "test_repository_thing"
    key: str = Field(primary_key=True)
    name: str
    count: int


@pytest.fixture
def connection() -> Iterator[sa.Connection]:
    engine = sa.create_engine("sqlite://")
    table_of(_Thing).create(engine)
    statements: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def count(*args: Any) -> None:
        statements.append(args[2])

    with engine.begin() as conn:
        conn.info["statements"] = statements
        yield conn


def _rows(conn: sa.Connection) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in conn.execute(sa.select(table_of(_Thing)).order_by("key"))]


def test_chunks_are_sorted_and_bounded() -> None:
    assert list(chunks([5, 1, 4, 2, 3], size=2)) == [[1, 2], [3, 4], [5]]
    assert list(chunks([], size=2)) == []


def test_rows_in_reads_every_key_in_chunks(connection: sa.Connection) -> None:
    table = table_of(_Thing)
    connection.execute(
        sa.insert(table), [{"key": f"k{i:04}", "name": "n", "count": i} for i in range(1200)]
    )
    connection.info["statements"].clear()
    wanted = {f"k{i:04}" for i in range(0, 1200, 1)} | {"missing"}
    found = {row.key for row in rows_in(connection, sa.select(table), table.c.key, wanted)}
    assert found == wanted - {"missing"}
    assert len(connection.info["statements"]) == 3  # 1201 keys, 500 per statement


def test_changed_rows_insert_new_and_update_only_changed_columns(connection: sa.Connection) -> None:
    table = table_of(_Thing)
    connection.execute(sa.insert(table), [{"key": "a", "name": "x", "count": 1}])
    changes = ChangedRows(_Thing)
    changes.stored("a", {"key": "a", "name": "x", "count": 1})
    changes.put("a", {"key": "a", "name": "x", "count": 2})
    changes.put("b", {"key": "b", "name": "y", "count": 3})
    connection.info["statements"].clear()
    changes.write(connection)
    statements = connection.info["statements"]
    assert len(statements) == 2
    assert any("INSERT" in s for s in statements)
    [update] = [s for s in statements if s.startswith("UPDATE")]
    assert "count" in update and "name" not in update
    assert _rows(connection) == [("a", "x", 2), ("b", "y", 3)]


def test_changed_rows_unchanged_row_writes_nothing(connection: sa.Connection) -> None:
    changes = ChangedRows(_Thing)
    changes.stored("a", {"key": "a", "name": "x", "count": 1})
    changes.put("a", {"key": "a", "name": "x", "count": 1})
    connection.info["statements"].clear()
    changes.write(connection)
    assert connection.info["statements"] == []


def test_changed_rows_not_read_but_stored_updates_every_column(connection: sa.Connection) -> None:
    table = table_of(_Thing)
    connection.execute(sa.insert(table), [{"key": "a", "name": "x", "count": 1}])
    changes = ChangedRows(_Thing)
    changes.put("a", {"key": "a", "name": "z", "count": 9}, created=False)
    changes.write(connection)
    assert _rows(connection) == [("a", "z", 9)]
    # once written, the row counts as stored: putting it again unchanged writes nothing
    changes.put("a", {"key": "a", "name": "z", "count": 9})
    connection.info["statements"].clear()
    changes.write(connection)
    assert connection.info["statements"] == []
