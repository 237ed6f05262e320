"""Hypothesis strategies built from the contract models (for property tests only: imports
hypothesis, a development dependency).

`events(types)` draws contract-valid records of the given types: every value is drawn from
the JSON Schema of the type's model (its bounds, lengths, enums, optional fields, additional
fields), with the extremes of every range sampled often (0 and 2^53 - 1 fen, 2^31 - 1 units,
128-character ids, 2000-01-01 and the last microsecond before 2100), ids drawn from a small
pool so that events meet on the same aggregates, and the model validating each draw.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiokafka.structs import ConsumerRecord
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from fx_common import db
from fx_common.contracts.base import EARLIEST_TIME, LATEST_DERIVED_TIME, LATEST_TIME
from fx_common.contracts.export import schema_for
from fx_common.contracts.registry import EVENT_MODELS, EVENT_TOPIC, key_for
from fx_common.envelope import decode, encode, make_event
from fx_common.processing import BatchProcessor
from fx_common.testing import raw_record

__all__ = ["apply_all", "event_time", "events", "records", "value_of"]

Schema = dict[str, Any]
_ID_POOL = ("u-1", "u-2", "u-3", "o-1", "o-2", "s-1", "l-1", "l-2", "r-1", "c-1", "w-1")
_ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-12)),
          timezone(timedelta(hours=14))]  # fmt: skip
_MAX_ITEMS = 4


def _times(latest: datetime) -> st.SearchStrategy[datetime]:
    last = latest - timedelta(microseconds=1)
    naive = st.datetimes(EARLIEST_TIME.replace(tzinfo=None), last.replace(tzinfo=None))
    drawn = naive.map(lambda moment: moment.replace(tzinfo=UTC))
    near = st.datetimes(datetime(2026, 1, 1), datetime(2026, 1, 10)).map(
        lambda moment: moment.replace(tzinfo=UTC)
    )
    extremes = st.sampled_from([EARLIEST_TIME, last, LATEST_TIME - timedelta(days=1)])
    utc = st.one_of(extremes, near, drawn)
    return st.tuples(utc, st.sampled_from(_ZONES)).map(lambda pair: pair[0].astimezone(pair[1]))


def event_time() -> st.SearchStrategy[datetime]:
    """A `ce_time` the contract accepts, extremes included."""
    return _times(LATEST_TIME)


def _integers(node: Schema) -> st.SearchStrategy[int]:
    low, high = int(node.get("minimum", -(2**63))), int(node.get("maximum", 2**63))
    edges = sorted({low, high, min(low + 1, high), max(high - 1, low)})
    return st.one_of(st.sampled_from(edges), st.integers(low, min(high, low + 1000)),
                     st.integers(low, high))  # fmt: skip


def _strings(node: Schema) -> st.SearchStrategy[str]:
    low, high = int(node.get("minLength", 0)), int(node.get("maxLength", 64))
    controls = [chr(c) for c in range(32)] + ["\x7f"]
    alphabet = st.characters(exclude_categories=["Cs"], exclude_characters=controls)
    drawn = st.text(alphabet, min_size=max(low, 1), max_size=min(high, 40))
    longest = st.just("x" * high) if "maxLength" in node else st.nothing()
    pool = st.sampled_from([i for i in _ID_POOL if low <= len(i) <= high])
    return st.one_of(pool, pool, longest, drawn)


def value_of(node: Schema, root: Schema) -> st.SearchStrategy[Any]:
    """A JSON value valid for `node` (a schema of the subset pydantic emits)."""
    if "$ref" in node:
        target: Any = root
        for part in node["$ref"][2:].split("/"):
            target = target[part]
        return value_of(target, root)
    if "anyOf" in node:
        return st.one_of([value_of(alternative, root) for alternative in node["anyOf"]])
    if "const" in node:
        return st.just(node["const"])
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return _integers(node)
    if kind == "string" and node.get("format") == "date-time":
        latest = LATEST_DERIVED_TIME if "2200" in node.get("description", "") else LATEST_TIME
        return _times(latest).map(lambda moment: moment.isoformat())
    if kind == "string":
        return _strings(node)
    if kind == "array":
        low = int(node.get("minItems", 0))
        return st.lists(value_of(node["items"], root), min_size=low, max_size=max(low, _MAX_ITEMS))
    if kind == "object":
        return _objects(node, root)
    raise TypeError(f"no strategy for schema node {node}")


def _objects(node: Schema, root: Schema) -> st.SearchStrategy[dict[str, Any]]:
    properties: Schema = node.get("properties", {})
    required = set(node.get("required", []))
    fields = {name: value_of(prop, root) for name, prop in properties.items()}
    mandatory = st.fixed_dictionaries({n: s for n, s in fields.items() if n in required})
    optional = st.fixed_dictionaries({}, optional={n: s for n, s in fields.items()
                                                   if n not in required})  # fmt: skip
    extra = st.dictionaries(st.sampled_from(["x_note", "x_count"]),
                            st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=8)),
                            max_size=1)  # fmt: skip
    return st.tuples(mandatory, optional, extra).map(lambda p: {**p[2], **p[1], **p[0]})


@st.composite
def _data(draw: st.DrawFn, ce_type: str) -> dict[str, Any]:
    schema = schema_for(ce_type)
    data: dict[str, Any] = draw(value_of(schema, schema))
    try:
        EVENT_MODELS[ce_type].model_validate(data)
    except ValidationError:  # a model rule beyond the schema (unique line ids, sums…)
        draw(st.nothing())
    return data


def events(ce_types: list[str]) -> st.SearchStrategy[tuple[str, str, dict[str, Any], datetime]]:
    """(event id, type, data, ce_time) of one contract-valid event of one of `ce_types`."""
    ids = st.one_of(st.sampled_from(["e-1", "e-2"]), st.uuids().map(str))
    return st.sampled_from(sorted(ce_types)).flatmap(
        lambda ce_type: st.tuples(ids, st.just(ce_type), _data(ce_type), event_time())
    )


def records(
    drawn: list[tuple[str, str, dict[str, Any], datetime]], namespace: str = ""
) -> list[ConsumerRecord[bytes, bytes]]:
    """The drawn events as consumed records (binary mode), on their own topics."""
    out = []
    for event_id, ce_type, data, at in drawn:
        event = make_event(ce_type, data, time=at, event_id=event_id)
        value, headers = encode(event)
        topic = namespace + EVENT_TOPIC[ce_type]
        out.append(raw_record(topic, value, headers, key=key_for(ce_type, event.data)))
    return out


def apply_all(
    processor: BatchProcessor,
    engine: Engine,
    drawn: list[tuple[str, str, dict[str, Any], datetime]],
    batch_size: int,
) -> None:
    """Process the drawn events in batches of `batch_size`; whatever a handler cannot apply
    it must refuse with `Rejected` (dead-lettered by the processor): any other exception
    propagates and fails the property. Every event published must be contract-valid."""
    consumed = records(drawn, processor.namespace)
    for start in range(0, len(consumed), batch_size):
        processor.process(consumed[start : start + batch_size])
    with Session(engine) as session:
        rows = session.exec(select(db.OutboxRecord).where(db.OutboxRecord.ce_id != None))  # noqa: E711
        published = [(row.value, row.headers) for row in rows]
    for value, headers in published:
        pairs = [(k, base64.b64decode(v)) for k, v in json.loads(headers)]
        decode(value, pairs)
