"""One batch of records applied in one transaction: decode, admit (types, topics, inbox),
handlers, outbox. Synchronous: the consumer runs it in a worker thread."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import bulk, db, metrics, tracing
from fx_common.clock import SimulatedClock, SystemClock
from fx_common.contracts.clock import ClockSet
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode
from fx_common.logs import CURRENT_EVENT, trace_id
from fx_common.processing import admission, inbox
from fx_common.processing.admission import IgnoredTypes
from fx_common.processing.unit_of_work import Rejected, UnitOfWork

CLOCK_SET = "fx.clock.set"

Handler = Callable[[UnitOfWork, Event], None]
TickHandler = Callable[[UnitOfWork, datetime], None]
# Called once per batch with its new events, before any handler: load in one query what the
# handlers will look up per event; services declare keys on their handlers instead (`On`),
# and keep `prepare` for per-batch work such as referral-binding's cache invalidation.
Prepare = Callable[[UnitOfWork, Sequence[Event]], None]


@dataclass
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    published: int = 0


@dataclass
class _Decoded:
    record: ConsumerRecord[Any, Any]
    event: Event | None = None
    error: DecodeError | None = None
    ignored_type: str | None = None
    digest: str = ""


class _RedoWithout(Exception):
    def __init__(self, event_id: str, rejection: Rejected) -> None:
        self.event_id, self.rejection = event_id, rejection


@dataclass
class _Pass:
    """One attempt at a batch: its unit of work, what the inbox knows, what it will add."""

    uow: UnitOfWork
    seen: dict[str, str | None]
    now: datetime
    outcome: BatchOutcome = field(default_factory=BatchOutcome)
    inbox_rows: list[dict[str, Any]] = field(default_factory=list)


class BatchProcessor:
    """Applies one batch of records in one transaction (synchronous: run it in a thread)."""

    def __init__(
        self,
        service: str,
        engine: Engine,
        handlers: Mapping[str, Handler],
        on_tick: TickHandler | None = None,
        clock: SimulatedClock | None = None,
        namespace: str = "",
        prepare: Prepare | None = None,
        repository: Callable[[UnitOfWork[Any]], Any] | None = None,
    ) -> None:
        self.repository = repository
        self.service = service
        self.namespace = namespace
        self.prepare = prepare
        self.engine = engine
        self.handlers = handlers
        self.on_tick = on_tick
        self.clock = clock
        self.ignored = IgnoredTypes(service, namespace)

    def process(self, records: Sequence[ConsumerRecord[Any, Any]]) -> BatchOutcome:
        decoded = [self._decode(r) for r in records]
        rejected: dict[str, Rejected] = {}
        while True:
            try:
                return self._apply(decoded, rejected)
            except _RedoWithout as redo:
                rejected[redo.event_id] = redo.rejection

    def _decode(self, record: ConsumerRecord[Any, Any]) -> _Decoded:
        try:
            event = decode(record.value, record.headers)
            admission.check_topic(event, record, self.namespace)
        except DecodeError as exc:
            return _Decoded(record, error=exc)
        except UnknownEventType as exc:
            ce_type = str(exc.args[0]) if exc.args else ""
            error = admission.unknown_type_error(ce_type, record, self.namespace)
            return _Decoded(record, error=error, ignored_type=None if error else ce_type)
        return _Decoded(record, event=event, digest=inbox.digest(event))

    def _apply(self, decoded: Sequence[_Decoded], rejected: Mapping[str, Rejected]) -> BatchOutcome:
        with Session(self.engine) as session, session.begin():
            ids = [d.event.id for d in decoded if d.event is not None]
            now = SystemClock().now()
            uow = UnitOfWork(session, self.service, self.namespace, repository=self.repository)
            batch = _Pass(uow, {}, now)
            batch.seen = inbox.applied_digests(session, ids)
            if self.prepare is not None:
                self.prepare(batch.uow, self._fresh(decoded, batch.seen, rejected))
            for item in decoded:
                self._one(batch, item, rejected)
            CURRENT_EVENT.set(None)
            if batch.inbox_rows:
                bulk.insert_rows(
                    session.connection(),
                    db.InboxRecord.__table__,  # type: ignore[attr-defined]
                    batch.inbox_rows,
                )
            batch.outcome.published = batch.uow.flush()
        return batch.outcome

    @staticmethod
    def _fresh(
        decoded: Sequence[_Decoded], seen: Mapping[str, str | None], rejected: Mapping[str, Any]
    ) -> list[Event]:
        """The events the handlers will see (first of each id, not yet applied or refused)."""
        fresh: dict[str, Event] = {}
        for d in decoded:
            if d.event is not None and d.event.id not in seen and d.event.id not in rejected:
                fresh.setdefault(d.event.id, d.event)
        return list(fresh.values())

    def _one(self, batch: _Pass, item: _Decoded, rejected: Mapping[str, Rejected]) -> None:
        record, event, outcome = item.record, item.event, batch.outcome
        if item.error is not None:
            self._dead_letter(batch, record, item.error.error_type, item.error.message)
            return
        if event is None:
            if item.ignored_type is not None:
                self.ignored.record(item.ignored_type, record)
            outcome.ignored += 1
            return
        if event.id in batch.seen:
            clash = inbox.conflict(event, batch.seen, item.digest)
            if clash is not None:
                self._dead_letter(batch, record, clash.error_type, clash.message)
            else:
                outcome.duplicates += 1
            return
        batch.seen[event.id] = item.digest
        batch.inbox_rows.append(inbox.inbox_row(event, record, item.digest, batch.now))
        if event.id in rejected:
            rejection = rejected[event.id]
            self._dead_letter(batch, record, rejection.error_type, rejection.message)
            return
        batch.uow.caused_by(event.id, event.traceparent)
        key = record.key.decode("utf-8", "replace") if record.key else None
        CURRENT_EVENT.set((event.id, key, trace_id(event.traceparent)))
        try:
            handled = tracing.handle(self.service, record.topic, event, self._dispatch, batch.uow)
        except Rejected as exc:
            raise _RedoWithout(event.id, exc) from exc
        if handled:
            outcome.applied += 1
        else:
            outcome.ignored += 1

    def _dead_letter(
        self, batch: _Pass, record: ConsumerRecord[Any, Any], error_type: str, message: str
    ) -> None:
        batch.uow.dead_letter(record, error_type, message, batch.now)
        batch.outcome.dead_lettered += 1
        metrics.DLQ_RECORDS.labels(self.service, error_type).inc()

    def _dispatch(self, uow: UnitOfWork, event: Event) -> bool:
        if event.type == CLOCK_SET:
            assert isinstance(event.data, ClockSet)
            if self.clock is not None:
                self.clock.advance_to(event.data.now)
            if self.on_tick is not None:
                self.on_tick(uow, event.data.now)
            return True
        handler = self.handlers.get(event.type)
        if handler is None:
            return False
        handler(uow, event)
        return True
