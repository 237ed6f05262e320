"""The inbox: one row per applied `ce_id` with a digest of what was applied.

An identical redelivery (same id, same content) is a no-op. The same id with other content —
an upstream reusing ids, e.g. after a restore — is dead-lettered as `duplicate_id_conflict`,
as a payment API answers an idempotency key reused with other parameters. The digest covers
what the handlers act on: type, time, subject and the validated `data` (so `1200.0` and
`1200`, or binary and structured mode, are the same content).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from aiokafka.structs import ConsumerRecord
from sqlmodel import Session

from fx_common import db
from fx_common.envelope import DecodeError, Event, rfc3339


def digest(event: Event) -> str:
    """A hex sha256 of the content of `event` the consumer applies."""
    head = f"{event.type}\n{rfc3339(event.time)}\n{event.subject or ''}\n".encode()
    return hashlib.sha256(head + event.data.model_dump_json().encode()).hexdigest()


def applied_digests(session: Session, ids: Sequence[str]) -> dict[str, str | None]:
    """`ce_id` → digest of the ids already in the inbox (`None`: applied before digests)."""
    return db.inbox_digests(session, ids)


def conflict(event: Event, seen: dict[str, str | None], content: str) -> DecodeError | None:
    """The dead-letter reason when `event.id` was applied with other content, else `None`."""
    before = seen.get(event.id)
    if before is None or before == content:
        return None
    return DecodeError(
        "duplicate_id_conflict",
        f"ce_id {event.id!r} was already applied with other content "
        f"(digest {before[:12]}…, this one {content[:12]}…): ids must not be reused",
    )


def inbox_row(
    event: Event, record: ConsumerRecord[Any, Any], content: str, now: datetime
) -> dict[str, Any]:
    return {
        "ce_id": event.id,
        "ce_type": event.type,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "processed_at": now,
        "digest": content,
    }
