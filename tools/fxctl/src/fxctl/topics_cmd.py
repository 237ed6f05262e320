"""`fxctl topics`: partitions, end offsets and, per service group, committed offsets and lag."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated

import typer
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.table import Table

from fx_common.contracts.topics import SERVICES
from fx_common.runtime import all_topics
from fxctl.context import Target, run, target
from fxctl.kafka_io import beginning_offsets, end_offsets
from fxctl.output import console, emit_json


@dataclass
class GroupLag:
    group: str
    committed: int
    lag: int


@dataclass
class TopicState:
    topic: str
    exists: bool
    partitions: int = 0
    end: int = 0
    groups: list[GroupLag] = field(default_factory=list)


def lag_of(
    partitions: list[TopicPartition],
    ends: dict[TopicPartition, int],
    starts: dict[TopicPartition, int],
    committed: dict[TopicPartition, int],
) -> tuple[int, int]:
    """(committed sum, lag) of a group on a topic; an uncommitted partition lags from its start."""
    done = sum(committed.get(tp, 0) for tp in partitions)
    lag = sum(max(ends[tp] - committed.get(tp, starts.get(tp, 0)), 0) for tp in partitions)
    return done, lag


async def _committed(where: Target) -> dict[str, dict[TopicPartition, int]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=where.bootstrap)
    await admin.start()
    try:
        result = {}
        for service in SERVICES:
            group = where.group(service)
            offsets = await admin.list_consumer_group_offsets(group)
            result[group] = {tp: o.offset for tp, o in offsets.items() if o.offset >= 0}
        return result
    finally:
        await admin.close()


async def gather(where: Target) -> list[TopicState]:
    names = [where.topic(t) for t in all_topics()]
    ends = await end_offsets(where.bootstrap, names)
    starts = await beginning_offsets(where.bootstrap, names)
    committed = await _committed(where)
    states = []
    for name in names:
        partitions = sorted((tp for tp in ends if tp.topic == name), key=lambda tp: tp.partition)
        state = TopicState(name, exists=bool(partitions), partitions=len(partitions))
        state.end = sum(ends[tp] for tp in partitions)
        for group, offsets in committed.items():
            if any(tp.topic == name for tp in offsets):
                done, lag = lag_of(partitions, ends, starts, offsets)
                state.groups.append(GroupLag(group, done, lag))
        states.append(state)
    return states


def topics(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per topic.")] = False,
) -> None:
    """Every fenxiao topic of the namespace (DLQs included) with each service group's lag."""
    where = target(ctx)
    states = run(where, gather(where))
    if as_json:
        for state in states:
            emit_json(asdict(state))
        return
    table = Table(title=f"topics on {where.bootstrap} (namespace {where.namespace!r})")
    for column in ("topic", "partitions", "end offsets"):
        table.add_column(column, justify="left" if column == "topic" else "right")
    table.add_column("group")
    table.add_column("committed", justify="right")
    table.add_column("lag", justify="right")
    for state in states:
        if not state.exists:
            table.add_row(state.topic, "-", "-", "(topic missing)", "", "")
            continue
        groups: list[GroupLag | None] = [*state.groups] or [None]
        for n, lag in enumerate(groups):
            head = (state.topic, str(state.partitions), str(state.end)) if n == 0 else ("", "", "")
            if lag is None:
                table.add_row(*head, "-", "", "")
            else:
                style = "red" if lag.lag else "green"
                table.add_row(*head, lag.group, str(lag.committed), f"[{style}]{lag.lag}[/]")
    console().print(table)
