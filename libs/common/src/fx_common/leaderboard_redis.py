"""Leaderboards in Redis sorted sets, fed after the store commits, rebuilt from the store.

Keys, in the topic namespace, per board (`earned`, `customers`): `lb:<board>:<period>:<id>`
(a sorted set per period: `day:2026-12-06`, `week:2026-W49`, `month:2026-12`, `all:all`),
`lb:<board>:meta` (a hash: `items` counted, `total` of the deltas, `built_at` of the last
rebuild), `lb:<board>:keys` (the set of its period keys), `lb:<board>:seen:<item id>` (an
item already counted, kept two days), `lb:<board>:rebuilding` and `lb:<board>:pending`
(while a rebuild runs).

Scores are stored negated, so `ZRANGE` lists the highest first and equal scores by id,
ascending. A member whose score is 0 or less stays in the set (deltas from concurrent batches
may arrive in any order, and a sum is right only if nothing is dropped on the way) but is not
on the board: reads take the scores above 0 only.

- Feed (`push`): one script call per batch (per 500 items). An item is counted once: the
  script sets its `seen` key (NX) and only then adds its delta; a redelivered batch, or a
  retried call, adds nothing. During a rebuild, items go to the pending list instead.
- Rebuild (`rebuild`): the boards of the current window are computed from one consistent
  read of the store, written to temporary keys and swapped in by one script, which also
  takes the pending items the store read did not contain (by id) and applies them after.
- Status (`status`): `items` only grows, in the store and on the board, and an item is
  pushed after its commit: the board counting more than the store is wrong (ahead), fewer
  is wrong once in-flight pushes have landed (behind); no `built_at`: empty (flushed).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from fx_common.leaderboard import (
    BUCKETED,
    Item,
    Period,
    period_id,
    period_ids,
    scores_of,
    window_start,
)

SEEN_TTL_S = 2 * 24 * 3600
REBUILD_TTL_S = 600
RETRY_AFTER_S = 5.0
_CHUNK = 500

# KEYS: meta, pending, rebuilding, index, then per item: seen, day, week, month, all; then
# the distinct period keys (for the index).
# ARGV: seen ttl, force (1: skip the seen check), items, then per item: member, delta, encoded.
_FEED = """
local rebuilding = redis.call('EXISTS', KEYS[3]) == 1
local force = ARGV[2] == '1'
local n = tonumber(ARGV[3])
local counted = 0
for i = 5 + 5 * n, #KEYS do redis.call('SADD', KEYS[4], KEYS[i]) end
for i = 0, n - 1 do
  local k, a = 5 + i * 5, 4 + i * 3
  if force or redis.call('SET', KEYS[k], '1', 'NX', 'EX', ARGV[1]) then
    counted = counted + 1
    if rebuilding and not force then
      redis.call('RPUSH', KEYS[2], ARGV[a + 2])
    else
      local member, delta = ARGV[a], tonumber(ARGV[a + 1])
      for j = 1, 4 do
        redis.call('ZINCRBY', KEYS[k + j], -delta, member)
      end
      redis.call('HINCRBY', KEYS[1], 'items', 1)
      redis.call('HINCRBY', KEYS[1], 'total', delta)
    end
  end
end
return counted
"""

# KEYS: board, meta. ARGV: limit, member ('' for none).
_READ = """
local top = redis.call(
  'ZRANGE', KEYS[1], '-inf', '(0', 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[1]), 'WITHSCORES')
local mine, higher = false, false
if ARGV[2] ~= '' then
  mine = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if mine and tonumber(mine) >= 0 then mine = false end
  if mine then higher = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. mine) end
end
local members = redis.call('ZCOUNT', KEYS[1], '-inf', '(0')
return {top, mine, higher, redis.call('HGET', KEYS[2], 'built_at'), members}
"""

# KEYS: rebuilding, pending, meta, index, then n (temporary, live) pairs, then stale keys.
# ARGV: token, pending length read, n, items, total, built_at.
_SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return 0 end
local n = tonumber(ARGV[3])
redis.call('DEL', KEYS[4])
for i = 0, n - 1 do
  local temporary, live = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  if redis.call('EXISTS', temporary) == 1 then
    redis.call('RENAME', temporary, live)
    redis.call('PERSIST', live)
    redis.call('SADD', KEYS[4], live)
  else
    redis.call('DEL', live)
  end
end
for i = 5 + 2 * n, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[3], KEYS[1], KEYS[2])
redis.call('HSET', KEYS[3], 'items', ARGV[4], 'total', ARGV[5], 'built_at', ARGV[6])
return 1
"""


class BoardUnavailable(Exception):
    """Redis could not be reached (or answered an error)."""


