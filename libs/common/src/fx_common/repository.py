"""The generic half of a service's repository on the consume path: loading rows for many keys
in a few statements, and writing back, once per unit of work, the rows a batch created or
changed. Each service's repository (its `repository.py`) keeps only its own queries and
domain objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import sqlalchemy as sa
from sqlmodel import SQLModel

from fx_common import bulk

# SQLite limits the bound parameters of one statement; `IN` lists stay below it.
CHUNK = 500

Row = dict[str, Any]
_Columns = tuple[Any, ...]


def table_of(model: type[SQLModel]) -> sa.Table:
    table: sa.Table = model.__table__  # type: ignore[attr-defined]
    return table


def chunks(keys: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """`keys` sorted, in lists of at most `size` (for `IN (...)`)."""
    ordered = sorted(keys)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def rows_in(
    connection: sa.Connection,
    query: sa.Select[*_Columns],
    column: sa.ColumnElement[Any],
    keys: Iterable[Any],
) -> Iterator[sa.Row[*_Columns]]:
    """The rows of `query` whose `column` is one of `keys`: one statement per `CHUNK` keys."""
    for chunk in chunks(keys):
        yield from connection.execute(query.where(column.in_(chunk)))


class ChangedRows:
    """Rows of one table that a unit of work created or changed, written back in one
    INSERT executemany and one UPDATE executemany per set of changed columns.

    `stored(key, row)` records a row as read from the store: a later `put` of that key
    writes only the columns that differ from it (none: no statement). A key put without a
    stored row is inserted, unless `put(..., created=False)` says the store has it (then
    every column is updated). Once written, a row counts as stored.
    """

    def __init__(self, model: type[SQLModel]) -> None:
        self.table = table_of(model)
        [self.key] = self.table.primary_key.columns
        self._stored: dict[Any, Row | None] = {}
        self._new: set[Any] = set()
        self._pending: dict[Any, Row] = {}

    def stored(self, key: Any, row: Row) -> None:
        self._stored[key] = row

    def put(self, key: Any, row: Row, *, created: bool | None = None) -> None:
        """Stage `row` (all its columns) for `key`."""
        if created is False and key not in self._stored and key not in self._new:
            self._stored[key] = None  # in the store, columns not read: update them all
        if key not in self._stored:
            self._new.add(key)
        self._pending[key] = row

    def write(self, connection: sa.Connection) -> None:
        created: list[Row] = []
        changed: dict[tuple[str, ...], list[Row]] = {}
        for key, row in self._pending.items():
            before = self._stored.get(key)
            if key in self._new:
                created.append(row)
            else:
                columns = tuple(
                    name for name, value in row.items() if before is None or before[name] != value
                )
                if columns:
                    changed.setdefault(columns, []).append(
                        {**{name: row[name] for name in columns}, bulk.KEY: key}
                    )
            self._stored[key] = row
        if created:
            bulk.insert_rows(connection, self.table, created)
        for rows in changed.values():
            bulk.update_rows(connection, self.table, rows)
        self._pending, self._new = {}, set()
