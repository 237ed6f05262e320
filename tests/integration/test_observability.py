"""The dashboard and the alert rules against a real Prometheus (Debian's package) scraping the
four services while the demo scenario runs.

- every dashboard panel's query parses and returns series;
- every alert rule's expression parses, and every metric it reads has series (an alert's
  expression itself returns series only while it fires);
- alerts fire for real, evaluated by Prometheus from the rule file: a poison record →
  FxDeadLetters, another system's event type → FxIgnoredEventTypes, a stopped service →
  FxServiceDown. The rule file is loaded as shipped except
  that each `for:` is shortened to 1s (a test cannot wait the production minutes); the
  expressions and their windows are unchanged;
- `fxctl doctor` passes on the healthy cluster and names the dead letter afterwards.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from demo.cluster import Cluster
from demo.scenario import SHARER, Scenario
from fx_common.contracts.topics import MALL_ORDERS, SERVICES, dlq_topic
from fxctl.cli import app
from tests.kafka_helpers import publish
from tests.observability import RULES, alert_rules, dashboard_exprs, metric_names
from tests.ports import free_port, free_ports
from tests.prometheus_server import Prometheus

pytestmark = pytest.mark.integration


def doctor(cluster: Cluster) -> tuple[int, str]:
    args = ["--bootstrap", cluster.bootstrap, "--namespace", cluster.namespace, "doctor"]
    for service in SERVICES:
        args += ["--store", f"{service}={cluster.database_url(service)}"]
        args += ["--service", f"{service}=http://127.0.0.1:{cluster.ports[service]}"]
    result = CliRunner().invoke(app, [*args, "--reconcile-wait", "10", "--verbose"])
    return result.exit_code, result.stdout


async def pay_the_withdrawal(scenario: Scenario) -> None:
    """The demo's withdrawal is approved; ops marks it paid, so money is also withdrawn."""
    ops = scenario.token("ops-1", "ops")
    async with httpx.AsyncClient(timeout=10) as http:
        url = scenario.url("payout", "/v1/withdrawals")
        listed = (await http.get(url, headers=ops, params={"status": "approved"})).json()
        (withdrawal,) = [w for w in listed["withdrawals"] if w["distributor_id"] == SHARER]
        paid = await http.post(
            f"{url}/{withdrawal['withdrawal_id']}/mark-paid", headers=ops,
            json={"transfer_ref": "alipay-demo-1"},
        )  # fmt: skip
        assert paid.status_code == 200, paid.text


