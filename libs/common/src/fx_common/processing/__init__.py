"""The processing model of docs/architecture.md, as one reusable piece.

    Kafka batch ──> decode ──> one DB transaction: inbox dedup + handlers + outbox rows
                                     │ commit
                                     └──> commit offsets per partition ──> wake the relay
    outbox relay (one per service, by lease) ──> idempotent producer ──> mark published

A crash anywhere replays at most the uncommitted batch; the inbox turns the replay into a
no-op, and published events carry deterministic ids, so downstream inboxes dedup re-sends.
"""

from fx_common.processing.batch import (
    CLOCK_SET,
    BatchOutcome,
    BatchProcessor,
    Handler,
    Prepare,
    TickHandler,
)
from fx_common.processing.handlers import Keys, On
from fx_common.processing.relay import OutboxRelay
from fx_common.processing.unit_of_work import Rejected, UnitOfWork

__all__ = [
    "CLOCK_SET",
    "BatchOutcome",
    "BatchProcessor",
    "Handler",
    "Keys",
    "On",
    "OutboxRelay",
    "Prepare",
    "Rejected",
    "TickHandler",
    "UnitOfWork",
]
