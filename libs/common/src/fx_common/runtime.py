"""A service process: store, consumer, outbox relay, clock, sweeper — started and stopped
together, inside the FastAPI lifespan (see `fx_common.http`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from fastapi import APIRouter
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from fx_common import db, ops_metrics
from fx_common.clock import Clock, SimulatedClock, SystemClock
from fx_common.contracts.clock import ClockSet
from fx_common.contracts.topics import CLOCK, SERVICES, consumer_group, dlq_topic
from fx_common.dlq_size import watch_dlq_size
from fx_common.edge import KafkaEdge
from fx_common.envelope import DecodeError, Event, UnknownEventType, decode
from fx_common.migrations import History, ensure
from fx_common.processing import (
    BatchProcessor,
    Handler,
    OutboxRelay,
    Prepare,
    TickHandler,
    UnitOfWork,
)
from fx_common.processing.handlers import On, dispatch_table, preload
from fx_common.settings import ServiceSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditResult:
    """What a service's check of its store against the topics found (`fxctl doctor` prints it)."""

    ok: bool
    summary: str
    differences: Sequence[str] = ()


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that makes one service: its topics, handlers, tables and routes."""

    name: str
    topics: Sequence[str]
    handlers: Mapping[str, Handler]
    """Untyped handlers by `ce_type` (test doubles); services declare `on` instead."""
    tables: Sequence[type[SQLModel]]
    # The store's migration history; None only for test doubles that make their own tables.
    migrations: History | None = None
    outputs: Sequence[str] = ()
    router: APIRouter | None = None
    on_tick: TickHandler | None = None
    prepare: Prepare | None = None
    # Typed handlers (`fx_common.processing.On`): the dispatch table and the batch's pre-load
    # (`repository(uow).load(keys)`) derive from them.
    on: Sequence[On[Any]] = ()
    repository: Callable[[UnitOfWork[Any]], Any] | None = None
    # What a replay cannot read from topics (state that came over HTTP): copied from the live
    # store (first engine) into the fresh, migrated one (second) before the replay starts.
    replay_seed: Callable[[Engine, Engine], int] | None = None
    settings_cls: type[ServiceSettings] = ServiceSettings
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Background loops of the service (e.g. payout's ledger check), started with the rest.
    tasks: Sequence[Callable[[ServiceRuntime], Coroutine[Any, Any, None]]] = ()
    # The store checked against the topics (payout: the ledger reconciliation), given the
    # service's settings and how long to wait for the consumer to catch up; `fxctl doctor` runs
    # it through the spec, so fxctl imports no service package.
    audit: Callable[[Any, float], Coroutine[Any, Any, AuditResult]] | None = None

    def handler_table(self) -> dict[str, Handler]:
        """`ce_type` -> handler: the untyped `handlers` and those the typed `on` declare."""
        return {**self.handlers, **dispatch_table(self.on)}


def processor_for(
    spec: ServiceSpec, engine: Engine, clock: SimulatedClock | None = None, namespace: str = ""
) -> BatchProcessor:
    """The spec's batch processor (also what handler tests drive, without a broker)."""
    return BatchProcessor(
        spec.name,
        engine,
        spec.handler_table(),
        spec.on_tick,
        clock,
        namespace,
        _prepare_of(spec),
        spec.repository,
    )


def _prepare_of(spec: ServiceSpec) -> Prepare | None:
    """The spec's `prepare` hook, then the pre-load its typed handlers declare."""
    hook = spec.prepare
    if not any(on.keys is not None for on in spec.on):
        return hook
    load = preload(spec.on)

    def prepare(uow: UnitOfWork, events: Sequence[Event]) -> None:
        if hook is not None:
            hook(uow, events)
        load(uow, events)

    return prepare


def replication_for(brokers: int) -> tuple[int, int]:
    """Replication factor and min ISR of a topic on a cluster of `brokers` live brokers.

    Three copies when the cluster has three brokers or more, and `acks=all` needs all but one
    of them: one broker may be lost without stopping writes or losing an acknowledged record.
    """
    factor = max(1, min(3, brokers))
    return factor, max(1, factor - 1)