async def test_every_panel_and_rule_evaluates_and_two_alerts_fire(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    rules = tmp_path / "alerts.yml"
    rules.write_text(re.sub(r"(?m)^(\s+)for: .*$", r"\1for: 1s", RULES.read_text()))
    cluster = Cluster(
        bootstrap, tmp_path, namespace=f"obs-{unique}.",
        extra_env={"FX_CLOCK": "simulated", "FX_RECONCILE_INTERVAL_S": "2"},
    )  # fmt: skip
    # Ports of our own range, checked free now (the default ephemeral ones may collide).
    cluster.ports = dict(zip(cluster.ports, free_ports(4, 38500, 38900), strict=True))
    targets = {s: f"127.0.0.1:{p}" for s, p in cluster.ports.items()}
    with Prometheus(tmp_path, free_port(39090, 39190), targets, rules) as prometheus:
        cluster.start_all()
        try:
            scenario = Scenario(cluster, say=lambda _: None)
            await scenario.run()
            await pay_the_withdrawal(scenario)
            await check_the_healthy_cluster(cluster, prometheus)
            await check_a_dead_letter_fires(cluster, prometheus)
            check_every_expression(prometheus)
            check_a_stopped_service_fires(cluster, prometheus)
        finally:
            cluster.stop_all()


async def check_the_healthy_cluster(cluster: Cluster, prometheus: Prometheus) -> None:
    def withdrawn() -> list[dict[str, object]]:
        return prometheus.query('fx_money_fen_total{flow="withdrawn"} > 0')

    prometheus.wait_for("the paid withdrawal scraped", withdrawn)
    # A clock move reaches the services a moment apart: with `for:` at 1s that skew fires
    # FxClocksDisagree briefly (5 minutes in production). Once all have it, nothing fires.
    prometheus.wait_for("no alert firing", lambda: not prometheus.firing() or None, timeout=60)
    values = {r["value"][1] for r in prometheus.query("fx_clock_now_seconds")}
    assert len(values) == 1, values
    code, out = await asyncio.to_thread(doctor, cluster)
    assert code == 0, out
    assert "all good" in out
    assert "clocks agree within" in out  # fx_clock_now_seconds of the four services
    assert "reconciliation payout: " in out and "no difference" in out


def headers(ce_id: str, ce_type: str) -> list[tuple[str, bytes]]:
    return [
        ("ce_specversion", b"1.0"), ("ce_id", ce_id.encode()), ("ce_type", ce_type.encode()),
        ("ce_source", b"/mall/test"), ("ce_time", b"2026-03-05T09:00:00Z"),
        ("content-type", b"application/json"),
    ]  # fmt: skip


async def check_a_dead_letter_fires(cluster: Cluster, prometheus: Prometheus) -> None:
    """A poison record (bad JSON) and an event of another system (outside the contract)."""
    poison = (
        b"o-poison",
        b'{"order_id": "o-poison", "lines": "not',
        headers("p-1", "mall.order.paid"),
    )
    foreign = (b"a-1", b'{"audit": "x"}', headers("a-1", "acme.audit.logged"))
    await publish(cluster.bootstrap, cluster.namespace + MALL_ORDERS, [], raw=[poison, foreign])

    def fired(name: str) -> list[dict[str, Any]]:
        return [
            a for a in prometheus.firing()
            if a["labels"]["alertname"] == name and a["labels"]["service"] == "referral-binding"
        ]  # fmt: skip

    (alert,) = prometheus.wait_for("FxDeadLetters firing", lambda: fired("FxDeadLetters"))
    assert alert["labels"]["error_type"] == "invalid_json"
    assert alert["annotations"]["runbook"] == "docs/runbook.md#fxdeadletters"
    (ignored,) = prometheus.wait_for("FxIgnoredEventTypes", lambda: fired("FxIgnoredEventTypes"))
    assert ignored["labels"]["type"] == "acme.audit.logged"
    code, out = await asyncio.to_thread(doctor, cluster)
    assert code == 1, out
    dlq = cluster.namespace + dlq_topic("referral-binding")
    assert f"{dlq}: 1 dead letter(s)" in out
    assert "→ fxctl dlq list referral-binding" in out


def check_every_expression(prometheus: Prometheus) -> None:
    # increase()/rate() need two samples of a series: a counter that appeared a scrape ago (the
    # ignored event just published) has a series one scrape later, so give each query a moment.
    for name, expr in dashboard_exprs().items():
        prometheus.wait_for(
            f"a series for {name!r} ({expr})", lambda e=expr: prometheus.query(e), 30
        )
    for rule in alert_rules():
        prometheus.query(rule["expr"])  # parses and evaluates
        for metric in metric_names(rule["expr"]):
            assert prometheus.query(f'{{__name__="{metric}"}}'), f"{rule['alert']}: no {metric}"


def check_a_stopped_service_fires(cluster: Cluster, prometheus: Prometheus) -> None:
    cluster.stop("payout")

    def payout_down() -> list[dict[str, object]]:
        return [
            a for a in prometheus.firing()
            if a["labels"]["alertname"] == "FxServiceDown" and a["labels"]["service"] == "payout"
        ]  # fmt: skip

    (alert,) = prometheus.wait_for("FxServiceDown firing", payout_down)
    assert alert["labels"]["severity"] == "page"
    assert not [
        a for a in prometheus.firing()
        if a["labels"]["alertname"] == "FxServiceDown" and a["labels"]["service"] != "payout"
    ]  # fmt: skip
