"""What `bench.py` prints and saves: one row per path with issue 15's targets, the stores side by
side, the growth, the JSON of a run and the comparison with a saved one."""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fxbench import now


@dataclass
class Result:
    name: str
    events: int
    seconds: float
    latencies_ms: list[float]
    peak_rss_mb: float
    cpu_seconds: float = float("nan")
    """CPU time (user + system) the consumer's process spent on the backlog."""
    store: str = "sqlite"
    contents: dict[str, int] = field(default_factory=dict)
    """Rows per table of the store at the end."""

    @property
    def cpu_us_per_event(self) -> float:
        return self.cpu_seconds / self.events * 1e6

    @property
    def rate(self) -> float:
        # One batch took the whole backlog (a tiny run): no span to divide by.
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]


TARGET_RATE, TARGET_SHARE, TARGET_P99_MS, TARGET_RSS_MB = 5_000, 0.5, 250.0, 200.0


def verdict(r: Result, limit: Result) -> str:
    """Which of issue 15's targets the row misses (rate, share, p99, RSS)."""
    missed = [
        label
        for label, met in (
            ("rate", r.rate >= TARGET_RATE),
            ("share", r.rate >= TARGET_SHARE * limit.rate),
            ("p99", r.percentile(99) <= TARGET_P99_MS),
            ("rss", r.peak_rss_mb < TARGET_RSS_MB),
        )
        if not met
    ]
    return "all met" if not missed else "misses " + ",".join(missed)


def report(limit: Result, results: list[Result], rate: int) -> None:
    print(f"\n{'path':32} {'store':8} {'events':>7} {'events/s':>9} {'vs limit':>8} "
          f"{'CPU µs/ev':>9} {'p50 ms':>8} {'p99 ms':>8} {'peak RSS':>9}  targets")  # fmt: skip
    for r in [limit, *results]:
        store = "-" if r is limit else r.store
        print(
            f"{r.name:32} {store:8} {r.events:>7} {r.rate:>9.0f} {r.rate / limit.rate:>8.0%} "
            f"{r.cpu_us_per_event:>9.0f} {r.percentile(50):>8.1f} {r.percentile(99):>8.1f} "
            f"{r.peak_rss_mb:>7.0f}MB  {'' if r is limit else verdict(r, limit)}"
        )
    print(f"\ntargets (issue 15): ≥ {TARGET_RATE:,} events/s per service on SQLite and "
          f"≥ {TARGET_SHARE:.0%} of the passthrough of the same run; p99 publication → effect "
          f"≤ {TARGET_P99_MS:.0f} ms at {rate} events/s paced; < {TARGET_RSS_MB:.0f} MB RSS. "
          "CPU µs/ev: CPU time of the consumer's process per event of the backlog (what the "
          "machine's other load does not change).")  # fmt: skip


def report_stores(results: list[Result]) -> None:
    stores = sorted({r.store for r in results}, key=lambda s: s != "sqlite")
    if len(stores) < 2:
        return
    by = {(r.name, r.store): r for r in results}
    print(f"\n{'service':20} " + " ".join(f"{s + ' ev/s':>14} {'p99 ms':>8}" for s in stores))
    for name in dict.fromkeys(r.name for r in results):
        cells = [by.get((name, s)) for s in stores]
        print(f"{name:20} " + " ".join(
            f"{c.rate:>14.0f} {c.percentile(99):>8.1f}" if c else f"{'-':>14} {'-':>8}"
            for c in cells
        ))  # fmt: skip


def report_growth(growth: dict[str, list[Result]]) -> None:
    if not growth:
        return
    print("\ngrowth (SQLite): events/s of a backlog of each size into a fresh store; "
          "target: the largest within 20% of the smallest")  # fmt: skip
    for name, runs in growth.items():
        cells = ", ".join(
            f"{r.events:,}: {r.rate:.0f}/s ({r.cpu_us_per_event:.0f} CPU µs/ev)" for r in runs
        )
        ratio = runs[-1].rate / runs[0].rate
        print(f"  {name:18} {cells}; largest/smallest {ratio:.0%} "
              f"({'met' if ratio >= 0.8 else 'not met'})")  # fmt: skip
        held = ", ".join(f"{t} {n:,}" for t, n in runs[-1].contents.items() if n)
        print(f"  {'':18} store at the end: {held}")


def as_json(r: Result) -> dict[str, Any]:
    return {
        "events": r.events,
        "seconds": r.seconds,
        "events_per_s": r.rate,
        "cpu_us_per_event": r.cpu_us_per_event,
        "p50_ms": r.percentile(50) if r.latencies_ms else None,
        "p99_ms": r.percentile(99) if r.latencies_ms else None,
        "peak_rss_mb": r.peak_rss_mb,
        "store": r.store,
        "store_rows": r.contents,
    }


def save(
    path: Path, args: argparse.Namespace, limit: Result, results: list[Result],
    growth: dict[str, list[Result]],
) -> None:  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "at": now().isoformat(),
        "events": args.events,
        "paced": args.paced,
        "rate": args.rate,
        "passthrough": as_json(limit),
        "services": {r.name: as_json(r) for r in results if r.store == "sqlite"},
        "postgres": {r.name: as_json(r) for r in results if r.store == "postgres"},
        "growth": {name: [as_json(r) for r in runs] for name, runs in growth.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nsaved {path}")


def compare(path: Path, limit: Result, results: list[Result]) -> None:
    before = json.loads(path.read_text())
    print(f"\ncompared with {path} ({before['at']}, {before['events']} events per path)")
    print(f"{'path':32} {'store':8} {'before/s':>9} {'now/s':>9} {'ratio':>7} "
          f"{'CPU µs/ev before':>17} {'now':>6}")  # fmt: skip
    rows = [("passthrough", "-", limit, before.get("passthrough"))]
    rows += [
        (r.name, r.store, r, before.get("services" if r.store == "sqlite" else r.store, {})
         .get(r.name))
        for r in results
    ]  # fmt: skip
    for name, store, result, old in rows:
        if old is None:
            print(f"{name:32} {store:8} {'-':>9} {result.rate:>9.0f} {'-':>7}")
            continue
        ratio = result.rate / old["events_per_s"]
        cpu = old.get("cpu_us_per_event")
        cpu_before = "-" if cpu is None else f"{cpu:.0f}"
        print(f"{name:32} {store:8} {old['events_per_s']:>9.0f} {result.rate:>9.0f} "
              f"{ratio:>7.0%} {cpu_before:>17} "
              f"{result.cpu_us_per_event:>6.0f}")  # fmt: skip
