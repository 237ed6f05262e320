"""What each running service's clock reads (`GET /v1/clock`), and waiting for a move to reach
all of them: publishing `fx.clock.set` only says the broker has it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from fx_common.contracts.topics import SERVICES
from fx_common.http import DEFAULT_PORTS
from fxctl.output import fail
from fxctl.parsing import parse_time


@dataclass(frozen=True)
class Reading:
    service: str
    url: str
    now: datetime | None = None  # None: the service did not answer
    mode: str = ""
    moves: int = 0
    error: str = ""


def endpoints(values: list[str] | None) -> dict[str, str]:
    """The services to ask: 127.0.0.1 on the default ports, overridden by SERVICE=URL values."""
    found = {s: f"http://127.0.0.1:{DEFAULT_PORTS[s]}" for s in SERVICES}
    for value in values or []:
        service, sep, url = value.partition("=")
        if not sep or service not in SERVICES or not url:
            fail(
                f"--service takes SERVICE=URL with SERVICE one of {', '.join(SERVICES)}: {value!r}"
            )
        found[service] = url
    return found


def read(service: str, url: str, timeout: float = 3.0) -> Reading:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/clock", timeout=timeout) as answer:
            body = json.loads(answer.read())
        return Reading(service, url, parse_time(body["now"]), body["mode"], int(body["moves"]))
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        return Reading(service, url, error=str(exc))


def read_all(urls: dict[str, str]) -> list[Reading]:
    return [read(service, url) for service, url in urls.items()]


def wait_until(
    urls: dict[str, str],
    moment: datetime,
    timeout_s: float,
    *,
    reader: Callable[[dict[str, str]], list[Reading]] = read_all,
) -> list[Reading]:
    """Poll the services until every one reads `moment` or later, or the time is up; the last
    readings either way (the caller tells which services lag)."""
    deadline = time.monotonic() + timeout_s
    while True:
        readings = reader(urls)
        if not lagging(readings, moment) or time.monotonic() >= deadline:
            return readings
        time.sleep(0.2)


def lagging(readings: list[Reading], moment: datetime) -> list[Reading]:
    return [r for r in readings if r.now is None or r.now < moment]


def describe(reading: Reading) -> str:
    if reading.now is None:
        return f"{reading.service}: {reading.url} does not answer ({reading.error})"
    return (
        f"{reading.service}: {reading.now.isoformat().replace('+00:00', 'Z')} "
        f"({reading.mode}, {reading.moves} move(s))"
    )
