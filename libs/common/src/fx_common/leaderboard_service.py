"""A service's leaderboard: the feed after each commit, the watch that rebuilds a board
found empty or wrong, and the HTTP routes (`fx_common.leaderboard_http`).

The service owning a board (commission: `earned`, referral-binding: `customers`) declares
a `BoardWiring` in `ServiceSpec.extra["leaderboard"]`, wraps its `prepare` and `on_tick`
with `feeding` and adds `watch` to its tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import event as orm_event

from fx_common.leaderboard import Item
from fx_common.leaderboard_redis import BoardUnavailable, Leaderboard, Source
from fx_common.processing import Prepare, TickHandler, UnitOfWork

log = logging.getLogger(__name__)

GRACE_S = 2.0
"""How long a push may take after its commit before a board counting less than the store
is taken as behind."""


@dataclass(frozen=True)
class BoardWiring:
    board: Leaderboard
    source: Source
    unit: str
    """What a score counts: `fen` or `customers`."""
    check_interval_s: float
    items_of: Callable[[Any], Sequence[Item]]
    """The items the unit of work's repository counted."""

    @classmethod
    def of(
        cls,
        settings: Any,
        name: str,
        source: Source,
        unit: str,
        items_of: Callable[[Any], Sequence[Item]],
    ) -> BoardWiring:
        """The board `name` of a service with `settings` (Redis, namespace, the mall's offset)."""
        board = Leaderboard(
            settings.redis_url, settings.topic_namespace, name, settings.business_utc_offset
        )
        return cls(board, source, unit, settings.leaderboard_check_s, items_of)


def feeding(
    wiring: BoardWiring, prepare: Prepare | None, on_tick: TickHandler | None
) -> tuple[Prepare, TickHandler | None]:
    """`prepare` and `on_tick` that push the unit of work's items once it has committed."""

    def prepare_batch(uow: UnitOfWork, events: Any) -> None:
        _push_after_commit(uow, wiring)
        if prepare is not None:
            prepare(uow, events)

    def tick(uow: UnitOfWork, now: datetime) -> None:
        _push_after_commit(uow, wiring)
        assert on_tick is not None
        on_tick(uow, now)

    return prepare_batch, (tick if on_tick is not None else None)


def _push_after_commit(uow: UnitOfWork, wiring: BoardWiring) -> None:
    # After the commit, never before: a rolled-back batch (redone without a rejected event)
    # counted nothing. A push that fails leaves the board behind; `watch` rebuilds it.
    if "lb.feed" in uow.cache or not wiring.board.live:
        return
    uow.cache["lb.feed"] = True

    def push(_: Any) -> None:
        items = wiring.items_of(uow.repo) if uow._repo is not None else ()
        if not items:
            return
        try:
            wiring.board.push(list(items))
        except BoardUnavailable as exc:
            log.warning("leaderboard %s not fed (rebuilt later): %s", wiring.board.board, exc)

    orm_event.listen(uow.session, "after_commit", push, once=True)


async def watch(wiring: BoardWiring, now: Callable[[], datetime], engine: Any) -> None:
    """Feed the board from now on; rebuild it when empty or wrong, at start and every
    `check_interval_s`; delete the boards of periods gone by."""
    if not wiring.board.enabled:
        return
    wiring.board.live = True
    while True:
        try:
            await asyncio.to_thread(check_once, wiring, engine, now)
        except BoardUnavailable as exc:
            log.warning("leaderboard %s not checked: %s", wiring.board.board, exc)
        except Exception:
            log.exception("leaderboard %s check failed; next interval retries", wiring.board.board)
        await asyncio.sleep(wiring.check_interval_s)


def check_once(wiring: BoardWiring, engine: Any, now: Callable[[], datetime]) -> str:
    """Rebuild the board if it is empty, ahead of the store, or still behind it after the
    grace; what was found (`ok`, `lagging` caught up, or the state that was rebuilt)."""
    import time

    board = wiring.board
    status = board.status(engine, wiring.source)
    state = status.state
    if state == "lagging":
        time.sleep(GRACE_S)
        state = "ok" if board.board_items() >= status.store_items else "behind"
    if state in ("empty", "ahead", "behind"):
        rebuilt = board.rebuild(engine, wiring.source, now())
        log.info(
            "leaderboard %s was %s: rebuilt from the store",
            board.board,
            state,
            extra={"items": rebuilt.items, "total": rebuilt.total},
        )
    board.prune(now())
    return state


def watching(wiring: BoardWiring) -> Callable[[Any], Any]:
    """The `ServiceSpec.tasks` entry: `watch` with the runtime's clock and store."""

    def task(runtime: Any) -> Any:
        return watch(wiring, runtime.clock.now, runtime.engine)

    return task
