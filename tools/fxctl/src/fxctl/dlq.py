"""`fxctl dlq list|show|replay SERVICE`: a service's dead letters, and sending them back."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from fx_common.contracts.topics import SERVICES, dlq_topic
from fx_common.replay import read_topics
from fxctl.context import Target, run, target
from fxctl.kafka_io import Headers, Record, producer
from fxctl.output import console, emit_json, fail

app = typer.Typer(help="A service's dead-letter topic: list, show, replay.", no_args_is_help=True)

ERROR_PREFIX = "fx_"


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @classmethod
    def of(cls, record: Record) -> DeadLetter:
        return cls(record.partition, record.offset, record.key, record.value, list(record.headers))

    def header(self, name: str) -> str:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return ""

    def original_headers(self) -> Headers:
        """The headers the record had before it failed (without the `fx_*` error headers)."""
        return [(k, v) for k, v in self.headers if not k.startswith(ERROR_PREFIX)]

    @property
    def original_topic(self) -> str:
        return self.header("fx_original_topic")

    def as_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key.decode("utf-8", "replace") if self.key is not None else None,
            "ce_id": self.header("ce_id") or None,
            "ce_type": self.header("ce_type") or None,
            "error_type": self.header("fx_error_type"),
            "error_message": self.header("fx_error_message"),
            "original_topic": self.original_topic,
            "original_partition": _int(self.header("fx_original_partition")),
            "original_offset": _int(self.header("fx_original_offset")),
            "failed_at": self.header("fx_failed_at"),
        }


def _int(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def _service(name: str) -> str:
    if name not in SERVICES:
        fail(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    return name


async def dead_letters(where: Target, service: str) -> list[DeadLetter]:
    partitions = await read_topics(where.bootstrap, [where.topic(dlq_topic(service))])
    letters = [DeadLetter.of(r) for records in partitions.values() for r in records]
    return sorted(letters, key=lambda d: (d.header("fx_failed_at"), d.partition, d.offset))


def _select(letters: list[DeadLetter], offset: int, partition: int | None) -> DeadLetter:
    found = [d for d in letters if d.offset == offset and partition in (None, d.partition)]
    if not found:
        where = f"partition {partition} " if partition is not None else ""
        fail(f"no dead letter at {where}offset {offset}", code=1)
    if len(found) > 1:
        parts = ", ".join(str(d.partition) for d in found)
        fail(f"offset {offset} exists on partitions {parts}: add --partition")
    return found[0]


ServiceArg = Annotated[str, typer.Argument(help=f"One of {', '.join(SERVICES)}.")]
PartitionOpt = Annotated[int | None, typer.Option(help="DLQ partition of the record.")]


@app.command("list")
def list_(
    ctx: typer.Context,
    service: ServiceArg,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every record on fx.dlq.<service>.v1 with its error and where it came from."""
    where = target(ctx)
    letters = run(where, dead_letters(where, _service(service)))
    if as_json:
        for letter in letters:
            emit_json(letter.as_json())
        return
    out = console()
    if not letters:
        out.print(f"no dead letters for {service}")
        return
    table = Table(title=f"{where.topic(dlq_topic(service))}: {len(letters)} dead letter(s)")
    for column in ("dlq", "failed at", "from", "key", "ce_type", "error", "message"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        row = letter.as_json()
        table.add_row(
            f"{letter.partition}@{letter.offset}",
            row["failed_at"],
            f"{where.bare(letter.original_topic)} "
            f"{row['original_partition']}@{row['original_offset']}",
            Text(row["key"] or ""),
            row["ce_type"] or "",
            Text(row["error_type"], style="red"),
            Text(row["error_message"]),
        )
    out.print(table)


@app.command()
def show(
    ctx: typer.Context,
    service: ServiceArg,
    offset: Annotated[int, typer.Argument(help="DLQ offset of the record.")],
    partition: PartitionOpt = None,
) -> None:
    """One dead letter in full: every header, then the value."""
    where = target(ctx)
    letter = _select(run(where, dead_letters(where, _service(service))), offset, partition)
    out = console()
    table = Table(title=f"{where.topic(dlq_topic(service))} {letter.partition}@{letter.offset}")
    table.add_column("header")
    table.add_column("value", overflow="fold")
    table.add_row("(key)", Text(letter.key.decode("utf-8", "replace") if letter.key else ""))
    for key, value in letter.headers:
        table.add_row(key, Text(value.decode("utf-8", "replace")))
    out.print(table)
    out.print("value:")
    if letter.value is None:
        out.print("(none: tombstone)")
        return
    text = letter.value.decode("utf-8", "replace")
    with contextlib.suppress(json.JSONDecodeError):
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    out.print(Text(text), soft_wrap=True)


async def _resend(where: Target, letters: list[DeadLetter]) -> list[tuple[DeadLetter, int, int]]:
    sent = []
    async with producer(where.bootstrap) as kafka:
        for letter in letters:
            meta = await kafka.send_and_wait(
                letter.original_topic,
                value=letter.value,
                key=letter.key,
                headers=letter.original_headers(),
            )
            sent.append((letter, meta.partition, meta.offset))
    return sent


@app.command()
def replay(
    ctx: typer.Context,
    service: ServiceArg,
    offset: Annotated[
        int | None, typer.Option(help="Only the record at this DLQ offset (default: all).")
    ] = None,
    partition: PartitionOpt = None,
) -> None:
    """Re-publish dead letters to their original topic (value, key and original headers).

    The service's inbox skips any event it already applied, so a replay is safe to repeat.
    """
    where = target(ctx)
    letters = run(where, dead_letters(where, _service(service)))
    if offset is not None:
        letters = [_select(letters, offset, partition)]
    missing = [d for d in letters if not d.original_topic]
    if missing:
        fail(f"dead letter {missing[0].partition}@{missing[0].offset} has no fx_original_topic")
    out = console()
    if not letters:
        out.print(f"no dead letters for {service}: nothing to replay")
        return
    for letter, part, new_offset in run(where, _resend(where, letters)):
        key = letter.key.decode("utf-8", "replace") if letter.key is not None else None
        out.print(
            Text(
                f"re-sent {letter.partition}@{letter.offset} → {letter.original_topic} "
                f"{part}@{new_offset} key={key} ce_id={letter.header('ce_id') or '-'} "
                f"ce_type={letter.header('ce_type') or '-'}"
            ),
            soft_wrap=True,
        )
    out.print(f"{len(letters)} record(s) re-sent")
