"""A Kafka record as fxctl shows it: decoded when possible, filtered, summarised, matched."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fx_common.envelope import STRUCTURED, DecodeError, UnknownEventType, decode, rfc3339
from fxctl.kafka_io import Record

SUMMARY_WIDTH = 160


@dataclass(frozen=True)
class Seen:
    """One record: its coordinates, its CloudEvent attributes and data, or why not."""

    topic: str
    partition: int
    offset: int
    key: str | None
    headers: dict[str, str]
    time: datetime
    id: str | None = None
    type: str | None = None
    source: str | None = None
    subject: str | None = None
    traceparent: str | None = None
    data: Any = None
    error: str | None = None
    raw: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "id": self.id,
            "type": self.type,
            "time": rfc3339(self.time),
            "source": self.source,
            "subject": self.subject,
            "data": self.data,
            "traceparent": self.traceparent,
        }
        if self.error is not None:
            out["error"] = self.error
            out["raw"] = self.raw
        return out


def seen(record: Record) -> Seen:
    """Decode a record; an undecodable one is kept with its error, never raised."""
    headers = {k: v.decode("utf-8", "replace") for k, v in record.headers if v is not None}
    key = record.key.decode("utf-8", "replace") if record.key is not None else None
    base = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "key": key,
        "headers": headers,
    }
    try:
        event = decode(record.value, record.headers)
    except DecodeError as exc:
        return _raw(record, base, headers, f"{exc.error_type}: {exc.message}")
    except UnknownEventType as exc:
        return _raw(record, base, headers, f"unknown event type {exc}")
    return Seen(
        **base,
        time=event.time,
        id=event.id,
        type=event.type,
        source=event.source,
        subject=event.subject,
        traceparent=event.traceparent,
        data=event.data.model_dump(mode="json", exclude_none=True),
        extensions=event.extensions,
    )


def _raw(record: Record, base: dict[str, Any], headers: dict[str, str], error: str) -> Seen:
    """What can be said of a record that does not decode: attributes if present, raw value."""
    attrs = {k[3:]: v for k, v in headers.items() if k.startswith("ce_")}
    text = record.value.decode("utf-8", "replace") if record.value is not None else None
    data: Any = None
    if text is not None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
    if headers.get("content-type", "").startswith(STRUCTURED) and isinstance(data, dict):
        attrs = {k: str(v) for k, v in data.items() if k != "data"} | attrs
        data = data.get("data")
    return Seen(
        **base,
        time=_time(attrs.get("time"), record.timestamp),
        id=attrs.get("id"),
        type=attrs.get("type"),
        source=attrs.get("source"),
        subject=attrs.get("subject"),
        traceparent=headers.get("traceparent"),
        data=data,
        error=error,
        raw=text,
    )


def _time(attribute: str | None, timestamp_ms: int) -> datetime:
    if attribute:
        try:
            moment = datetime.fromisoformat(attribute.replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
        except ValueError:
            pass
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC)


@dataclass(frozen=True)
class RecordFilter:
    """`--type` (glob, repeatable), `--key`, `--since` (inclusive), `--until` (exclusive)."""

    types: Sequence[str] = ()
    key: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, record: Seen) -> bool:
        if self.types and not any(
            fnmatch.fnmatchcase(record.type or "", pattern) for pattern in self.types
        ):
            return False
        if self.key is not None and record.key != self.key:
            return False
        if self.since is not None and record.time < self.since:
            return False
        return not (self.until is not None and record.time >= self.until)


def summary(data: Any, width: int = SUMMARY_WIDTH) -> str:
    """`k=v` for the scalar fields, `k=[n]` for lists: one line, cut at `width`."""
    if not isinstance(data, dict):
        text = "" if data is None else json.dumps(data, ensure_ascii=False)
    else:
        parts = []
        for name, value in data.items():
            if isinstance(value, list):
                parts.append(f"{name}=[{len(value)}]")
            elif isinstance(value, dict):
                parts.append(f"{name}={{…}}")
            else:
                parts.append(f"{name}={value}")
        text = " ".join(parts)
    return text if len(text) <= width else text[: width - 1] + "…"


def mentions(data: Any, wanted: str) -> bool:
    """Whether any `*_id` field (or `*_ids` list), at any depth, holds `wanted`."""
    if isinstance(data, dict):
        for name, value in data.items():
            if name == "id" or name.endswith("_id"):
                if value == wanted:
                    return True
            elif name.endswith("_ids") and isinstance(value, list) and wanted in value:
                return True
            if isinstance(value, dict | list) and mentions(value, wanted):
                return True
        return False
    if isinstance(data, list):
        return any(mentions(item, wanted) for item in data)
    return False
