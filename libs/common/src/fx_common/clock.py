"""The clock port. Domain code never reads time itself: it is handed `now`.

`SystemClock` is production. `SimulatedClock` is moved by `fx.clock.set` events on
`fx.clock.v1` (like Stripe's test clocks): it only ever moves forward, so replaying the clock
topic gives the same sequence of "nows".
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """Starts at `start` and moves only when told, never backwards."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("the simulated clock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self.start = self._now
        self.moves = 0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> bool:
        """Move to `moment` if it is later than now; returns whether the clock moved."""
        with self._lock:
            if moment <= self._now:
                return False
            self._now = moment.astimezone(UTC)
            self.moves += 1
            return True