class Source(Protocol):
    """What a service's store says about one board, read inside `snapshot(engine)`."""

    def recent(
        self, connection: sa.Connection, since: datetime
    ) -> Iterable[tuple[str, datetime, int]]:
        """(member, time, value) of the counted changes at or after `since`."""

    def totals(self, connection: sa.Connection) -> Mapping[str, int]:
        """Member → all-time score."""

    def items(self, connection: sa.Connection) -> int:
        """How many counted changes the store holds (the board counts as many)."""

    def present(self, connection: sa.Connection, ids: Sequence[str]) -> set[str]:
        """Which of these item ids the store holds."""


@contextmanager
def snapshot(engine: Engine) -> Iterator[sa.Connection]:
    """A connection whose reads all see one state of the store (SQLite: one read
    transaction; Postgres: REPEATABLE READ, read only)."""
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN")
        else:
            connection = connection.execution_options(isolation_level="REPEATABLE READ")
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        try:
            yield connection
        finally:
            connection.rollback()


@dataclass(frozen=True)
class Reading:
    as_of: datetime
    period_id: str
    top: list[tuple[str, int]]
    my_score: int | None
    my_rank: int | None
    members: int
    built_at: datetime | None


@dataclass(frozen=True)
class Status:
    state: str  # ok | empty | ahead | lagging | rebuilding
    board_items: int
    store_items: int
    built_at: datetime | None


@dataclass(frozen=True)
class Rebuilt:
    items: int
    total: int
    boards: int
    pending_applied: int
    rebuilt_at: datetime


