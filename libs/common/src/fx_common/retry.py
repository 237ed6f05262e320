"""Backoff shared by the consumer edge and the outbox relay."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


def backoff(attempt: int) -> float:
    """0.1 s, 0.2 s, 0.4 s … at most 10 s."""
    return float(min(0.1 * 2**attempt, 10.0))


async def retrying(
    start: Callable[[], Awaitable[object]], what: str, stopping: asyncio.Event
) -> None:
    """Call `start` until the broker answers (a service may start before its broker)."""
    attempt = 0
    while True:
        try:
            await start()
            return
        except KafkaError as exc:
            if stopping.is_set():
                raise
            log.warning("%s failed (%s); retrying", what, exc)
            await asyncio.sleep(backoff(attempt))
            attempt += 1
