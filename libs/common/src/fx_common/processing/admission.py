"""Which records of a batch reach the handlers (before the inbox): a type of the contract on its
own topic. Everything else is dead-lettered or ignored, and never silently:

- a contract type on another topic than its own (`fx.clock.set` on `mall.orders.v1`) is
  dead-lettered as `wrong_topic`;
- an unknown type in a namespace fenxiao consumes (`mall.order.payed`) is dead-lettered as
  `unknown_type`;
- the mall's types ignored on purpose (`registry.IGNORED_TYPES`) and unknown types of other
  namespaces are ignored: counted in `fx_ignored_events_total{service,type,reason}`, the first of
  each type per process logged.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from aiokafka.structs import ConsumerRecord

from fx_common import metrics
from fx_common.contracts.registry import EVENT_TOPIC, IGNORED_TYPES, TypeVerdict, classify
from fx_common.envelope import DecodeError, Event

log = logging.getLogger(__name__)

MAX_TYPE_LABELS = 100
"""Distinct `type` label values per process; further types are counted as `<other>`."""


def base_topic(record_topic: str, namespace: str) -> str:
    """The contract's topic name of a consumed record (without `FX_TOPIC_NAMESPACE`)."""
    if namespace and record_topic.startswith(namespace):
        return record_topic[len(namespace) :]
    return record_topic


def check_topic(event: Event, record: ConsumerRecord[Any, Any], namespace: str) -> None:
    """Raise DecodeError(`wrong_topic`) unless `event`'s type belongs on the record's topic."""
    topic = base_topic(record.topic, namespace)
    if classify(event.type, topic) is TypeVerdict.WRONG_TOPIC:
        raise DecodeError(
            "wrong_topic",
            f"{event.type} is accepted only on {EVENT_TOPIC[event.type]}, not on {topic}",
        )


def unknown_type_error(
    ce_type: str, record: ConsumerRecord[Any, Any], namespace: str
) -> DecodeError | None:
    """The dead-letter reason for an unknown `ce_type`, or `None` when it is to be ignored."""
    topic = base_topic(record.topic, namespace)
    if classify(ce_type, topic) is not TypeVerdict.UNKNOWN_TYPE:
        return None
    ignored = ", ".join(sorted(IGNORED_TYPES.get(topic, ()))) or "none"
    return DecodeError(
        "unknown_type",
        f"{ce_type!r} is not a type of the contract on {topic} nor one it ignores on purpose "
        f"({ignored}): a typo, or a new type to agree on first",
    )


class IgnoredTypes:
    """Counts ignored events by type and logs the first of each type (thread-safe)."""

    def __init__(self, service: str, namespace: str = "") -> None:
        self.service, self.namespace = service, namespace
        self.seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, ce_type: str, record: ConsumerRecord[Any, Any]) -> None:
        with self._lock:
            first = ce_type not in self.seen
            if first and len(self.seen) >= MAX_TYPE_LABELS:
                ce_type, first = "<other>", "<other>" not in self.seen
            self.seen[ce_type] = self.seen.get(ce_type, 0) + 1
        base = base_topic(record.topic, self.namespace)
        reason = "documented" if ce_type in IGNORED_TYPES.get(base, ()) else "outside_contract"
        metrics.IGNORED_EVENTS.labels(self.service, _label(ce_type), reason).inc()
        if first:
            log.warning(
                "ignoring events of type %r (first one: %s/%s@%s); see fx_ignored_events_total",
                ce_type,
                record.topic,
                record.partition,
                record.offset,
            )


def _label(ce_type: str) -> str:
    printable = ce_type.isprintable() and len(ce_type) <= 128
    return ce_type if printable else "<invalid>"
