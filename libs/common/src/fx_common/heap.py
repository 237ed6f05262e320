"""Garbage-collector settings of a process that applies batches (a service, a replay).

A batch allocates many short-lived objects (decoded events, contract models, row dicts);
CPython's default thresholds then run a young collection every 700 allocations and, every
hundred of those, a full one that walks every object the process holds — the modules, the
ORM's metadata, a replay's records read from Kafka. Freezing what is built so far moves it
out of the collector's sight, and a higher young-generation threshold collects less often.
Reference counting still frees everything acyclic at once; only reference cycles wait longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def settle() -> None:
    """Collect, freeze what survives (startup, records read), collect less often from now on."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