class Leaderboard:
    """One board in Redis. `live` is set by the running service (`leaderboard_service`):
    a replay, which builds another store from the topics, feeds nothing."""

    def __init__(self, url: str, namespace: str, board: str, utc_offset: timedelta) -> None:
        self.board = board
        self.prefix = f"{namespace}lb:{board}:"
        self.utc_offset = utc_offset
        self.client = redis.Redis.from_url(
            url or "redis://unset", socket_timeout=2.0, socket_connect_timeout=2.0,
            decode_responses=True,
        )  # fmt: skip
        self.enabled = bool(url)
        """No Redis URL (tests of other things): the board neither feeds nor answers."""
        self.live = False
        self._down_until = 0.0
        self._feed = self.client.register_script(_FEED)
        self._read = self.client.register_script(_READ)
        self._swap = self.client.register_script(_SWAP)

    def key(self, period: Period, pid: str) -> str:
        return f"{self.prefix}{period.value}:{pid}"

    @property
    def meta(self) -> str:
        return self.prefix + "meta"

    @property
    def index(self) -> str:
        """The set of this board's period keys (no SCAN of the whole key space)."""
        return self.prefix + "keys"

    def _special(self, name: str) -> str:
        return self.prefix + name

    def push(self, items: Sequence[Item], *, force: bool = False) -> int:
        """Count the items not counted yet (one script call per 500); how many were."""
        counted = 0
        for start in range(0, len(items), _CHUNK):
            chunk = items[start : start + _CHUNK]
            keys = [self.meta, self._special("pending"), self._special("rebuilding"), self.index]
            args: list[Any] = [SEEN_TTL_S, "1" if force else "0", len(chunk)]
            periods: dict[str, None] = {}
            for item in chunk:
                ids = period_ids(item.at, self.utc_offset)
                boards = [self.key(p, ids[p]) for p in Period]
                periods.update(dict.fromkeys(boards))
                keys += [self._special("seen:" + item.id), *boards]
                args += [item.member, item.delta, _encode(item)]
            keys += list(periods)
            counted += int(self._call(self._feed, keys=keys, args=args))
        return counted

    def read(self, period: Period, now: datetime, limit: int, member: str | None = None) -> Reading:
        """The top `limit` of the period containing `now`, and `member`'s score and rank."""
        pid = period_id(period, now, self.utc_offset)
        top, mine, higher, built, members = self._call(
            self._read, keys=[self.key(period, pid), self.meta], args=[limit, member or ""]
        )
        pairs = [(top[i], -int(float(top[i + 1]))) for i in range(0, len(top), 2)]
        return Reading(
            as_of=now,
            period_id=pid,
            top=pairs,
            my_score=-int(float(mine)) if mine else None,
            my_rank=int(higher) + 1 if mine else None,
            members=int(members),
            built_at=_time(built),
        )

    def status(self, engine: Engine, source: Source) -> Status:
        """The board's count against the store's, read after it (see the module's doc)."""
        meta = self._call(lambda: self.client.hgetall(self.meta))
        rebuilding = self._call(lambda: self.client.exists(self._special("rebuilding")))
        with snapshot(engine) as connection:
            store_items = source.items(connection)
        board_items, built = int(meta.get("items", 0)), _time(meta.get("built_at"))
        if rebuilding:
            state = "rebuilding"
        elif built is None:
            state = "empty"
        elif board_items > store_items:
            state = "ahead"
        else:
            state = "ok" if board_items == store_items else "lagging"
        return Status(state, board_items, store_items, built)

    def board_items(self) -> int:
        return int(self._call(lambda: self.client.hget(self.meta, "items")) or 0)

    def rebuild(self, engine: Engine, source: Source, now: datetime) -> Rebuilt:
        """Recompute the boards of the window around `now` from the store and swap them in."""
        token = uuid.uuid4().hex
        pending, rebuilding = self._special("pending"), self._special("rebuilding")
        self._call(lambda: self.client.set(rebuilding, token, ex=REBUILD_TTL_S))
        self._call(lambda: self.client.delete(pending))
        temporary = f"{self.prefix}tmp:{token}:"
        with snapshot(engine) as connection:
            boards = scores_of(
                source.recent(connection, window_start(now, self.utc_offset)),
                source.totals(connection),
                self.utc_offset,
            )
            for period in BUCKETED:
                boards.setdefault((period, period_id(period, now, self.utc_offset)), {})
            items = source.items(connection)
            total = sum(boards[(Period.ALL, "all")].values())
            self._write_temporary(temporary, boards)
            live = [self.key(p, pid) for p, pid in boards]
            stale = [k for k in self._period_keys() if k not in set(live)]
            pairs = [k for p, pid in boards for k in (temporary + f"{p}:{pid}", self.key(p, pid))]
            left = self._swap_in(connection, source, token, pairs, stale, items, total, now)
        applied = self.push(left, force=True)
        return Rebuilt(items, total, len(boards), applied, now)

    def _swap_in(
        self, connection: sa.Connection, source: Source, token: str, pairs: list[str],
        stale: list[str], items: int, total: int, now: datetime,
    ) -> list[Item]:  # fmt: skip
        """Swap the temporary boards in once the pending list read is complete; the pending
        items the store read does not hold (they committed after it) are returned."""
        left: list[Item] = []
        read = 0
        pending, rebuilding = self._special("pending"), self._special("rebuilding")
        for _ in range(50):
            raw = self._call(self.client.lrange, pending, read, -1)
            arrived = [_decode(entry) for entry in raw]
            known = source.present(connection, [item.id for item in arrived])
            left += [item for item in arrived if item.id not in known]
            read += len(arrived)
            keys = [rebuilding, pending, self.meta, self.index, *pairs, *stale]
            args = [token, read, len(pairs) // 2, items, total, now.isoformat()]
            done = int(self._call(self._swap, keys=keys, args=args))
            if done == 1:
                return left
            if done == -1:
                raise BoardUnavailable("another rebuild took over, or this one ran too long")
        raise BoardUnavailable("the feed kept adding pending items; run the rebuild again")

    def _write_temporary(
        self, temporary: str, boards: Mapping[tuple[Period, str], Mapping[str, int]]
    ) -> None:
        if not self.enabled:
            raise BoardUnavailable("no Redis is configured (REDIS_URL)")
        pipe = self.client.pipeline(transaction=False)
        for (period, pid), scores in boards.items():
            members = list(scores.items())
            for start in range(0, len(members), 5000):
                chunk = {m: -score for m, score in members[start : start + 5000]}
                pipe.zadd(temporary + f"{period}:{pid}", chunk)
            # A rebuild that dies or loses to another leaves nothing behind for long.
            pipe.expire(temporary + f"{period}:{pid}", REBUILD_TTL_S)
        self._call(pipe.execute)

    def _period_keys(self) -> list[str]:
        return sorted(self._call(self.client.smembers, self.index))

    def prune(self, now: datetime) -> int:
        """Delete the boards of periods that ended before the current window."""
        oldest = {
            p: period_id(p, window_start(now, self.utc_offset), self.utc_offset) for p in BUCKETED
        }
        old = [
            key for key in self._period_keys()
            if (parts := key[len(self.prefix):].split(":", 1))[0] in oldest
            and parts[1] < oldest[Period(parts[0])]
        ]  # fmt: skip
        if old:
            self._call(self.client.delete, *old)
            self._call(self.client.srem, self.index, *old)
        return len(old)

    def _call(self, command: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Redis command. After a failure, Redis is left alone for a few seconds:
        an outage costs the consume path no timeouts (the watch rebuilds the board after)."""
        if not self.enabled:
            raise BoardUnavailable("no Redis is configured (REDIS_URL)")
        if time.monotonic() < self._down_until:
            raise BoardUnavailable("Redis failed a moment ago; not retried yet")
        try:
            return command(*args, **kwargs)
        except (redis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + RETRY_AFTER_S
            raise BoardUnavailable(str(exc)) from exc


def _encode(item: Item) -> str:
    return json.dumps([item.id, item.member, item.at.isoformat(), item.delta])


def _decode(raw: str) -> Item:
    item_id, member, at, delta = json.loads(raw)
    return Item(item_id, member, datetime.fromisoformat(at), int(delta))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value).astimezone(UTC) if value else None
