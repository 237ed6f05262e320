"""HTTP: the checkout's read routes (role `mall`) under load from wrk while the consumers run.

    uv run python benchmarks/http_bench.py [--duration S] [--connections C] [--rate R]
        [--save PATH] [--compare PATH]

referral-binding, qualification and commission run as processes (SQLite stores, the shared
Redis) in a fresh topic namespace. Stage: 100 distributors with shares, one paid order for each
of 1,000 buyers through them (so each buyer is bound), 200 users who applied (qualification, over
HTTP). Then, while orders keep arriving on `mall.orders.v1` at `--rate` per second (attributed by
referral-binding, consumed by qualification and commission), `wrk` (its own process, 2
threads) calls each route in turn for `--duration` seconds over `--connections` connections:
  discount       GET qualification /v1/distributors/{user}           (users who applied)
  binding owner  GET referral-binding /v1/customers/{buyer}/binding  (bound buyers)
  preview        GET commission /v1/products/{sku}/commission?price_fen=12800&category=oolong
Printed per route: requests/s, p50/p99 latency, answers other than 2xx, socket errors, the
events the consumers applied meanwhile, and one line tools can parse:
`http NAME: N req/s p99 X ms`. Saved as benchmarks/results/http-<stamp>.json and compared
with the previous run. wrk comes from Debian (deploy/install-deps.sh installs it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from fxbench import (
    JWT_SECRET,
    Service,
    distributors,
    machine,
    machine_note,
    namespace,
    now,
    paid,
    publish,
    save_and_compare,
    scalar,
    service_env,
    wait_until,
)

from fx_common.http import issue_token

BUYERS, APPLIED = 1000, 200
SERVICES = ("referral-binding", "qualification", "commission")
# route name → (service, path pattern with one %d, how many distinct values)
ROUTES = {
    "discount": ("qualification", "/v1/distributors/u-%d", APPLIED),
    "binding owner": ("referral-binding", "/v1/customers/c-%d/binding", BUYERS),
    "preview": (
        "commission",
        "/v1/products/tea-%d/commission?price_fen=12800&category=oolong",
        50,
    ),
}
LUA = """
local n = 0
init = function(args)
  pattern = args[1]
  count = tonumber(args[2])
end
request = function()
  n = n + 1
  return wrk.format("GET", string.format(pattern, n % count))
end
"""
UNPUBLISHED = "SELECT count(*) FROM fx_outbox WHERE published_at IS NULL"
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def get(port: int, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def apply_users(port: int) -> None:
    for k in range(APPLIED):
        token = issue_token(JWT_SECRET, f"u-{k}", "distributor")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/applications", data=b"{}", method="POST",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()


def millis(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * UNITS[unit]


def parse_wrk(output: str) -> dict[str, Any]:
    found = re.search(r"Requests/sec:\s+([\d.]+)", output)
    percentiles = dict(re.findall(r"^\s*(50|99)%\s+([\d.]+(?:us|ms|s|m))\s*$", output, re.M))
    if found is None or set(percentiles) != {"50", "99"}:
        raise RuntimeError(f"wrk printed no rate or no latency distribution:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: (.*)", output)
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        "requests_per_s": float(found.group(1)),
        "p50_ms": millis(percentiles["50"]),
        "p99_ms": millis(percentiles["99"]),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
    }


def wrk(port: int, route: str, token: str, duration: int, connections: int, script: Path) -> str:
    _, pattern, count = ROUTES[route]
    command = ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "10s",
               "-H", f"Authorization: Bearer {token}", "-s", str(script),
               f"http://127.0.0.1:{port}", "--", pattern, str(count)]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


async def feed(bootstrap: str, ns: str, rate: int, first: int, stop: asyncio.Event) -> int:
    """Paid orders of new buyers (numbered from `first`) at `rate` per second, in
    tenth-of-a-second bursts, until stop."""
    sent, started = 0, time.monotonic()
    while not stop.is_set():
        due = int((time.monotonic() - started) * rate)
        if due > sent:
            burst = range(first + sent, first + due)
            await publish(bootstrap, ns, [paid(i, buyers=10**9) for i in burst])
            sent = due
        await asyncio.sleep(0.1)
    return sent


class Stack:
    """The three services of the checkout's reads, staged."""

    def __init__(self, bootstrap: str, ns: str, workdir: Path) -> None:
        self.urls = {s: f"sqlite:///{workdir / (s + '.db')}" for s in SERVICES}
        self.services = {
            s: Service(s, service_env(bootstrap, ns, self.urls[s]), workdir / f"{s}.log")
            for s in SERVICES
        }

    async def stage(self, bootstrap: str, ns: str) -> None:
        for service in self.services.values():
            await asyncio.to_thread(service.wait_ready)
        await asyncio.to_thread(apply_users, self.services["qualification"].port)
        stage = distributors(100, now())
        await publish(bootstrap, ns, stage)
        await wait_until(self.urls["referral-binding"], "SELECT count(*) FROM fx_inbox", 200)
        await publish(bootstrap, ns, [paid(i, buyers=BUYERS) for i in range(BUYERS)])
        await wait_until(self.urls["commission"], "SELECT count(*) FROM fx_inbox", BUYERS)

    def count(self, sql: str) -> dict[str, int]:
        return {s: int(scalar(url, sql) or 0) for s, url in self.urls.items()}

    def applied(self) -> dict[str, int]:
        return self.count("SELECT count(*) FROM fx_inbox")

    def stop(self) -> None:
        for service in self.services.values():
            service.stop()


