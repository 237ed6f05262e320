"""What a handler may touch: the batch's session, staged rows and the outbox (events and dead
letters alike), plus `Rejected`, the refusal of a contract-valid event."""

from __future__ import annotations

import binascii
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic

from aiokafka.structs import ConsumerRecord
from sqlmodel import Session, SQLModel
from typing_extensions import TypeVar

from fx_common import bulk, db, tracing
from fx_common.clock import SystemClock
from fx_common.contracts.base import ContractModel
from fx_common.contracts.registry import EVENT_TOPIC, key_for, type_for
from fx_common.contracts.topics import dlq_topic, event_source
from fx_common.envelope import Event, encode
from fx_common.ids import uuid5_str

_ID_NAMESPACE = uuid.UUID("6f1d3c1e-5a0b-4c55-9d3e-2f6a8e1b7c40")
_HEADER_NAMES: dict[str, str] = {}
"""Header name -> its JSON string (`json.dumps(name)`), for the names seen so far."""


def headers_json(headers: Sequence[tuple[str, bytes]]) -> str:
    """`json.dumps([[name, base64(value)], ...])`, as the outbox stores headers (the relay
    reads them back), without `json.dumps`' per-call overhead: base64 needs no escaping
    (`binascii.b2a_base64` is what `base64.b64encode` calls; the relay decodes with
    `binascii.a2b_base64`, what `base64.b64decode` calls)."""
    parts = []
    for name, value in headers:
        quoted = _HEADER_NAMES.get(name)
        if quoted is None:
            quoted = json.dumps(name)
            if len(_HEADER_NAMES) < 256:
                _HEADER_NAMES[name] = quoted
        parts.append(f'[{quoted}, "{binascii.b2a_base64(value, newline=False).decode()}"]')
    return f"[{', '.join(parts)}]"


R = TypeVar("R", default=Any)
"""The service's repository (`uow.repo`)."""


class Rejected(Exception):
    """A contract-valid event the domain refuses (e.g. a currency it cannot book).

    The batch is rolled back and redone with this event dead-lettered, so nothing the
    handler wrote before raising survives.
    """

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message


@dataclass
class UnitOfWork(Generic[R]):
    """What a handler may touch: the batch's session, its service's repository (`repo`) and
    an outbox to publish through."""

    session: Session
    service: str
    namespace: str = ""
    cause_id: str = ""
    traceparent: str | None = None
    repository: Callable[[UnitOfWork[R]], R] | None = None
    """Makes the service's repository for this unit of work (on first use of `repo`)."""
    cache: dict[str, Any] = field(default_factory=dict)
    """Per unit of work scratch space of a `prepare` hook (e.g. a once-per-batch marker)."""
    _repo: Any = None
    _outbox: list[dict[str, Any]] = field(default_factory=list)
    _staged: dict[Any, list[dict[str, Any]]] = field(default_factory=dict)
    _before_flush: list[Callable[[], None]] = field(default_factory=list)
    _published_for_cause: int = 0

    @property
    def repo(self) -> R:
        """The service's repository over this unit of work (one per unit of work)."""
        if self._repo is None:
            if self.repository is None:
                raise RuntimeError(f"{self.service} declares no repository")
            self._repo = self.repository(self)
        repo: R = self._repo
        return repo

    def before_flush(self, write: Callable[[], None]) -> None:
        """Run `write` once when the unit of work ends, before staged rows and the outbox:
        for state a batch keeps in memory (its repository) and writes back in one go."""
        self._before_flush.append(write)

    def stage(self, table: type[SQLModel], **values: Any) -> None:
        """Insert a row at the end of the unit of work, batched with its kind (executemany).

        For append-only rows on hot paths: cheaper than building an ORM object per event. The
        row is not visible to queries before the flush; keep what later events of the same
        batch need to know in the repository (`repo`, pre-loaded from the handlers' keys).
        """
        self._staged.setdefault(table, []).append(values)

    def caused_by(self, cause_id: str, traceparent: str | None) -> None:
        self.cause_id, self.traceparent, self._published_for_cause = cause_id, traceparent, 0

    @contextmanager
    def on_behalf_of(self, cause_id: str) -> Iterator[None]:
        """Publish as if caused by `cause_id` (its own counter), then back to the current
        cause: what an earlier event would have published, had it been processed later
        (e.g. a late visit attributing an order: the ids a replay gives the order)."""
        saved = self.cause_id, self._published_for_cause
        self.cause_id, self._published_for_cause = cause_id, 0
        try:
            yield
        finally:
            self.cause_id, self._published_for_cause = saved

    def publish(self, data: ContractModel, *, time: datetime, subject: str | None = None) -> Event:
        """Stage an event of the contract; it is published after the transaction commits.

        Its type, topic and key come from the contract registry (`type_for`, `EVENT_TOPIC`,
        `key_for`). Its id derives from the cause's id, so processing the same cause again (a
        replay into a fresh store) yields the same event ids.
        """
        ce_type = type_for(type(data))
        return self.publish_to(EVENT_TOPIC[ce_type], ce_type, data, time=time, subject=subject)

    def publish_to(
        self,
        topic: str,
        ce_type: str,
        data: ContractModel,
        *,
        time: datetime,
        subject: str | None = None,
    ) -> Event:
        """`publish` to a topic and type given (a test double's, outside the contract)."""
        self._published_for_cause += 1
        event_id = uuid5_str(
            _ID_NAMESPACE, f"{self.service}|{self.cause_id}|{self._published_for_cause}"
        )
        event = Event(
            id=event_id,
            type=ce_type,
            source=event_source(self.service),
            time=time,
            data=data,
            subject=subject,
            traceparent=tracing.outgoing(self.traceparent),
        )
        value, headers = encode(event)
        self._stage(topic, key_for(ce_type, data), value, headers, event.id, ce_type)
        return event

    def dead_letter(
        self, record: ConsumerRecord[Any, Any], error_type: str, message: str, now: datetime
    ) -> None:
        headers = [*record.headers]
        headers += [
            ("fx_error_type", error_type.encode()),
            ("fx_error_message", message[:2000].encode()),
            ("fx_original_topic", record.topic.encode()),
            ("fx_original_partition", str(record.partition).encode()),
            ("fx_original_offset", str(record.offset).encode()),
            ("fx_failed_at", now.isoformat().encode()),
        ]
        key = record.key.decode("utf-8", "replace") if record.key is not None else None
        self.cause_id = f"{record.topic}/{record.partition}/{record.offset}"
        self._stage(dlq_topic(self.service), key, record.value, headers, None, None)

    def _stage(
        self,
        topic: str,
        key: str | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        ce_id: str | None,
        ce_type: str | None,
    ) -> None:
        self._outbox.append(
            {
                "topic": self.namespace + topic,
                "key": key,
                "value": value,
                "headers": headers_json(headers),
                "ce_id": ce_id,
                "ce_type": ce_type,
                "cause_id": self.cause_id or None,
                "created_at": SystemClock().now(),
            }
        )

    def flush(self) -> int:
        """Write the in-memory state, the staged rows, then the outbox (returns its size)."""
        writes, self._before_flush = self._before_flush, []
        for write in writes:
            write()
        connection = self.session.connection()
        for table, rows in self._staged.items():
            bulk.insert_rows(connection, table.__table__, rows)
        self._staged = {}
        staged, self._outbox = self._outbox, []
        if staged:
            bulk.insert_rows(connection, db.OutboxRecord.__table__, staged)  # type: ignore[attr-defined]
        return len(staged)