async def ensure_topics(bootstrap_servers: str, topics: Sequence[str], partitions: int) -> None:
    """Create missing topics (clock: one partition, so every move is ordered), replicated by
    `replication_for` the brokers the cluster lists now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        factor, min_isr = replication_for(len((await admin.describe_cluster())["brokers"]))
        configs = {"min.insync.replicas": str(min_isr)} if factor > 1 else {}
        wanted = [
            NewTopic(t, 1 if t.endswith(CLOCK) else partitions, factor, topic_configs=configs)
            for t in topics
            if t not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(wanted)
    finally:
        await admin.close()


def all_topics() -> list[str]:
    from fx_common.contracts import topics as t

    return [
        t.MALL_SHARES, t.MALL_ORDERS, t.QUALIFICATION, t.QUALIFICATION_COMMANDS, t.BINDINGS,
        t.ATTRIBUTIONS,
        t.COMMISSIONS, t.PAYOUTS, t.CLOCK, *(dlq_topic(s) for s in SERVICES),
    ]  # fmt: skip


class ClockFollower:
    """Keeps this replica's simulated clock at the latest `fx.clock.set` (no group)."""

    def __init__(self, bootstrap_servers: str, clock: SimulatedClock, topic: str) -> None:
        self.clock = clock
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers

    async def run(self) -> None:
        kafka = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap_servers, enable_auto_commit=False, group_id=None
        )
        await kafka.start()
        try:
            partition = TopicPartition(self.topic, 0)
            kafka.assign([partition])
            await kafka.seek_to_beginning(partition)
            async for record in kafka:
                with contextlib.suppress(DecodeError, UnknownEventType):
                    event = decode(record.value, record.headers)
                    if isinstance(event.data, ClockSet):
                        self.clock.advance_to(event.data.now)
        finally:
            await kafka.stop()


