"""Spans, traceparents, logs and the operators' metrics of one process, in memory (no
collector).

The cross-service trace on the real broker is tests/integration/test_tracing.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlmodel import Session, select

from fx_common import db, logs, tracing
from fx_common.contracts.attributions import AttributedOrderCompleted
from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event, encode, make_event
from fx_common.http_metrics import HttpMetrics
from fx_common.metrics import EVENTS_PUBLISHED
from fx_common.ops_metrics import HTTP_REQUESTS, LEADER, MONEY_FEN, published, published_many
from fx_common.processing import BatchProcessor, UnitOfWork
from fx_common.runtime import ServiceRuntime, ServiceSpec
from fx_common.settings import ServiceSettings
from fx_common.testing import raw_record

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
MALL_TRACE, MALL_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{MALL_TRACE}-{MALL_SPAN}-01"
log = logging.getLogger("test.handler")


def on_paid(uow: UnitOfWork, event: Event) -> None:
    log.warning("booking the order")
    data = SAMPLES["fx.order.completed"] | {"order_id": event.data.order_id}  # type: ignore[attr-defined]
    uow.publish(AttributedOrderCompleted.model_validate(data), time=event.time)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    assert tracing.configure("svc", spans)
    yield spans
    tracing.shutdown()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    out = io.StringIO()
    logs.configure_logging("svc")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    yield out
    logging.getLogger().handlers.clear()


def process(tmp_path: Path) -> str | None:
    """One paid order carrying the mall's traceparent; the traceparent of what it caused."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    db.create_schema(engine, [])
    processor = BatchProcessor("svc", engine, {"mall.order.paid": on_paid})
    event = make_event(
        "mall.order.paid", SAMPLES["mall.order.paid"], time=T0, traceparent=TRACEPARENT
    )
    value, headers = encode(event)
    paid = raw_record("mall.orders.v1", value, headers, key="o-1")
    assert processor.process([paid]).applied == 1
    with Session(engine) as session:
        row = session.exec(select(db.OutboxRecord)).one()
    engine.dispose()
    sent = {k: base64.b64decode(v).decode() for k, v in json.loads(row.headers)}
    return sent.get("traceparent")


def test_without_a_collector_nothing_is_traced_and_the_cause_traceparent_is_copied(
    tmp_path: Path,
) -> None:
    assert tracing.tracer() is None
    assert process(tmp_path) == TRACEPARENT


def test_an_event_is_consumed_and_handled_in_the_trace_it_carries(
    tmp_path: Path, exporter: InMemorySpanExporter, captured: io.StringIO
) -> None:
    outgoing = process(tmp_path)
    spans = {s.name: s for s in exporter.get_finished_spans()}
    consume, handle = spans["consume mall.orders.v1"], spans["handle mall.order.paid"]
    assert consume.kind is SpanKind.CONSUMER
    assert f"{consume.context.trace_id:032x}" == MALL_TRACE
    assert consume.parent is not None and f"{consume.parent.span_id:016x}" == MALL_SPAN
    assert handle.parent is not None and handle.parent.span_id == consume.context.span_id
    assert consume.attributes is not None
    assert consume.attributes["cloudevents.event_type"] == "mall.order.paid"
    # What the handler published continues the trace from the handle span.
    assert outgoing == f"00-{MALL_TRACE}-{handle.context.span_id:016x}-01"
    # Its log line names the event and the span.
    (line,) = [json.loads(x) for x in captured.getvalue().splitlines() if "booking" in x]
    assert line["ce_id"] and line["trace_id"] == MALL_TRACE
    assert line["span_id"] == f"{handle.context.span_id:016x}"


def test_the_relay_publishes_in_a_producer_span_whose_traceparent_the_record_carries(
    exporter: InMemorySpanExporter,
) -> None:
    spans = tracing.new_spans()
    staged = [("ce_id", b"e-1"), ("traceparent", TRACEPARENT.encode())]
    sent = dict(tracing.publishing("svc", "fx.commissions.v1", staged, spans))
    tracing.end(spans)
    (span,) = exporter.get_finished_spans()
    assert span.name == "publish fx.commissions.v1" and span.kind is SpanKind.PRODUCER
    assert span.parent is not None and f"{span.parent.span_id:016x}" == MALL_SPAN
    assert sent["traceparent"].decode() == f"00-{MALL_TRACE}-{span.context.span_id:016x}-01"
    assert sent["ce_id"] == b"e-1"


def test_http_requests_are_counted_by_route_template_and_status() -> None:
    app = FastAPI()
    app.add_middleware(HttpMetrics, service="http-test")

    @app.get("/items/{item_id}")
    def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("bug")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/items/a").status_code == 200
    assert client.get("/items/b").status_code == 200
    assert client.get("/boom").status_code == 500
    assert client.get("/nowhere").status_code == 404

    def count(route: str, status: str) -> float:
        return float(HTTP_REQUESTS.labels("http-test", "GET", route, status)._value.get())

    assert count("/items/{item_id}", "200") == 2
    assert count("/boom", "500") == 1
    assert count("unmatched", "404") == 1


def test_money_events_count_their_fen_by_flow() -> None:
    def fen(flow: str) -> float:
        return float(MONEY_FEN.labels("money-test", flow)._value.get())

    published("money-test", "fx.commission.accrued", b'{"amount_fen": 2580}')
    published("money-test", "fx.commission.accrued", b'{"amount_fen": 100}')
    published("money-test", "fx.withdrawal.paid", b'{"amount_fen": 5000, "fee_fen": 0}')
    published("money-test", "fx.commission.released", b'{"amount_fen": 999}')
    assert fen("accrued") == 2680
    assert fen("withdrawn") == 5000
    assert fen("settled") == 0


def test_a_relay_batch_counts_what_one_by_one_would() -> None:
    def counted(service: str) -> tuple[float, float, float]:
        return (
            float(MONEY_FEN.labels(service, "accrued")._value.get()),
            float(EVENTS_PUBLISHED.labels(service, "fx.commission.accrued")._value.get()),
            float(EVENTS_PUBLISHED.labels(service, "fx.binding.created")._value.get()),
        )

    batch = [
        ("fx.commission.accrued", b'{"amount_fen": 2580}'),
        ("fx.binding.created", b'{"binding_id": "b1"}'),
        ("fx.commission.accrued", b'{"amount_fen": 0}'),
        ("fx.commission.accrued", None),
        ("fx.commission.accrued", b'{"amount_fen": 7}'),
    ]
    published_many("batch-test", batch)
    for ce_type, value in batch:
        published("single-test", ce_type, value)
    assert counted("batch-test") == counted("single-test") == (2587, 4, 1)


async def test_the_sweeper_exports_whether_it_holds_its_lease(tmp_path: Path) -> None:
    ticks: list[datetime] = []
    spec = ServiceSpec(
        name="sweep-test", topics=[], handlers={}, tables=[],
        on_tick=lambda uow, now: ticks.append(now),
    )  # fmt: skip
    url = f"sqlite:///{tmp_path / 'store.db'}"
    holder = ServiceRuntime(spec, ServiceSettings(database_url=url, sweep_interval_s=0.05))
    db.create_schema(holder.engine, [])
    assert db.try_lease(holder.engine, "sweeper", "another-replica", 60)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(holder._sweep_forever(), 0.3)
    assert LEADER.labels("sweep-test", "sweeper")._value.get() == 0
    assert not ticks
    db.release_lease(holder.engine, "sweeper", "another-replica")
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(holder._sweep_forever(), 0.3)
    assert LEADER.labels("sweep-test", "sweeper")._value.get() == 1
    assert ticks
    holder.engine.dispose()
