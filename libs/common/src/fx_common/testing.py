"""Helpers for tests and benchmarks: records as the consumer sees them, without a broker."""

from __future__ import annotations

import base64
import itertools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.db import OutboxRecord, normalise_url
from fx_common.envelope import Event, decode, encode, make_event

_offsets = itertools.count()


def record(
    ce_type: str,
    data: dict[str, Any] | BaseModel,
    *,
    time: datetime,
    event_id: str | None = None,
    topic: str | None = None,
    partition: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    """A contract-valid CloudEvent in binary mode, as a consumed record."""
    event = make_event(ce_type, data, time=time, event_id=event_id)
    value, headers = encode(event)
    return raw_record(
        topic or EVENT_TOPIC[ce_type],
        value,
        headers,
        key=key_for(ce_type, event.data),
        partition=partition,
    )


def raw_record(
    topic: str,
    value: bytes | None,
    headers: list[tuple[str, bytes]],
    *,
    key: str | None = None,
    partition: int = 0,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=next(_offsets),
        timestamp=0,
        timestamp_type=0,
        key=key.encode() if key is not None else None,
        value=value,
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=len(value or b""),
        headers=tuple(headers),
    )


@contextmanager
def fresh_postgres_database(server_url: str, prefix: str = "fx_t") -> Iterator[str]:
    """A new, empty database on the test server for one test, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def outbox_headers(encoded: str) -> list[tuple[str, bytes]]:
    """An outbox row's headers (JSON of base64 values) as the producer will send them."""
    return [(k, base64.b64decode(v)) for k, v in json.loads(encoded)]


def outbox_header_text(encoded: str) -> dict[str, str]:
    """An outbox row's headers as text, by name (e.g. a dead letter's `fx_error_type`)."""
    return {k: v.decode() for k, v in outbox_headers(encoded)}


def events_published(
    engine: Engine, *, topic: str | None = None, ce_type: str | None = None
) -> list[Event]:
    """The events a store's outbox holds (dead letters aside), in order, decoded as a
    consumer would; only those of `topic` or of `ce_type` when given."""
    with Session(engine) as session:
        rows = list(session.exec(select(OutboxRecord).order_by(col(OutboxRecord.id))))
    events = [
        decode(row.value, outbox_headers(row.headers))
        for row in rows
        if row.ce_id is not None and (topic is None or row.topic.endswith(topic))
    ]
    return [e for e in events if ce_type is None or e.type == ce_type]
