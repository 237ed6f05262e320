"""`fxctl trace ID`: every event about an order or a user, across all topics, in event time."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from fx_common.contracts import topics
from fx_common.envelope import rfc3339
from fx_common.replay import read_topics
from fx_common.runtime import all_topics
from fxctl.context import Target, run, target
from fxctl.output import console, emit_json
from fxctl.records import Seen, mentions, seen, summary

# Upstream first, then each topic after the ones it is derived from: events at the same
# instant (an order paid and its attribution) are listed cause before effect.
FLOW = (
    topics.MALL_SHARES, topics.MALL_ORDERS, topics.CLOCK, topics.BINDINGS, topics.ATTRIBUTIONS,
    topics.QUALIFICATION, topics.COMMISSIONS, topics.PAYOUTS,
)  # fmt: skip


def flow_rank(topic: str) -> int:
    return next((n for n, name in enumerate(FLOW) if topic.endswith(name)), len(FLOW))


def journey(records: Iterable[Seen], wanted: str) -> list[Seen]:
    """The records whose data (or key) names `wanted`, in event-time order."""
    about = [r for r in records if mentions(r.data, wanted) or r.key == wanted]
    return sorted(about, key=lambda r: (r.time, flow_rank(r.topic), r.topic, r.partition, r.offset))


async def _collect(where: Target) -> list[Seen]:
    partitions = await read_topics(where.bootstrap, [where.topic(t) for t in all_topics()])
    return [seen(record) for records in partitions.values() for record in records]


def trace(
    ctx: typer.Context,
    wanted: Annotated[str, typer.Argument(metavar="ID", help="An order, user, commission… id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every event on the fx.* and mall.* topics (DLQs included) that names ID, in time order."""
    where = target(ctx)
    found = journey(run(where, _collect(where)), wanted)
    if as_json:
        for record in found:
            emit_json(record.as_json())
        return
    out = console()
    if not found:
        out.print(f"no event mentions {wanted!r}")
        return
    table = Table(title=f"{wanted}: {len(found)} event(s)")
    for column in ("time", "topic", "type", "key", "data"):
        table.add_column(column, overflow="fold")
    for record in found:
        data = Text(record.error, style="red") if record.error else Text(summary(record.data, 100))
        table.add_row(
            rfc3339(record.time),
            where.bare(record.topic),
            record.type or "?",
            Text(record.key or ""),
            data,
        )
    out.print(table)
