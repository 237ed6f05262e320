"""JSON logs on stderr, one object per line: the event's `ce_id`, key and trace id as fields."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter

from fx_common import tracing

# The event being handled (id, Kafka key, W3C trace id): every log line carries it.
CURRENT_EVENT: ContextVar[tuple[str, str | None, str | None] | None] = ContextVar(
    "fx_current_event", default=None
)


def trace_id(traceparent: str | None) -> str | None:
    """The trace id of a W3C `traceparent` (version-traceid-parentid-flags)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


class _EventContext(logging.Filter):
    """Adds `ce_id`, `event_key` and `trace_id` of the event being handled, and `span_id`
    (with the trace id) of the active OpenTelemetry span, e.g. an HTTP request's."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = CURRENT_EVENT.get()
        if current is not None:
            record.ce_id, record.event_key, record.trace_id = current
        span = tracing.current_ids()
        if span is not None and (current is None or current[2] in (None, span[0])):
            record.trace_id, record.span_id = span
        return True


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_EventContext())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
