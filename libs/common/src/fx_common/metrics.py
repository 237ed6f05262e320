"""Prometheus metrics shared by every service (labelled by service)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_CONSUMED = Counter("fx_records_consumed_total", "Records consumed", ["service", "topic"])
RECORDS_DUPLICATE = Counter(
    "fx_records_duplicate_total", "Records skipped by the inbox (same ce_id)", ["service"]
)
RECORDS_IGNORED = Counter(
    "fx_records_ignored_total", "Records of types this service does not handle", ["service"]
)
IGNORED_EVENTS = Counter(
    "fx_ignored_events_total",
    "Events ignored because their type is not part of the contract: the mall's types ignored "
    "on purpose and unknown types outside mall.order.* / mall.share.* (the first of each type "
    "is logged); reason: documented (the mall's types ignored on purpose) or outside_contract",
    ["service", "type", "reason"],
)
DLQ_RECORDS = Counter("fx_dlq_records_total", "Records dead-lettered", ["service", "error_type"])
BATCH_SECONDS = Histogram(
    "fx_batch_seconds",
    "Time to process one batch: decode, dedup, handlers, commit",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
HANDLER_SECONDS = Histogram(
    "fx_handler_seconds",
    "Handler latency per event (batch time divided over its events)",
    ["service"],
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
BATCH_RETRIES = Counter(
    "fx_batch_retries_total", "Batches retried after a transient failure", ["service"]
)
OUTBOX_BACKLOG = Gauge("fx_outbox_backlog", "Outbox rows not yet published", ["service"])
OUTBOX_PUBLISHED = Counter(
    "fx_outbox_published_total", "Outbox rows published", ["service", "topic"]
)
EVENTS_PUBLISHED = Counter(
    "fx_events_published_total",
    "Business events published, by type: bindings created, qualifications, commissions by "
    "state, withdrawals…",
    ["service", "type"],
)
CONSUMER_LAG = Gauge(
    "fx_consumer_lag", "High-water mark minus position", ["service", "topic", "partition"]
)
CLOCK_NOW = Gauge(
    "fx_clock_now_seconds",
    "The clock this replica applies (simulated or system), as unix seconds",
    ["service"],
)
