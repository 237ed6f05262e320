"""Metrics for operators beyond the processing model's (`fx_common.metrics`): leadership of
the relay and the sweeper, HTTP requests, the money flowing, the ledger reconciliation.

The alert rules in `deploy/prometheus/alerts.yml` and the dashboard in `deploy/grafana/` are
written against these names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

from fx_common import metrics

LEADER = Gauge(
    "fx_leader",
    "1 while this replica holds the lease of the role (relay: the outbox relay; sweeper: the "
    "time-driven rules on the system clock), else 0",
    ["service", "role"],
)
HTTP_REQUESTS = Counter(
    "fx_http_requests_total",
    "HTTP requests answered, by route template and status code",
    ["service", "method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "fx_http_request_seconds",
    "HTTP request latency, by route template",
    ["service", "route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
MONEY_FEN = Counter(
    "fx_money_fen_total",
    "Fen carried by the money events this service published (accrued, settled, reversed "
    "commission; withdrawn = withdrawals paid). Counted when the relay publishes: an outbox "
    "row re-sent after a crash counts again",
    ["service", "flow"],
)
RECONCILIATION_DIFFERENCES = Gauge(
    "fx_reconciliation_differences",
    "Differences the last ledger reconciliation found (0 = every balance reconciles)",
    ["service", "check"],
)
RECONCILIATION_RUNS = Counter(
    "fx_reconciliation_runs_total",
    "Ledger reconciliations run, by result (ok, differences, error)",
    ["service", "check", "result"],
)

# ce_type → flow of money it records (its `amount_fen`).
MONEY_FLOWS = {
    "fx.commission.accrued": "accrued",
    "fx.commission.settled": "settled",
    "fx.commission.reversed": "reversed",
    "fx.withdrawal.paid": "withdrawn",
}


def published(service: str, ce_type: str, value: bytes | None) -> None:
    """Count one business event the relay published (and its fen, for money events)."""
    published_many(service, [(ce_type, value)])


def published_many(service: str, events: Iterable[tuple[str, bytes | None]]) -> None:
    """Count business events the relay published, (ce_type, value) each: one increment per
    type and per money flow (the relay publishes hundreds of events a batch)."""
    by_type: dict[str, int] = {}
    fen: dict[str, int] = {}
    for ce_type, value in events:
        by_type[ce_type] = by_type.get(ce_type, 0) + 1
        flow = MONEY_FLOWS.get(ce_type)
        if flow is None or value is None:
            continue
        amount = json.loads(value).get("amount_fen")
        if isinstance(amount, int) and amount > 0:
            fen[flow] = fen.get(flow, 0) + amount
    for ce_type, count in by_type.items():
        metrics.EVENTS_PUBLISHED.labels(service, ce_type).inc(count)
    for flow, amount in fen.items():
        MONEY_FEN.labels(service, flow).inc(amount)


def leader(service: str, role: str, held: bool) -> None:
    LEADER.labels(service, role).set(1 if held else 0)


def lag(service: str, kafka: Any, offsets: Mapping[Any, int]) -> None:
    """`fx_consumer_lag` of the partitions just committed (high-water mark minus offset)."""
    for tp, offset in offsets.items():
        high = kafka.highwater(tp)
        if high is not None:
            metrics.CONSUMER_LAG.labels(service, tp.topic, str(tp.partition)).set(
                max(high - offset, 0)
            )


# Dead-letter reasons of the envelope (`DecodeError`); domain refusals add their own.
DECODE_ERRORS = ("empty_value", "invalid_json", "invalid_envelope", "unsupported_version",
                 "contract_violation")  # fmt: skip
FLOWS_BY_TOPIC = {"fx.commissions.v1": ("accrued", "settled", "reversed"),
                  "fx.payouts.v1": ("withdrawn",)}  # fmt: skip


def initialise(service: str, outputs: Sequence[str]) -> None:
    """Export the counters an alert or a panel reads at 0 from the start: a series that
    appears with its first increment hides that increment from `rate()` and `increase()`."""
    metrics.BATCH_RETRIES.labels(service)
    metrics.RECORDS_IGNORED.labels(service)
    metrics.RECORDS_DUPLICATE.labels(service)
    for error_type in DECODE_ERRORS:
        metrics.DLQ_RECORDS.labels(service, error_type)
    for topic in outputs:
        for flow in FLOWS_BY_TOPIC.get(topic, ()):
            MONEY_FEN.labels(service, flow)
