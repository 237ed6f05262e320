"""`fxctl replay SERVICE`: rebuild a service's store from offset 0 and compare with the live one."""

from __future__ import annotations

import importlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import text

from fx_common import db, heap, migrations
from fx_common.contracts.topics import CLOCK, SERVICES
from fx_common.replay import read_topics, replay
from fx_common.runtime import ServiceSpec
from fxctl.context import run, target
from fxctl.output import console, fail
from fxctl.parsing import parse_time

# What consumed records caused (events and dead letters). An HTTP command's own event
# (qualification's `fx.qualification.command_accepted`) is caused by no record: the replay reads
# it as an input and compares what it caused.
OUTBOX = (
    "SELECT ce_id, topic, key, value FROM fx_outbox"
    " WHERE ce_id IS NULL OR cause_id IN (SELECT ce_id FROM fx_inbox)"
)
SHOWN = 5

OutboxRow = tuple[str | None, str, str | None, bytes | None]


def load_spec(service: str) -> ServiceSpec:
    """The service's `SPEC` from `<package>.app` (its topics, handlers and tables)."""
    if service not in SERVICES:
        fail(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    assert isinstance(spec, ServiceSpec)
    return spec


def outbox(url: str) -> list[OutboxRow]:
    engine = db.make_engine(url)
    try:
        with engine.connect() as conn:
            return [(r[0], r[1], r[2], r[3]) for r in conn.execute(text(OUTBOX))]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Comparison:
    rows: int
    only_live: list[OutboxRow]
    only_replay: list[OutboxRow]

    @property
    def identical(self) -> bool:
        return not self.only_live and not self.only_replay


def compare(live: list[OutboxRow], rebuilt: list[OutboxRow]) -> Comparison:
    """Outboxes as multisets of (ce_id, topic, key, value): order and publish state ignored."""
    live_rows, rebuilt_rows = Counter(live), Counter(rebuilt)
    return Comparison(
        rows=len(live),
        only_live=sorted((live_rows - rebuilt_rows).elements(), key=_order),
        only_replay=sorted((rebuilt_rows - live_rows).elements(), key=_order),
    )


def _order(row: OutboxRow) -> tuple[str, str, str]:
    return (row[0] or "", row[1], row[2] or "")


def _describe(row: OutboxRow) -> str:
    value = (row[3] or b"").decode("utf-8", "replace")
    return f"ce_id={row[0]} topic={row[1]} key={row[2]} value={value[:120]}"


def seed(spec: ServiceSpec, live_url: str, url: str) -> None:
    """What the service declares a replay cannot read from topics (`spec.replay_seed`, e.g.
    commission's plan versions, which come over HTTP): copied from the live store first."""
    assert spec.replay_seed is not None and spec.migrations is not None
    live, fresh = db.make_engine(live_url), db.make_engine(url)
    try:
        migrations.upgrade(fresh, spec.migrations)
        spec.replay_seed(live, fresh)
    finally:
        live.dispose()
        fresh.dispose()


def _print_timing(out: Console, records: int, read: float, applied: float, cpu: float) -> None:
    """One line tools can parse: records/s of the whole replay (reading + applying), and per
    CPU second of this process (the figure that does not move with the machine's load)."""
    total = read + applied
    rate = records / total if total > 0 else 0.0
    per_cpu = records / cpu if cpu > 0 else 0.0
    out.print(
        f"replay took {total:.2f} s ({rate:.0f} records/s): reading {read:.2f} s, "
        f"applying {applied:.2f} s; {cpu:.2f} CPU s ({per_cpu:.0f} records per CPU second)",
        soft_wrap=True,
    )


def default_store(service: str) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"sqlite:///{Path('var/replay') / f'{service}-{stamp}.db'}"


def replay_command(
    ctx: typer.Context,
    service: Annotated[str, typer.Argument(help=f"One of {', '.join(SERVICES)}.")],
    store: Annotated[
        str | None,
        typer.Option(help="Fresh store URL (default: sqlite under var/replay/)."),
    ] = None,
    compare_with: Annotated[
        str | None,
        typer.Option("--compare", help="The live store's DATABASE_URL: compare the outboxes."),
    ] = None,
    simulated_clock: Annotated[
        bool, typer.Option(help="Also replay fx.clock.v1 (services ran with FX_CLOCK=simulated).")
    ] = False,
    clock_start: Annotated[
        str | None, typer.Option(help="FX_CLOCK_START of the live run (RFC 3339).")
    ] = None,
) -> None:
    """Rebuild SERVICE's store from offset 0 of its input topics into a fresh store.

    Nothing is published: the rebuilt outbox is kept to compare with the live one (exit 1 when
    they differ). Same inputs in event-time order ⇒ same state and same event ids.
    """
    where = target(ctx)
    spec = load_spec(service)
    url = store or default_store(service)
    if url.startswith("sqlite:///") and Path(url.removeprefix("sqlite:///")).exists():
        fail(f"{url} exists: a replay goes into a fresh store")
    try:
        start = parse_time(clock_start) if clock_start else spec.settings_cls().clock_start
    except ValueError as exc:
        fail(str(exc))
    topics = [where.topic(t) for t in [*spec.topics, *([CLOCK] if simulated_clock else [])]]
    out = console()
    started, cpu_started = time.perf_counter(), time.process_time()
    with out.status(f"reading {', '.join(topics)} up to their end offsets…"):
        partitions = run(where, read_topics(where.bootstrap, topics))
    read = time.perf_counter() - started
    total = sum(len(records) for records in partitions.values())
    if spec.replay_seed is not None and compare_with is not None:
        seed(spec, compare_with, url)
    heap.settle()  # the records read stay until the end: out of the collector's sight
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=out) as progress:
        task = progress.add_task(f"replaying {service}", total=total)
        result = replay(
            spec,
            url,
            partitions,
            namespace=where.namespace,
            clock_start=start,
            progress=lambda n: progress.advance(task, n),
        )
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    _print_timing(out, result.records, read, elapsed - read, cpu)
    out.print(
        f"replayed {result.records} record(s) into {url}: {result.applied} applied, "
        f"{result.duplicates} duplicate(s), {result.dead_lettered} dead-lettered, "
        f"{result.published} outbox row(s)",
        soft_wrap=True,
    )
    if compare_with is not None:
        _compare_outboxes(out, compare_with, url)


def _compare_outboxes(out: Console, live_url: str, replay_url: str) -> None:
    """Print whether the replayed outbox is the live one; exit 1 with the differences if not."""
    outcome = compare(outbox(live_url), outbox(replay_url))
    if outcome.identical:
        out.print(f"[green]identical[/]: {outcome.rows} outbox row(s) match the live store")
        return
    out.print(
        f"[red]differences[/]: {len(outcome.only_live)} row(s) only in the live store, "
        f"{len(outcome.only_replay)} only in the replay"
    )
    for label, rows in (("live only", outcome.only_live), ("replay only", outcome.only_replay)):
        for row in rows[:SHOWN]:
            out.print(f"  {label}: {_describe(row)}", markup=False, soft_wrap=True)
    raise typer.Exit(1)
