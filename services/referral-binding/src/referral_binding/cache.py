"""The hot read path "who is this buyer bound to now" (order checkout asks it), in Redis.

Redis is never the source of truth. A cached answer is used only while it is still true by
the clock; on a miss, or whenever Redis is unreachable, the answer comes from the store.

Per customer, two keys in the topic namespace: `rb:binding:<customer>` (the answer, with a
short TTL) and `rb:binding:<customer>:gen` (a generation counter). The consume path, after
its transaction commits, deletes the answer and increments the generation of every customer
whose bindings it changed. A reader reads both in one round trip and trusts the answer only
when it was computed under the current generation; it tags what it stores with the
generation it read *before* reading the store. So a reader that read the store just before
a commit and writes its (now stale) answer just after the invalidation leaves an answer
tagged with an old generation, which the next reader ignores.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis

from referral_binding.domain.bindings import protected_at

log = logging.getLogger(__name__)

_RETRY_AFTER_S = 5.0
_GENERATION_TTL_MS = 7 * 24 * 3600 * 1000
_FORGET_CHUNK = 1000
# KEYS: answer, generation, answer, generation, …: delete each answer, bump its generation.
_FORGET = """
for i = 1, #KEYS, 2 do
  redis.call('DEL', KEYS[i])
  redis.call('INCR', KEYS[i + 1])
  redis.call('PEXPIRE', KEYS[i + 1], ARGV[1])
end
return #KEYS / 2
"""


@dataclass(frozen=True)
class Answer:
    """The binding protecting a customer at the moment it was computed (JSON of the API's
    `BindingPublic`), or none; with none, `next_start` is when a known binding begins."""

    binding: dict[str, Any] | None
    next_start: datetime | None = None

    def holds_at(self, now: datetime) -> bool:
        """Whether the answer is still true at `now` by the passing of time alone."""
        if self.binding is None:
            return self.next_start is None or now < self.next_start
        released_at = self.binding["released_at"]
        return protected_at(
            _time(self.binding["bound_at"]),
            _time(self.binding["protected_until"]),
            _time(released_at) if released_at is not None else None,
            now,
        )

    def dumps(self, generation: int) -> str:
        next_start = self.next_start.isoformat() if self.next_start is not None else None
        return json.dumps({"gen": generation, "binding": self.binding, "next_start": next_start})


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class BindingCache:
    """`url` empty or `ttl_s` 0: disabled (every read goes to the store)."""

    def __init__(self, url: str, namespace: str, ttl_s: float) -> None:
        self.prefix = f"{namespace}rb:binding:"
        self.ttl_ms = int(ttl_s * 1000)
        self.client: redis.Redis | None = None
        if url and self.ttl_ms > 0:
            self.client = redis.Redis.from_url(
                url, socket_timeout=0.25, socket_connect_timeout=0.25
            )
        self._down_until = 0.0

    def key(self, customer_id: str) -> str:
        return self.prefix + customer_id

    def lookup(self, customer_id: str, now: datetime, load: Callable[[], Answer]) -> Answer:
        """The cached answer if it is current and still true at `now`, else `load()`'s."""
        generation = 0
        cached = self._call(lambda c: c.mget(self.key(customer_id), self.key(customer_id) + ":gen"))
        if cached is not None:
            raw, stored_generation = cached
            generation = int(stored_generation or 0)
            if raw is not None:
                entry = json.loads(raw)
                answer = Answer(entry["binding"], _maybe_time(entry["next_start"]))
                if entry["gen"] == generation and answer.holds_at(now):
                    return answer
        answer = load()
        if cached is not None:
            value = answer.dumps(generation)
            self._call(lambda c: c.set(self.key(customer_id), value, px=self.ttl_ms))
        return answer

    def invalidate(self, customer_ids: Iterable[str]) -> None:
        """Forget the customers' answers (call after the change is committed)."""
        customers = sorted(set(customer_ids))
        if not customers:
            return

        def forget(client: redis.Redis) -> None:
            # One script call per chunk, not three commands per customer: a batch of orders
            # changes hundreds of customers, and packing each command cost more than the rest.
            script = client.register_script(_FORGET)
            for start in range(0, len(customers), _FORGET_CHUNK):
                keys = []
                for customer_id in customers[start : start + _FORGET_CHUNK]:
                    keys += [self.key(customer_id), self.key(customer_id) + ":gen"]
                script(keys=keys, args=[_GENERATION_TTL_MS], client=client)

        # Unreachable Redis: an answer cached there stays at most its TTL (and is used only
        # while true by the clock); a restarted Redis has forgotten everything anyway.
        self._call(forget)

    def _call(self, command: Callable[[redis.Redis], Any]) -> Any:
        """Run `command`; None when disabled or Redis fails (then skip it for a few seconds,
        so an outage costs neither latency nor errors)."""
        if self.client is None or time.monotonic() < self._down_until:
            return None
        try:
            return command(self.client)
        except (redis.RedisError, OSError) as exc:
            self._down_until = time.monotonic() + _RETRY_AFTER_S
            log.warning("redis unavailable, reading the store instead: %s", exc)
            return None


def _maybe_time(value: str | None) -> datetime | None:
    return _time(value) if value is not None else None
