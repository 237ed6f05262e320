"""`fxctl tail TOPIC`: decoded CloudEvents, filtered, as lines or JSON."""

from __future__ import annotations

from contextlib import aclosing
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from fx_common.envelope import rfc3339
from fxctl.context import Target, run, target
from fxctl.kafka_io import scan
from fxctl.output import console, emit_json, err_console, fail
from fxctl.parsing import parse_time
from fxctl.records import RecordFilter, Seen, seen, summary


def line(record: Seen) -> Text:
    """One record on one line: time, type, key, id, subject, data summary (or the error)."""
    text = Text()
    text.append(rfc3339(record.time), style="dim")
    text.append("  ")
    text.append(f"{record.type or '?':<36}", style="bold red" if record.error else "bold cyan")
    text.append(f" key={record.key}", style="yellow")
    text.append(f" id={record.id}")
    if record.subject:
        text.append(f" subject={record.subject}")
    text.append(f" [{record.partition}@{record.offset}]", style="dim")
    if record.error:
        text.append(f"  UNDECODABLE {record.error}", style="red")
    else:
        text.append("  " + summary(record.data), style="green")
    return text


async def _tail(
    where: Target,
    topic: str,
    selected: RecordFilter,
    *,
    from_beginning: bool,
    follow: bool,
    limit: int | None,
    as_json: bool,
    out: Console,
) -> int:
    shown = 0
    async with aclosing(
        scan(where.bootstrap, [where.topic(topic)], from_beginning=from_beginning, follow=follow)
    ) as records:
        async for record in records:
            view = seen(record)
            if not selected.matches(view):
                continue
            if as_json:
                emit_json(view.as_json())
            else:
                out.print(line(view), soft_wrap=True)
            shown += 1
            if limit is not None and shown >= limit:
                break
    return shown


def tail(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Contract topic name, e.g. mall.orders.v1.")],
    types: Annotated[
        list[str] | None, typer.Option("--type", "-t", help="ce_type or glob (repeatable).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only this Kafka key.")] = None,
    since: Annotated[str | None, typer.Option(help="Event time ≥ this (RFC 3339).")] = None,
    until: Annotated[str | None, typer.Option(help="Event time < this (RFC 3339).")] = None,
    from_beginning: Annotated[
        bool, typer.Option("--from-beginning", "-b", help="Start at offset 0 (default: the end).")
    ] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep waiting for new records.")
    ] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after N records.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Show the decoded CloudEvents of a topic (undecodable records are shown with the error)."""
    where = target(ctx)
    try:
        selected = RecordFilter(
            types=tuple(types or ()),
            key=key,
            since=parse_time(since) if since else None,
            until=parse_time(until) if until else None,
        )
    except ValueError as exc:
        fail(str(exc))
    if not from_beginning and not follow:
        err_console().print(
            "nothing to show from the end without --follow; add --from-beginning or --follow",
            style="dim",
        )
    out = console()
    try:
        shown = run(
            where,
            _tail(
                where,
                topic,
                selected,
                from_beginning=from_beginning,
                follow=follow,
                limit=limit,
                as_json=as_json,
                out=out,
            ),
        )
    except KeyboardInterrupt:
        return
    if not as_json:
        err_console().print(f"{shown} record(s)", style="dim")
