"""In-process cost of a service's batches, without a broker: where the time per event goes.

    uv run python benchmarks/batches.py SERVICE [--events N] [--batch 500] [--profile]

Feeds the bench's workload (benchmarks/bench.py) to the service's own batch processor on a
fresh SQLite store, 500 records a batch as the consumer takes them, and prints the CPU time per
event (not wall-clock: the machine is shared) of the first and last batches (does it grow with
the store?) and, with `--profile`, the functions that dominate (cProfile). The relay and Kafka
are not in it: `bench.py` measures them.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

from aiokafka.structs import ConsumerRecord

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("FX_JWT_SECRET", "bench-only-secret-for-local-benchmarks")

import bench

from fx_common import db, heap
from fx_common.contracts.registry import EVENT_TOPIC, key_for
from fx_common.envelope import Event, encode
from fx_common.migrations import ensure
from fx_common.runtime import processor_for

MODULES = {
    "referral-binding": "referral_binding.app",
    "qualification": "qualification.app",
    "commission": "commission.app",
    "payout": "payout.app",
}


def records(events: list[Event], first_offset: int) -> list[ConsumerRecord[bytes, bytes]]:
    out = []
    for n, event in enumerate(events):
        value, headers = encode(event)
        key = key_for(event.type, event.data).encode()
        out.append(
            ConsumerRecord(EVENT_TOPIC[event.type], 0, first_offset + n, 0, 0, key, value,
                           None, len(key), len(value), headers)
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("service", choices=sorted(MODULES))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/{args.service}.db"
        spec = importlib.import_module(MODULES[args.service]).SPEC
        engine = db.make_engine(os.environ["DATABASE_URL"])
        assert spec.migrations is not None
        ensure(engine, spec.migrations, auto=True)
        processor = processor_for(spec, engine)
        workload = bench.WORKLOADS[args.service]()
        setup = workload.setup()
        if setup:
            processor.process(records(setup, 0))
        measured = records([workload.measured(i) for i in range(args.events)], len(setup))
        heap.settle()  # as the service process does after startup (fx_common.http.serve)
        profiler = cProfile.Profile() if args.profile else None
        costs = []
        for start in range(0, len(measured), args.batch):
            chunk = measured[start : start + args.batch]
            began = time.process_time()
            if profiler is not None:
                profiler.enable()
            processor.process(chunk)
            if profiler is not None:
                profiler.disable()
            costs.append((time.process_time() - began) / len(chunk))
        tenth = max(1, len(costs) // 10)
        first, last = sum(costs[:tenth]) / tenth, sum(costs[-tenth:]) / tenth
        total = sum(costs) * args.batch
        print(
            f"{args.service}: {args.events} events, {args.events / total:.0f} events per "
            f"CPU second; CPU µs/event, first 10%: {first * 1e6:.0f}, last 10%: {last * 1e6:.0f}"
        )
        if profiler is not None:
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
