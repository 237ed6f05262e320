"""`fxctl publish TOPIC --type T`: inject one contract-valid event (upstream or clock)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fx_common.contracts.registry import EVENT_TOPIC, TOPIC_EVENT_TYPES
from fx_common.envelope import Event, make_event
from fxctl.context import Target, run, target
from fxctl.kafka_io import encoded, prepare_topics, producer
from fxctl.output import console, err_console, fail
from fxctl.parsing import parse_time

SOURCE = "/fxctl"


def violations(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or '<data>'}: {e['msg']}" for e in exc.errors()
    )


def build(
    topic: str,
    ce_type: str,
    data: Any,
    *,
    time: datetime,
    event_id: str | None = None,
    source: str = SOURCE,
    subject: str | None = None,
) -> Event:
    """The event, checked against the contract; ValueError says what is wrong."""
    expected = EVENT_TOPIC.get(ce_type)
    if expected is None:
        known = ", ".join(TOPIC_EVENT_TYPES.get(topic, ())) or "none (unknown topic)"
        raise ValueError(f"unknown event type {ce_type!r}; types of {topic}: {known}")
    if expected != topic:
        raise ValueError(f"{ce_type} belongs on {expected}, not {topic}")
    if not isinstance(data, dict):
        raise ValueError("data must be a JSON object")
    try:
        return make_event(
            ce_type, data, time=time, source=source, event_id=event_id, subject=subject
        )
    except ValidationError as exc:
        raise ValueError(f"contract violation for {ce_type}: {violations(exc)}") from exc


def read_data(data: str | None, file: Path | None) -> Any:
    if data is not None and file is not None:
        raise ValueError("give --data or --file, not both")
    if data is not None:
        text = data
    elif file is not None:
        text = (sys.stdin if str(file) == "-" else file.open(encoding="utf-8")).read()
    else:
        text = sys.stdin.read()
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"data is not JSON: {exc}") from exc


async def send(where: Target, topic: str, event: Event, *, structured: bool) -> tuple[int, int]:
    await prepare_topics(where)
    key, value, headers = encoded(event, structured=structured)
    async with producer(where.bootstrap) as kafka:
        meta = await kafka.send_and_wait(where.topic(topic), value=value, key=key, headers=headers)
    return meta.partition, meta.offset


def publish(
    ctx: typer.Context,
    topic: Annotated[str, typer.Argument(help="Contract topic, e.g. mall.orders.v1.")],
    ce_type: Annotated[str, typer.Option("--type", "-t", help="ce_type, e.g. mall.order.paid.")],
    data: Annotated[str | None, typer.Option(help="The data object as JSON.")] = None,
    file: Annotated[
        Path | None, typer.Option(help="Read the data object from a file (- for stdin).")
    ] = None,
    time: Annotated[str | None, typer.Option(help="ce_time, RFC 3339 (default: now).")] = None,
    event_id: Annotated[str | None, typer.Option("--id", help="ce_id (default: a UUID).")] = None,
    source: Annotated[str, typer.Option(help="ce_source.")] = SOURCE,
    subject: Annotated[str | None, typer.Option(help="ce_subject.")] = None,
    structured: Annotated[
        bool, typer.Option(help="Send in CloudEvents structured mode instead of binary.")
    ] = False,
) -> None:
    """Publish one event from JSON (stdin when neither --data nor --file); prints its id.

    The data is validated against the contract of its type and keyed as the topic requires.
    """
    where = target(ctx)
    try:
        moment = parse_time(time) if time else datetime.now(UTC)
        event = build(
            where.bare(topic),
            ce_type,
            read_data(data, file),
            time=moment,
            event_id=event_id,
            source=source,
            subject=subject,
        )
    except (ValueError, OSError) as exc:
        fail(str(exc))
    partition, offset = run(where, send(where, where.bare(topic), event, structured=structured))
    console().print(event.id)
    err_console().print(
        f"published {event.type} to {where.topic(where.bare(topic))} {partition}@{offset}",
        style="dim",
    )
