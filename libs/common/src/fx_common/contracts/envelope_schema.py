"""JSON Schemas of the CloudEvents envelope as fenxiao reads it from Kafka.

- Structured content mode (`content-type: application/cloudevents+json`): the whole event is
  the record value; its `data` must match the schema of its `type` (`<ce_type>.json`).
- Binary content mode (what fenxiao publishes): the attributes are `ce_*` headers (UTF-8
  strings), the record value is the `data` object.

`time` is RFC 3339 with a timezone, from 2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z
(exclusive), not a number of epoch (milli)seconds. `id` is the idempotency key: at most 128
characters.
"""

from typing import Any

from fx_common.contracts.base import EARLIEST_TIME, LATEST_TIME
from fx_common.contracts.registry import EVENT_MODELS
from fx_common.contracts.samples import SAMPLES

__all__ = [
    "BINARY_HEADERS_FILE",
    "MAX_EVENT_ID_LENGTH",
    "STRUCTURED_FILE",
    "binary_headers_schema",
    "structured_schema",
]

STRUCTURED_FILE = "cloudevents.structured.json"
BINARY_HEADERS_FILE = "cloudevents.binary-headers.json"
MAX_EVENT_ID_LENGTH = 128
_DIALECT = "https://json-schema.org/draft/2020-12/schema"
_TIME_RANGE = (
    f"from {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} (inclusive) to {LATEST_TIME:%Y-%m-%dT%H:%M:%SZ} "
    "(exclusive)"
)
_TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": "^20[0-9]{2}-[0-9]{2}-[0-9]{2}T",
    "description": f"When it happened: RFC 3339 with a timezone, {_TIME_RANGE}. Not epoch "
    "seconds or milliseconds.",
}
_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_EVENT_ID_LENGTH,
    "description": "Unique event id: the idempotency key. The same id with other content is "
    "dead-lettered (duplicate_id_conflict).",
}
_SOURCE_DESCRIPTION = (
    "Who produced it: the mall sends `/mall/orders` (mall.orders.v1) and `/mall/shares` "
    "(mall.shares.v1); fenxiao's services send `/fx/<service>`."
)
_EXAMPLE_TIME = "2025-01-03T00:30:00Z"


def structured_schema() -> dict[str, Any]:
    """A whole CloudEvent in structured content mode, `data` checked by its `type`."""
    by_type = [
        {
            "if": {"properties": {"type": {"const": ce_type}}, "required": ["type"]},
            "then": {"properties": {"data": {"$ref": f"{ce_type}.json"}}},
        }
        for ce_type in sorted(EVENT_MODELS)
    ]
    return {
        "$schema": _DIALECT,
        "$id": STRUCTURED_FILE,
        "title": "CloudEvent (structured content mode)",
        "description": "The record value when `content-type` is `application/cloudevents+json`. "
        "Extension attributes are allowed (e.g. `traceparent`).",
        "type": "object",
        "required": ["specversion", "id", "type", "source", "time", "data"],
        "properties": {
            "specversion": {"const": "1.0"},
            "id": _ID,
            "type": {"type": "string", "minLength": 1, "description": "The event type."},
            "source": {"type": "string", "minLength": 1, "description": _SOURCE_DESCRIPTION},
            "time": _TIME,
            "subject": {"type": "string"},
            "datacontenttype": {"const": "application/json"},
            "traceparent": {"type": "string", "description": "W3C trace context."},
            "data": {"type": "object"},
        },
        "allOf": by_type,
        "examples": [
            {
                "specversion": "1.0",
                "id": "8d0b3f0e-2f5c-4b7a-9a55-3f1c2e4d5a6b",
                "type": "mall.order.paid",
                "source": "/mall/orders",
                "time": _EXAMPLE_TIME,
                "datacontenttype": "application/json",
                "data": SAMPLES["mall.order.paid"],
            }
        ],
    }


def binary_headers_schema() -> dict[str, Any]:
    """The Kafka headers of an event in binary content mode (each header a UTF-8 string)."""
    return {
        "$schema": _DIALECT,
        "$id": BINARY_HEADERS_FILE,
        "title": "CloudEvent Kafka headers (binary content mode)",
        "description": "Kafka record headers, as name → UTF-8 string; the record value is the "
        "`data` object (schema `<ce_type>.json`). Other headers are allowed.",
        "type": "object",
        "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type"],
        "properties": {
            "ce_specversion": {"const": "1.0"},
            "ce_id": _ID,
            "ce_type": {"type": "string", "minLength": 1},
            "ce_source": {"type": "string", "minLength": 1, "description": _SOURCE_DESCRIPTION},
            "ce_time": _TIME,
            "ce_subject": {"type": "string"},
            "content-type": {"const": "application/json"},
            "traceparent": {"type": "string", "description": "W3C trace context."},
        },
        "examples": [
            {
                "ce_specversion": "1.0",
                "ce_id": "8d0b3f0e-2f5c-4b7a-9a55-3f1c2e4d5a6b",
                "ce_type": "mall.order.paid",
                "ce_source": "/mall/orders",
                "ce_time": _EXAMPLE_TIME,
                "content-type": "application/json",
            }
        ],
    }
