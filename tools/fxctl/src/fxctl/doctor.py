"""`fxctl doctor`: one look at everything that loses money or time.

Checks the brokers, every topic and its replication, every service group's lag, the
dead-letter topics, each service's store (outbox backlog, relay/sweeper leases, migration
revision), the running services (answering, clocks agreeing) and payout's ledger
reconciliation. Prints what is wrong with the command that looks closer; exit 1 when
anything is.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from fx_common.contracts.topics import SERVICES
from fx_common.http import DEFAULT_PORTS
from fxctl import doctor_checks as checks
from fxctl.context import Target, run, target
from fxctl.doctor_checks import Finding
from fxctl.output import console, emit_json, fail


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        service, sep, url = value.partition("=")
        if not sep or service not in SERVICES or not url:
            fail(f"--{what} takes SERVICE=URL with SERVICE one of {', '.join(SERVICES)}: {value!r}")
        pairs[service] = url
    return pairs


def stores_dir(where: Target) -> Path:
    """`make up`'s store directory of the namespace (deploy/cluster.sh), else ./var."""
    made = Path(os.environ.get("FX_VAR", "var")) / "stores" / (where.namespace or "default")
    return made if made.is_dir() else Path("var")


def default_stores(var: Path) -> dict[str, str]:
    """Where the services keep their stores by default (DATABASE_URL unset)."""
    return {s: f"sqlite:///{var / (s.replace('-', '_') + '.db')}" for s in SERVICES}


async def diagnose(
    where: Target,
    stores: dict[str, str],
    endpoints: dict[str, str],
    *,
    max_lag: int,
    min_replicas: int,
    max_skew_s: float,
    reconcile_wait_s: float,
) -> list[Finding]:
    try:
        found = await checks.brokers_and_topics(where, min_replicas)
    except Exception as exc:  # nothing else on the broker can be checked
        hint = f"deploy/kafka/kafka.sh broker-api-versions --bootstrap-server {where.bootstrap}"
        return [checks.bad("brokers", where.bootstrap, f"unreachable: {exc!r}", hint)]
    found += await checks.lag_and_dead_letters(where, max_lag)
    now = datetime.now(UTC)
    for service, url in stores.items():
        found += await asyncio.to_thread(checks.store_findings, service, url, now)
    found += await checks.services(endpoints, max_skew_s)
    if "payout" in stores:
        found += await checks.reconciliation(where, stores["payout"], reconcile_wait_s)
    return found


def render(findings: list[Finding], verbose: bool) -> None:
    out = console()
    for finding in findings:
        if finding.ok and not verbose:
            continue
        mark = "[green]ok[/]  " if finding.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} [bold]{finding.check:<14}[/] ", end="")
        out.print(Text(f"{finding.subject}: {finding.message}"), soft_wrap=True)
        if finding.hint:
            out.print(Text(f"       → {finding.hint}"), soft_wrap=True)
    problems = [f for f in findings if not f.ok]
    checked = len({f.check for f in findings})
    if problems:
        out.print(f"[bold red]{len(problems)} problem(s)[/] in {len(findings)} findings")
    else:
        out.print(f"[green]all good[/]: {len(findings)} findings over {checked} checks")


def doctor(
    ctx: typer.Context,
    store: Annotated[
        list[str] | None,
        typer.Option(help="SERVICE=DATABASE_URL of a store (default: sqlite under --var)."),
    ] = None,
    var: Annotated[
        Path | None,
        typer.Option(
            envvar="FX_VAR_DIR",
            help="Where the SQLite stores live (default: what `make up` uses, "
            "$FX_VAR/stores/<namespace|default>, else ./var as a service run by hand).",
        ),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(help="SERVICE=http://host:port of a running service (default 8101-8104)."),
    ] = None,
    no_http: Annotated[bool, typer.Option(help="Do not check the running services.")] = False,
    max_lag: Annotated[int, typer.Option(help="Lag (records) that counts as a problem.")] = 1000,
    min_replicas: Annotated[int, typer.Option(help="Replication factor wanted.")] = 1,
    max_clock_skew: Annotated[float, typer.Option(help="Seconds clocks may differ.")] = 300.0,
    reconcile_wait: Annotated[
        float, typer.Option(help="Seconds to wait for payout to catch up before reconciling.")
    ] = 10.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show what is fine.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per finding.")] = False,
) -> None:
    """Check brokers, topics, lag, dead letters, outboxes, leases, migrations, clocks and the
    ledger; print what is wrong and the command that looks closer (exit 1 when anything is)."""
    where = target(ctx)
    stores = {**default_stores(var or stores_dir(where)), **_pairs(store or [], "store")}
    endpoints = {} if no_http else {
        **{s: f"http://127.0.0.1:{DEFAULT_PORTS[s]}" for s in SERVICES},
        **_pairs(service or [], "service"),
    }  # fmt: skip
    findings = run(
        where,
        diagnose(
            where,
            stores,
            endpoints,
            max_lag=max_lag,
            min_replicas=min_replicas,
            max_skew_s=max_clock_skew,
            reconcile_wait_s=reconcile_wait,
        ),
    )
    if as_json:
        for finding in findings:
            emit_json(asdict(finding))
    else:
        render(findings, verbose)
    if any(not f.ok for f in findings):
        raise typer.Exit(1)
