"""Bulk INSERT for the consume path: one executemany of plain tuples per table.

`connection.execute(insert(table), rows)` builds and type-processes a parameter dictionary per
row (SQLAlchemy's `construct_params`): on SQLite that costs more than the insert itself. Here
the statement is compiled once per (table, columns, dialect) and each row becomes a tuple
through the columns' own bind processors, so what is stored is exactly what SQLAlchemy would
store. Other dialects keep SQLAlchemy's path (psycopg batches inserts well on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

_NO_VALUE = object()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    columns: tuple[str, ...]
    """The row keys, in the order of the statement's parameters."""
    defaults: tuple[Any, ...]
    """The value of a column a row leaves out (its scalar default), else `_NO_VALUE`."""
    processors: tuple[Callable[[Any], Any] | None, ...]


_CACHE: dict[tuple[sa.Table, tuple[str, ...], str], _Compiled | None] = {}


def insert_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`connection.execute(sa.insert(table), rows)`, faster: rows share the first row's keys."""
    if not rows:
        return
    keys = tuple(rows[0])
    compiled = _compiled(connection.dialect, table, keys)
    if compiled is None:
        connection.execute(sa.insert(table), rows)
        return
    parameters = []
    for row in rows:
        values = []
        for name, default, process in zip(
            compiled.columns, compiled.defaults, compiled.processors, strict=True
        ):
            value = row[name] if default is _NO_VALUE else default
            values.append(process(value) if process is not None else value)
        parameters.append(tuple(values))
    connection.exec_driver_sql(compiled.sql, parameters)


def _compiled(dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...]) -> _Compiled | None:
    """The compiled INSERT, or None where SQLAlchemy's own path is kept."""
    cache_key = (table, keys, dialect.name)
    if cache_key not in _CACHE:
        _CACHE[cache_key] = _compile(dialect, table, keys)
    return _CACHE[cache_key]


def _compile(dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...]) -> _Compiled | None:
    if dialect.name != "sqlite" or not set(keys) <= set(table.c.keys()):
        return None
    compiled = sa.insert(table).compile(dialect=dialect, column_keys=list(keys))
    if not compiled.positional or compiled.positiontup is None:
        return None
    names = tuple(compiled.positiontup)
    defaults: list[Any] = []
    for name in names:
        if name not in table.c:
            return None
        column = table.c[name]
        if name in keys:
            defaults.append(_NO_VALUE)
        elif column.default is not None and column.default.is_scalar:
            defaults.append(column.default.arg)  # type: ignore[attr-defined]
        else:
            return None  # a callable or SQL default: SQLAlchemy evaluates it
    processors = tuple(
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    return _Compiled(str(compiled), names, tuple(defaults), processors)
