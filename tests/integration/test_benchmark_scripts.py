"""The replay, scale-out and end-to-end benchmarks run end to end at a trivial size (figures
not checked: benchmarks are never timed tests). The HTTP benchmark needs a staged cluster and
wrk: it is run by hand (`make bench-http`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from demo.cluster import REPO

pytestmark = pytest.mark.integration


def bench(script: str, *args: str, env: dict[str, str]) -> str:
    command = [sys.executable, str(REPO / "benchmarks" / script), *args]
    done = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, **env}, timeout=300
    )
    assert done.returncode == 0, f"{script}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_replay_bench_replays_and_saves_its_run(bootstrap: str, tmp_path: Path) -> None:
    saved = tmp_path / "replay.json"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    out = bench("replay_bench.py", "--events", "20", "--services", "payout",
                "--save", str(saved), env=env)  # fmt: skip
    assert "replay payout: " in out and " events/s" in out
    run = json.loads(saved.read_text())
    assert run["kind"] == "replay" and run["results"]["payout"]["events"] == 20
    assert run["results"]["payout"]["cpu_seconds"] > 0


def test_scale_bench_drains_with_one_replica_on_postgres(bootstrap: str, tmp_path: Path) -> None:
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    saved = tmp_path / "scale.json"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "FX_TEST_POSTGRES_URL": server}
    out = bench("scale_bench.py", "--events", "30", "--services", "commission",
                "--replicas", "1", "--save", str(saved), env=env)  # fmt: skip
    assert "scale commission x1: " in out
    result = json.loads(saved.read_text())["results"]["commission x1"]
    assert result["events"] == 30 and result["events_per_s"] > 0


def test_bench_prints_targets_stores_and_growth(bootstrap: str, tmp_path: Path) -> None:
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    saved = tmp_path / "bench.json"
    env = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "FX_TEST_POSTGRES_URL": server}
    out = bench("bench.py", "--events", "40", "--paced", "10", "--rate", "50",
                "--services", "payout", "--stores", "sqlite,postgres", "--growth", "20,40",
                "--save", str(saved), env=env)  # fmt: skip
    assert "passthrough: " in out and "payout: " in out and "payout (postgres): " in out
    assert "targets (issue 15)" in out and "store at the end: " in out
    run = json.loads(saved.read_text())
    assert run["services"]["payout"]["store"] == "sqlite"
    assert run["postgres"]["payout"]["store"] == "postgres"
    assert run["services"]["payout"]["store_rows"]["po_ledger_entry"] == 50  # 40 + 10 paced
    assert [r["events"] for r in run["growth"]["payout"]] == [20, 40]
    # Measured from readiness: at this size the backlog may be gone by then (0 CPU).
    assert 0 <= run["services"]["payout"]["cpu_us_per_event"] < 1e6


def test_e2e_bench_carries_orders_to_the_ledger(bootstrap: str, tmp_path: Path) -> None:
    saved = tmp_path / "e2e.json"
    out = bench("e2e_bench.py", "--orders", "20", "--paced", "10", "--rate", "50",
                "--distributors", "2", "--customers", "5", "--save", str(saved),
                env={"KAFKA_BOOTSTRAP_SERVERS": bootstrap})  # fmt: skip
    assert "end-to-end: " in out and " orders/s" in out and "p99 " in out
    run = json.loads(saved.read_text())
    through, paced = run["results"]["end-to-end"], run["results"]["paced"]
    assert through["orders"] == 20 and through["orders_per_s"] > 0
    assert through["all_accrued_s"] <= through["clock_moved_s"] <= through["all_credited_s"]
    assert paced["orders"] == 10 and 0 < paced["p50_ms"] <= paced["p99_ms"] <= paced["max_ms"]
