"""`fxctl ignored`: the event types the services ignore, by topic, with counts.

The services count them in `fx_ignored_events_total{service,type}` and log the first of each
type; this reads the consumed topics from the beginning and applies the same rule
(`fx_common.contracts.registry.classify`), so it also answers for types seen before the last
restart. Types the services dead-letter instead (`unknown_type`, `wrong_topic`) are listed by
`fxctl dlq list SERVICE`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from fx_common.contracts import topics
from fx_common.contracts.registry import TypeVerdict, classify
from fx_common.envelope import rfc3339
from fx_common.replay import read_topics
from fxctl.context import Target, run, target
from fxctl.output import console, emit_json
from fxctl.records import Seen, seen

CONSUMED = (
    topics.MALL_SHARES, topics.MALL_ORDERS, topics.QUALIFICATION, topics.ATTRIBUTIONS,
    topics.COMMISSIONS, topics.CLOCK, topics.QUALIFICATION_COMMANDS,
)  # fmt: skip


@dataclass
class IgnoredType:
    topic: str
    type: str
    count: int
    first_time: datetime
    first_offset: str

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "type": self.type,
            "count": self.count,
            "first_time": rfc3339(self.first_time),
            "first_offset": self.first_offset,
        }


def ignored_types(records: Iterable[Seen], where: Target) -> list[IgnoredType]:
    """Per (topic, type): the records a consumer of `topic` ignores, in offset order."""
    found: dict[tuple[str, str], IgnoredType] = {}
    for record in sorted(records, key=lambda r: (r.topic, r.partition, r.offset)):
        topic = where.bare(record.topic)
        if record.type is None or classify(record.type, topic) is not TypeVerdict.IGNORE:
            continue
        entry = found.get((topic, record.type))
        if entry is None:
            at = f"{record.partition}@{record.offset}"
            found[(topic, record.type)] = IgnoredType(topic, record.type, 1, record.time, at)
        else:
            entry.count += 1
            if record.time < entry.first_time:
                entry.first_time = record.time
                entry.first_offset = f"{record.partition}@{record.offset}"
    return sorted(found.values(), key=lambda e: (e.topic, -e.count, e.type))


async def _collect(where: Target) -> list[Seen]:
    partitions = await read_topics(where.bootstrap, [where.topic(t) for t in CONSUMED])
    return [seen(record) for records in partitions.values() for record in records]


def ignored(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Event types the services ignore on the topics they consume (fx_ignored_events_total)."""
    where = target(ctx)
    found = ignored_types(run(where, _collect(where)), where)
    if as_json:
        for entry in found:
            emit_json(entry.as_json())
        return
    out = console()
    if not found:
        out.print("no ignored event types")
        return
    table = Table(title=f"{len(found)} ignored event type(s)")
    for column in ("topic", "type", "count", "first seen", "first at"):
        table.add_column(column, overflow="fold")
    for entry in found:
        table.add_row(
            entry.topic,
            entry.type,
            str(entry.count),
            rfc3339(entry.first_time),
            entry.first_offset,
        )
    out.print(table)
