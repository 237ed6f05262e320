"""OpenTelemetry traces of the processing model and the HTTP API.

Enabled in a service process when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: spans go over OTLP/HTTP (protobuf) to that
collector. Unset, nothing is created and every hook below is a plain call.

One event's trace crosses the services through the CloudEvents `traceparent`:

    consume <topic>   (consumer; parent: the traceparent the event carries)
      └ handle <ce_type>
          └ publish <topic>   (producer, by the outbox relay; the record sent carries ITS
                               traceparent, so the next service's consume span is its child)

A batch is one span of its own (`batch <service>`, linked from every consume span) with the
store transaction (`transaction`: decode, dedup, handlers, store commit) and the offset commit
(`commit offsets`) as children: a batch mixes many traces, so it belongs to none of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

T = TypeVar("T")
Headers = list[tuple[str, bytes]]

_PROPAGATOR = TraceContextTextMapPropagator()
_state: dict[str, Any] = {}


def endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


def configure(service: str, exporter: SpanExporter | None = None) -> bool:
    """Install the OTLP exporter for this process when an endpoint is configured (or the
    given exporter, e.g. an in-memory one in tests)."""
    if exporter is None and not endpoint():
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    _state["provider"] = provider
    _state["tracer"] = provider.get_tracer("fx_common")
    return True


def shutdown() -> None:
    """Export what is buffered (the service is stopping)."""
    provider = _state.pop("provider", None)
    _state.pop("tracer", None)
    if provider is not None:
        provider.shutdown()


def tracer() -> Tracer | None:
    found: Tracer | None = _state.get("tracer")
    return found


def instrument_app(app: Any) -> None:
    """FastAPI server spans (probes and /metrics excluded)."""
    provider = _state.get("provider")
    if provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=provider, excluded_urls="healthz,readyz,metrics"
    )


def remote(traceparent: str | None) -> Context | None:
    return _PROPAGATOR.extract({"traceparent": traceparent}) if traceparent else None


def traceparent_of(span: Span) -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent")


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the active span, hex, or None."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def outgoing(traceparent: str | None) -> str | None:
    """The traceparent an event published now carries: the active span's when tracing (the
    handle span of its cause, or an HTTP request's), else its cause's unchanged."""
    if tracer() is None:
        return traceparent
    span = trace.get_current_span()
    if not span.get_span_context().is_valid:
        return traceparent
    return traceparent_of(span) or traceparent


def handle(
    service: str, topic: str, event: Any, dispatch: Callable[[Any, Any], bool], uow: Any
) -> bool:
    """`dispatch(uow, event)` inside the event's consume and handle spans."""
    active = tracer()
    if active is None:
        return dispatch(uow, event)
    batch = trace.get_current_span().get_span_context()
    links = [Link(batch)] if batch.is_valid else []
    attributes = {
        "messaging.system": "kafka",
        "messaging.destination.name": topic,
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_type": event.type,
        "fx.service": service,
    }
    with (
        active.start_as_current_span(
            f"consume {topic}",
            context=remote(event.traceparent),
            kind=SpanKind.CONSUMER,
            links=links,
            attributes=attributes,
        ),
        active.start_as_current_span(f"handle {event.type}") as span,
    ):
        handled = dispatch(uow, event)
        span.set_attribute("fx.handled", handled)
        return handled


@asynccontextmanager
async def batch(service: str, records: Mapping[Any, Sequence[Any]]) -> AsyncIterator[None]:
    """The span of one consumed batch (a root: it mixes many traces)."""
    active = tracer()
    if active is None:
        yield
        return
    count = sum(map(len, records.values()))
    with active.start_as_current_span(
        f"batch {service}",
        context=Context(),
        attributes={"fx.service": service, "messaging.batch.message_count": count},
    ):
        yield


async def step(name: str, work: Awaitable[T]) -> T:
    """Await `work` inside a child span `name` of the active span."""
    active = tracer()
    if active is None:
        return await work
    with active.start_as_current_span(name):
        return await work


async def in_thread(name: str, work: Callable[..., T], *args: Any) -> T:
    """`asyncio.to_thread(work, *args)` inside a child span `name` (spans the work opens
    in the thread are its children: the context is copied)."""
    return await step(name, asyncio.to_thread(work, *args))


def publishing(service: str, topic: str, headers: Headers, spans: list[Span]) -> Headers:
    """Start the producer span of one outbox row (child of the traceparent it was staged
    with) and return the headers to send, carrying the producer span's traceparent."""
    active = tracer()
    if active is None:
        return headers
    staged = _header(headers, "traceparent")
    span = active.start_span(
        f"publish {topic}",
        context=remote(staged),
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": topic,
            "messaging.message.id": _header(headers, "ce_id") or "",
            "fx.service": service,
        },
    )
    spans.append(span)
    sent = traceparent_of(span)
    if sent is None:
        return headers
    kept = [(k, v) for k, v in headers if k != "traceparent"]
    return [*kept, ("traceparent", sent.encode())]


def new_spans() -> list[Span]:
    return []


def end(spans: Sequence[Span]) -> None:
    for span in spans:
        span.end()


def _header(headers: Sequence[tuple[str, bytes]], name: str) -> str | None:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return None