class ServiceRuntime:
    def __init__(self, spec: ServiceSpec, settings: ServiceSettings) -> None:
        self.spec = spec
        self.settings = settings
        self.engine: Engine = db.make_engine(settings.store_url())
        self.clock: Clock
        simulated = SimulatedClock(settings.clock_start) if settings.clock == "simulated" else None
        self.clock = simulated or SystemClock()
        ns = self.namespace = settings.topic_namespace
        topics = [ns + t for t in [*spec.topics, *([CLOCK] if simulated else [])]]
        self.processor = processor_for(spec, self.engine, simulated, ns)
        self.relay = OutboxRelay(
            spec.name, self.engine, settings.kafka_bootstrap_servers, batch=settings.outbox_batch
        )
        self.edge = KafkaEdge(
            spec.name,
            settings.kafka_bootstrap_servers,
            topics,
            self.processor,
            group_id=ns + (settings.consumer_group or consumer_group(spec.name)),
            max_records=settings.batch_max_records,
            max_wait_ms=settings.batch_max_wait_ms,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            on_batch=lambda outcome: self.relay.wake(),
        )
        self.follower = (
            ClockFollower(settings.kafka_bootstrap_servers, simulated, ns + CLOCK)
            if simulated
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.started = False
        self.sweeper_owner = f"{spec.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    async def start(self) -> None:
        ops_metrics.initialise(self.spec.name, self.spec.outputs)
        await asyncio.to_thread(self.prepare_store)
        await self._until_broker(
            lambda: ensure_topics(
                self.settings.kafka_bootstrap_servers,
                [self.namespace + t for t in all_topics()],
                self.settings.topic_partitions,
            )
        )
        if self.settings.publish:
            await self.relay.start()
        await self.edge.start()  # the subscriber joins its group
        if self.settings.publish:
            self._spawn(self.relay.run(), "relay")
        for n, task in enumerate(self.spec.tasks):
            self._spawn(task(self), f"task-{n}")
        self._spawn(watch_dlq_size(self), "dlq-size")
        if self.follower is not None:
            self._spawn(self.follower.run(), "clock-follower")
        elif self.spec.on_tick is not None:
            self._spawn(self._sweep_forever(), "sweeper")
        self.started = True
        log.info("service started", extra={"topics": list(self.spec.topics)})

    def prepare_store(self) -> None:
        """The store at the code's revision: upgraded first under FX_MIGRATE=auto, else
        refused when behind (`migrations.StoreNotReady` names the command that upgrades it)."""
        if self.spec.migrations is not None:
            ensure(self.engine, self.spec.migrations, auto=self.settings.migrate == "auto")

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"{self.spec.name}-{name}")
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s crashed; exiting", task.get_name(), exc_info=task.exception())
            os._exit(70)  # a supervisor restarts us; nothing was committed beyond the store

    async def _until_broker(self, attempt: Callable[[], Coroutine[Any, Any, None]]) -> None:
        delay = 0.2
        while True:
            try:
                await attempt()
                return
            except (KafkaError, OSError) as exc:
                log.warning("broker not reachable yet (%s); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _sweep_forever(self) -> None:
        """System clock only: run time-driven rules periodically, one replica at a time."""
        assert self.spec.on_tick is not None
        owner = self.sweeper_owner
        interval = self.settings.sweep_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                held = await asyncio.to_thread(
                    db.try_lease, self.engine, "sweeper", owner, interval * 3
                )
                ops_metrics.leader(self.spec.name, "sweeper", held)
                if held and await asyncio.to_thread(
                    self.tick, self.clock.now(), (owner, interval * 3)
                ):
                    self.relay.wake()
            except Exception:
                log.exception("sweep failed; next interval retries")

    def tick(self, now: datetime, sweeper: tuple[str, float] | None = None) -> bool:
        """Run the time-driven rules in one transaction. As `sweeper` (owner, ttl), only while
        holding the sweeper lease, renewed and locked in this transaction: no other replica
        can take it, and sweep, before this sweep commits, however long it takes."""
        assert self.spec.on_tick is not None
        with Session(self.engine) as session, session.begin():
            if sweeper is not None and not db.hold_lease(session, "sweeper", *sweeper):
                return False
            uow = UnitOfWork(
                session, self.spec.name, self.namespace, repository=self.spec.repository
            )
            uow.caused_by(f"tick:{now.isoformat()}", None)
            self.spec.on_tick(uow, now)
            uow.flush()
        return True

    def command(self, cause_id: str, apply: Callable[[UnitOfWork], Any]) -> Any:
        """Run an HTTP command in one transaction with the outbox (call from a thread)."""
        with Session(self.engine) as session, session.begin():
            uow = UnitOfWork(
                session, self.spec.name, self.namespace, repository=self.spec.repository
            )
            uow.caused_by(cause_id, None)
            result = apply(uow)
            uow.flush()
        self.relay.wake()
        return result

    def ready(self) -> dict[str, bool]:
        store = True
        try:
            db.ping(self.engine)
        except Exception:
            store = False
        broker = self.started and self.edge.connected()
        return {"store": store, "broker": broker}

    async def stop(self) -> None:
        """SIGTERM: stop fetching, finish and commit the batch, flush the outbox, exit."""
        log.info("stopping: finishing the batch in flight and flushing the outbox")
        await self.edge.stop_consuming()
        await self.relay.stop()
        relay_task = next((t for t in self._tasks if t.get_name().endswith("-relay")), None)
        for task in self._tasks:
            if task is not relay_task:
                task.cancel()
        if relay_task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(relay_task), timeout=20)
            relay_task.cancel()
        for task in self._tasks:
            task.remove_done_callback(self._task_done)
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.relay.close()
        await self.edge.close()
        await asyncio.to_thread(db.release_lease, self.engine, "sweeper", self.sweeper_owner)
        self.engine.dispose()
        log.info("stopped cleanly: batch committed, outbox flushed")
