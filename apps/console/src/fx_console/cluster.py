"""The cluster at a glance, from each service's own endpoints: `/readyz` (store, broker and
the clock it applies) and `/metrics` (consumer lag, the size of its dead-letter topic, records
dead-lettered since it started)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from fx_console.client import ApiFailure, Services
from fx_console.settings import SERVICES


@dataclass
class ServiceGlance:
    service: str
    ready: bool | None
    problem: str | None = None
    clock: dict[str, Any] | None = None
    lag: int | None = None
    dead_lettered: int | None = None
    dlq_size: int | None = None


def sums(metrics_text: str) -> tuple[int, int, int | None]:
    """(consumer lag over every partition, records dead-lettered since the process started,
    records its DLQ topic holds: None before the service's first read)."""
    lag = dead = 0.0
    size: float | None = None
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "fx_consumer_lag":
                lag += sample.value
            elif sample.name == "fx_dlq_records_total":
                dead += sample.value
            elif sample.name == "fx_dlq_size":
                size = (size or 0) + sample.value
    return int(lag), int(dead), None if size is None else int(size)


async def glance(services: Services, service: str) -> ServiceGlance:
    seen = ServiceGlance(service, ready=None)
    try:
        response = await services.clients[service].get("/readyz")
        body = response.json()
        seen.ready = response.status_code == 200
        seen.clock = body.get("clock")
        if not seen.ready:
            failing = [k for k, v in body.items() if v is False]
            seen.problem = "not ready: " + (", ".join(failing) or "see its log")
        metrics = await services.clients[service].get("/metrics")
        seen.lag, seen.dead_lettered, seen.dlq_size = sums(metrics.text)
    except (OSError, ValueError, ApiFailure) as exc:
        seen.problem = f"cannot be reached ({exc})"
    except Exception as exc:  # httpx errors: the page says so rather than failing
        seen.problem = f"cannot be reached ({type(exc).__name__}: {exc})"
    return seen


async def cluster(services: Services) -> list[ServiceGlance]:
    return list(await asyncio.gather(*(glance(services, s) for s in SERVICES)))
