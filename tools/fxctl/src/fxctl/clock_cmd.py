"""`fxctl clock show|set|advance`: the simulated clock on fx.clock.v1 (never moves back)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import typer

from fx_common.contracts.clock import CLOCK_SET, ClockSet
from fx_common.contracts.topics import CLOCK
from fx_common.envelope import make_event, rfc3339
from fx_common.replay import read_topics
from fxctl import service_clocks
from fxctl.context import Target, run, target
from fxctl.kafka_io import encoded, prepare_topics, producer
from fxctl.output import console, fail
from fxctl.parsing import parse_duration, parse_time
from fxctl.records import seen

app = typer.Typer(help="The simulated clock (FX_CLOCK=simulated).", no_args_is_help=True)

SOURCE = "/fxctl"


async def current(where: Target) -> datetime | None:
    """The latest simulated now on the clock topic (the furthest move), or None."""
    partitions = await read_topics(where.bootstrap, [where.topic(CLOCK)])
    moves = [
        view.data["now"]
        for records in partitions.values()
        for view in map(seen, records)
        if view.type == CLOCK_SET and view.error is None
    ]
    return max((parse_time(now) for now in moves), default=None)


@dataclass(frozen=True)
class Move:
    before: datetime | None
    to: datetime
    event_id: str | None = None  # None: nothing was published
    refused: bool = False


async def _move(where: Target, to: datetime) -> Move:
    """Publish `fx.clock.set` to `to`, unless that would move the clock back."""
    before = await current(where)
    if before is not None and to < before:
        return Move(before, to, refused=True)
    if before == to:
        return Move(before, to)
    await prepare_topics(where)
    event = make_event(CLOCK_SET, ClockSet(now=to), time=to, source=SOURCE)
    key, value, headers = encoded(event)
    async with producer(where.bootstrap) as kafka:
        await kafka.send_and_wait(where.topic(CLOCK), value=value, key=key, headers=headers)
    return Move(before, to, event.id)


def _report(move: Move) -> None:
    if move.refused:
        assert move.before is not None
        fail(
            f"the simulated clock never moves back: it is {rfc3339(move.before)}, "
            f"refusing {rfc3339(move.to)}",
            code=2,
        )
    out = console()
    if move.event_id is None:
        out.print(f"simulated now is already {rfc3339(move.to)}; nothing published")
        return
    was = rfc3339(move.before) if move.before is not None else "not set"
    out.print(f"simulated now: {rfc3339(move.to)} (was {was}); fx.clock.set id={move.event_id}")


ServiceUrls = Annotated[
    list[str] | None,
    typer.Option(
        "--service", help="SERVICE=http://host:port of a running service (default 8101-8104)."
    ),
]
Wait = Annotated[
    float,
    typer.Option(
        help="Seconds to wait until every service's GET /v1/clock reads the new now "
        "(exit 1 naming those that do not); 0 returns once the broker has the move.",
    ),
]


@app.command()
def show(
    ctx: typer.Context,
    service: ServiceUrls = None,
    services: Annotated[
        bool, typer.Option(help="Also read each running service's GET /v1/clock.")
    ] = False,
) -> None:
    """The simulated now (the latest fx.clock.set), or `not set`; then what each running
    service has applied."""
    where = target(ctx)
    now = run(where, current(where))
    out = console()
    out.print(f"simulated now: {rfc3339(now)}" if now is not None else "not set")
    if services:
        for reading in service_clocks.read_all(service_clocks.endpoints(service)):
            out.print("  " + service_clocks.describe(reading))


def _wait_for_services(to: datetime, service: list[str] | None, wait: float) -> None:
    urls = service_clocks.endpoints(service)
    readings = service_clocks.wait_until(urls, to, wait)
    behind = service_clocks.lagging(readings, to)
    if behind:
        fail(
            f"after {wait:g}s, not every service reads {rfc3339(to)}:\n"
            + "\n".join("  " + service_clocks.describe(r) for r in behind),
            code=1,
        )
    console().print(f"all {len(readings)} services read {rfc3339(to)} or later")


@app.command("set")
def set_(
    ctx: typer.Context,
    moment: Annotated[str, typer.Argument(metavar="RFC3339", help="e.g. 2026-03-15T09:00:00Z")],
    wait: Wait = 0.0,
    service: ServiceUrls = None,
) -> None:
    """Move the simulated clock to a time (exit 2 if that is earlier than now)."""
    where = target(ctx)
    try:
        to = parse_time(moment)
    except ValueError as exc:
        fail(str(exc))
    _report(run(where, _move(where, to)))
    if wait > 0:
        _wait_for_services(to, service, wait)


@app.command()
def advance(
    ctx: typer.Context,
    duration: Annotated[str, typer.Argument(help="7d, 12h, 30m, 1d12h or ISO 8601 (P7D).")],
    wait: Wait = 0.0,
    service: ServiceUrls = None,
) -> None:
    """Move the simulated clock forward by a duration (it must have been set before)."""
    where = target(ctx)
    try:
        step = parse_duration(duration)
    except ValueError as exc:
        fail(str(exc))
    now = run(where, current(where))
    if now is None:
        fail("the simulated clock is not set yet: use `fxctl clock set RFC3339` first")
    to = now + step
    _report(run(where, _move(where, to)))
    if wait > 0:
        _wait_for_services(to, service, wait)
