"""Replay speed: `fxctl replay SERVICE` of each service's input topics into a fresh store.

    uv run python benchmarks/replay_bench.py [--events N] [--services a,b] [--save PATH]
        [--compare PATH]

Per service, in its own topic namespace on the broker: the service's inputs are published (a
stage — distributors and their shares for referral-binding — then N events of the same
workload as `make bench`), then `fxctl replay SERVICE --store <fresh SQLite>` runs as its own
process. Printed per service: records/s of the replay (reading the topics + applying them to
the fresh store, from fxctl's own timing line; the interpreter's start is not counted), the
process's wall time, and one line tools can parse: `replay NAME: N events/s`. The run is
saved as JSON under benchmarks/results/replay-<stamp>.json and compared with the previous one.

qualification's workload is attributed orders only (no recorded commands on
`fx.qualification.commands.v1`): its replay applies them to a store that knows no distributor, so
it measures the consume path only (docs/architecture.md, Replays).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fxbench import (
    REPO,
    attributed,
    distributors,
    machine,
    machine_note,
    namespace,
    now,
    paid,
    publish,
    save_and_compare,
    settled,
)

from fx_common.envelope import Event

TARGET = 10_000
TIMING = re.compile(
    r"replay took ([\d.]+) s \((\d+) records/s\): reading ([\d.]+) s, .*; ([\d.]+) CPU s"
)
REPLAYED = re.compile(r"replayed (\d+) record\(s\)")


def workload(service: str) -> tuple[list[Event], Callable[[int], Event]]:
    """The stage and the measured event of each service (those of `make bench`)."""
    stage = distributors(100, now()) if service == "referral-binding" else []
    measured: dict[str, Callable[[int], Event]] = {
        "referral-binding": paid,
        "qualification": attributed,
        "commission": attributed,
        "payout": settled,
    }
    return stage, measured[service]


def replay(bootstrap: str, ns: str, service: str, store: str) -> dict[str, Any]:
    command = [str(REPO / ".venv" / "bin" / "fxctl"), "--bootstrap", bootstrap,
               "--namespace", ns, "replay", service, "--store", store]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ})
    wall = time.monotonic() - started
    timing, replayed = TIMING.search(done.stdout), REPLAYED.search(done.stdout)
    if done.returncode != 0 or timing is None or replayed is None:
        raise RuntimeError(f"fxctl replay {service} failed:\n{done.stdout}\n{done.stderr}")
    records, seconds = int(replayed.group(1)), float(timing.group(1))
    return {
        "events": records,
        "seconds": seconds,
        "events_per_s": records / seconds,
        "read_seconds": float(timing.group(3)),
        "cpu_seconds": float(timing.group(4)),
        "events_per_cpu_s": records / float(timing.group(4)),
        "process_seconds": wall,
    }


async def run(bootstrap: str, service: str, events: int, workdir: Path) -> dict[str, Any]:
    async with namespace(bootstrap, "replay", 6) as ns:
        stage, measured = workload(service)
        await publish(bootstrap, ns, [*stage, *(measured(i) for i in range(events))])
        store = f"sqlite:///{workdir / (service + '.db')}"
        return await asyncio.to_thread(replay, bootstrap, ns, service, store)


def report(results: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'service':20} {'records':>8} {'events/s':>9} {'vs 10k':>7} {'read s':>7} "
          f"{'replay s':>9} {'CPU s':>6} {'per CPU s':>10} {'process s':>10}")  # fmt: skip
    for name, r in results.items():
        print(
            f"{name:20} {r['events']:>8} {r['events_per_s']:>9.0f} "
            f"{r['events_per_s'] / TARGET:>7.0%} {r['read_seconds']:>7.2f} {r['seconds']:>9.2f} "
            f"{r['cpu_seconds']:>6.2f} {r['events_per_cpu_s']:>10.0f} {r['process_seconds']:>10.2f}"
        )
    print(
        f"target: ≥ {TARGET:,} events/s per service (issue 15, item 5). per CPU s: records per "
        "CPU second of the replaying process — what one free core would give; process s: "
        "fxctl's whole run, the interpreter's start included"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--services", default="referral-binding,qualification,commission,payout")
    parser.add_argument("--save", type=Path, help="JSON file of the results")
    parser.add_argument("--compare", type=Path, help="a saved run (default: the previous one)")
    args = parser.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    load = machine()
    print(f"replay benchmark on {bootstrap}, {args.events} events per service", flush=True)
    print(machine_note(load), flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for service in args.services.split(","):
            result = await run(bootstrap, service, args.events, Path(tmp))
            print(f"replay {service}: {result['events_per_s']:.0f} events/s", flush=True)
            results[service] = result
    report(results)
    document = {"kind": "replay", "events": args.events, "machine": load, "results": results}
    save_and_compare("replay", document, "events_per_s", args.save, args.compare)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
