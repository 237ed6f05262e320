"""Bulk INSERT and UPDATE for the consume path: one executemany of plain tuples per table.

`connection.execute(insert(table), rows)` builds and type-processes a parameter dictionary per
row (SQLAlchemy's `construct_params`): on SQLite that costs more than the insert itself. Here
the statement is compiled once per (table, columns, dialect) and the rows become tuples column
by column through the columns' own bind processors (datetimes through an equivalent that
formats them in C), so what is stored is exactly what SQLAlchemy would store. Other dialects
keep SQLAlchemy's path (psycopg batches statements well on its own).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlmodel.sql.sqltypes import UTCDateTime as SqlModelUtcDateTime

from fx_common.db import UtcDateTime

_NO_VALUE = object()
KEY = "key_"
"""The parameter holding the primary key of a row to update (`update_rows`)."""

Processor = Callable[[Any], Any]
_FORMAT = getattr(SQLITE_DATETIME, "_storage_format", None)
"""SQLite's default datetime text, `YYYY-MM-DD HH:MM:SS.ffffff`: what `isoformat` gives."""


@dataclass(frozen=True)
class _Compiled:
    sql: str
    columns: tuple[str, ...]
    """The row keys, in the order of the statement's parameters."""
    defaults: tuple[Any, ...]
    """The value of a column a row leaves out (its scalar default), else `_NO_VALUE`."""
    processors: tuple[Processor | None, ...]


_CACHE: dict[tuple[str, sa.Table, tuple[str, ...], str], _Compiled | None] = {}


def insert_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`connection.execute(sa.insert(table), rows)`, faster: rows share the first row's keys."""
    if not rows:
        return
    keys = tuple(rows[0])
    compiled = _compiled("insert", connection.dialect, table, keys)
    if compiled is None:
        connection.execute(sa.insert(table), rows)
        return
    connection.exec_driver_sql(compiled.sql, _parameters(compiled, rows))


def update_rows(
    connection: sa.Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]
) -> None:
    """`UPDATE table SET <the rows' other keys> WHERE <primary key> = row["key_"]` for each
    row, in one executemany (rows share the first row's keys)."""
    if not rows:
        return
    keys = tuple(rows[0])
    compiled = _compiled("update", connection.dialect, table, keys)
    if compiled is None:
        connection.execute(_update_statement(table), rows)
        return
    connection.exec_driver_sql(compiled.sql, _parameters(compiled, rows))


def _parameters(compiled: _Compiled, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    columns: list[list[Any]] = []
    for name, default, process in zip(
        compiled.columns, compiled.defaults, compiled.processors, strict=True
    ):
        if default is not _NO_VALUE:
            value = process(default) if process is not None else default
            columns.append([value] * len(rows))
            continue
        values = [row[name] for row in rows]
        columns.append(list(map(process, values)) if process is not None else values)
    return list(zip(*columns, strict=True))


def _update_statement(table: sa.Table) -> sa.Update:
    [key] = table.primary_key.columns
    return sa.update(table).where(key == sa.bindparam(KEY))


def _compiled(
    kind: str, dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...]
) -> _Compiled | None:
    """The compiled statement, or None where SQLAlchemy's own path is kept."""
    cache_key = (kind, table, keys, dialect.name)
    if cache_key not in _CACHE:
        _CACHE[cache_key] = _compile(kind, dialect, table, keys)
    return _CACHE[cache_key]


def _compile(
    kind: str, dialect: sa.Dialect, table: sa.Table, keys: tuple[str, ...]
) -> _Compiled | None:
    columns = set(keys) - {KEY} if kind == "update" else set(keys)
    if dialect.name != "sqlite" or not columns <= set(table.c.keys()):
        return None
    if kind == "update":
        statement: sa.Insert | sa.Update = _update_statement(table)
    else:
        statement = sa.insert(table)
    compiled = statement.compile(dialect=dialect, column_keys=sorted(columns))
    if not compiled.positional or compiled.positiontup is None:
        return None
    names = tuple(compiled.positiontup)
    if len(set(names)) != len(names):
        return None
    defaults: list[Any] = []
    processors: list[Processor | None] = []
    for name in names:
        if name == KEY and kind == "update":
            [column] = table.primary_key.columns
        elif name in table.c:
            column = table.c[name]
        else:
            return None
        if name in keys:
            defaults.append(_NO_VALUE)
        elif kind == "update":
            return None  # an `onupdate` column: SQLAlchemy evaluates it
        elif column.default is not None and column.default.is_scalar:
            defaults.append(column.default.arg)  # type: ignore[attr-defined]
        else:
            return None  # a callable or SQL default: SQLAlchemy evaluates it
        processors.append(_processor(column.type, dialect))
    return _Compiled(str(compiled), names, tuple(defaults), tuple(processors))


def _processor(column_type: sa.types.TypeEngine[Any], dialect: sa.Dialect) -> Processor | None:
    """The column's bind processor; for datetimes on SQLite's default storage format, an
    equivalent that formats in C (`isoformat`) and falls back to it for anything else."""
    original = column_type.dialect_impl(dialect).bind_processor(dialect)
    if original is None:
        return None
    utc = isinstance(column_type, UtcDateTime | SqlModelUtcDateTime)
    impl = column_type.impl_instance if utc else column_type  # type: ignore[attr-defined]
    impl = impl.dialect_impl(dialect)
    if not isinstance(impl, SQLITE_DATETIME) or getattr(impl, "_storage_format", None) != _FORMAT:
        return original
    if utc:
        return _utc_datetime(original)
    if type(column_type) in (sa.DateTime, SQLITE_DATETIME):
        return _naive_datetime(original)
    return original


def _utc_datetime(original: Processor) -> Processor:
    """`UtcDateTime` (and SQLModel's `UTCDateTime`) on SQLite: the UTC fields, without the
    offset (a naive value still goes to the original, which refuses it)."""

    def process(value: Any) -> Any:
        if type(value) is datetime and (value.tzinfo is UTC or _zero_offset(value)):
            return value.isoformat(" ", "microseconds")[:26]
        return original(value)

    return process


def _naive_datetime(original: Processor) -> Processor:
    """`DateTime` on SQLite: the value's own fields (an offset is dropped, as SQLAlchemy does)."""

    def process(value: Any) -> Any:
        if type(value) is datetime:
            return value.isoformat(" ", "microseconds")[:26]
        return original(value)

    return process


def _zero_offset(value: datetime) -> bool:
    offset = value.utcoffset()
    return offset is not None and not offset
