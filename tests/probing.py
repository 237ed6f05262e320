"""Run the probe service (tests/probe_service.py) as real processes, and inspect its store."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from fx_common.contracts.samples import SAMPLES
from fx_common.envelope import Event, make_event

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class Probe:
    """One probe service process."""

    def __init__(self, name: str, input_topic: str, output_topic: str, url: str) -> None:
        self.args = [name, input_topic, output_topic, url]
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "FX_KAFKA_SESSION_TIMEOUT_MS": "6000"}
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "probe_service.py"), *self.args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", f"probe did not start: {line!r}"

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(60) == 0, "graceful stop must exit 0"


def paid(order_id: str, buyer: str, at: datetime = T0) -> Event:
    data = {**SAMPLES["mall.order.paid"], "order_id": order_id, "buyer_id": buyer}
    return make_event("mall.order.paid", data, time=at)


def query(url: str, sql: str) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]
    finally:
        engine.dispose()


def effect_count(url: str) -> int:
    try:
        return int(query(url, "SELECT count(*) FROM probe_effect")[0][0])
    except Exception:
        return 0


async def wait_for(url: str, expected: int, timeout: float = 120) -> int:
    deadline = asyncio.get_running_loop().time() + timeout
    count = 0
    while asyncio.get_running_loop().time() < deadline:
        count = effect_count(url)
        if count >= expected:
            break
        await asyncio.sleep(0.25)
    await asyncio.sleep(1.0)  # let any duplicate that would appear, appear
    return effect_count(url)