async def measure(
    stack: Stack, route: str, args: argparse.Namespace, ns: str, script: Path
) -> dict[str, Any]:
    service, pattern, _ = ROUTES[route]
    port, token = stack.services[service].port, issue_token(JWT_SECRET, "mall-checkout", "mall")
    status = await asyncio.to_thread(get, port, pattern % 1, token)
    if status != 200:
        raise RuntimeError(f"{route}: {pattern % 1} answered {status}")
    stop, before = asyncio.Event(), stack.applied()
    cpu_before = stack.services[service].cpu_seconds()
    first = 1_000_000 * (1 + list(ROUTES).index(route))  # new orders and buyers per route
    feeder = asyncio.create_task(feed(args.bootstrap, ns, args.rate, first, stop))
    output = await asyncio.to_thread(
        wrk, port, route, token, args.duration, args.connections, script
    )
    stop.set()
    published = await feeder
    after = stack.applied()
    cpu = stack.services[service].cpu_seconds() - cpu_before
    result = parse_wrk(output)
    result["service_cpu_seconds"] = cpu
    result["requests_per_cpu_s"] = result["requests"] / cpu if cpu > 0 else 0.0
    result["orders_published"] = published
    result["events_applied"] = {s: after[s] - before[s] for s in SERVICES}
    result["outbox_unpublished"] = stack.count(UNPUBLISHED)
    return result


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{'route':14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'per CPU s':>10} "
          f"{'non-2xx':>8} {'errors':>7}  events applied meanwhile, outbox unpublished at the end "
          "(referral-binding/qualification/commission)")  # fmt: skip
    for name, r in results.items():
        applied = "/".join(str(r["events_applied"][s]) for s in SERVICES)
        backlog = "/".join(str(r["outbox_unpublished"][s]) for s in SERVICES)
        errors = "yes" if r["socket_errors"] else "0"
        print(
            f"{name:14} {r['requests_per_s']:>8.0f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['requests_per_cpu_s']:>10.0f} "
            f"{r['non_2xx']:>8} {errors:>7}  {applied}, {backlog} "
            f"({r['orders_published']} orders published)"
        )
        if r["socket_errors"]:
            print(f"  {name} socket errors: {r['socket_errors']}")
    print(f"wrk: 2 threads, {args.connections} connections, {args.duration} s per route, on the "
          f"same machine as the services; orders fed at {args.rate}/s meanwhile. per CPU s: "
          "requests per CPU second of the serving process (its consumer's work included)"
          )  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=15, help="seconds per route")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--rate", type=int, default=200, help="orders/s fed to the consumers")
    parser.add_argument("--save", type=Path, help="JSON file of the results")
    parser.add_argument("--compare", type=Path, help="a saved run (default: the previous one)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("http_bench: wrk is missing (deploy/install-deps.sh installs it from Debian)")
    args.bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    load = machine()
    print(f"HTTP benchmark on {args.bootstrap}", flush=True)
    print(machine_note(load), flush=True)
    async with namespace(args.bootstrap, "http", 3) as ns:
        results = await run(args, ns)
    report(results, args)
    document = {"kind": "http", "duration": args.duration, "connections": args.connections,
                "rate": args.rate, "machine": load, "results": results}  # fmt: skip
    save_and_compare("http", document, "requests_per_s", args.save, args.compare)


async def run(args: argparse.Namespace, ns: str) -> dict[str, dict[str, Any]]:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "routes.lua"
        script.write_text(LUA)
        stack = Stack(args.bootstrap, ns, Path(tmp))
        try:
            await stack.stage(args.bootstrap, ns)
            for route in ROUTES:
                result = await measure(stack, route, args, ns, script)
                print(f"http {route}: {result['requests_per_s']:.0f} req/s "
                      f"p99 {result['p99_ms']:.1f} ms", flush=True)  # fmt: skip
                results[route] = result
        finally:
            await asyncio.to_thread(stack.stop)
    return results


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
