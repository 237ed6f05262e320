"""The dashboard, the scrape configuration and the compose profile that provisions them are
consistent and parse (promtool; no server). Their queries returning data from the running
services is tests/integration/test_observability.py."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from tests.observability import (
    DATASOURCES,
    REPO,
    RULES,
    SCRAPE_CONFIG,
    alert_rules,
    dashboard_exprs,
    panels,
)  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: deploy/install-deps.sh installs Debian's prometheus"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, check=False)


def test_every_panel_reads_the_provisioned_prometheus_and_its_queries_parse(
    tmp_path: Path,
) -> None:
    uid = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]["uid"]
    for panel in panels():
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"]["uid"] == uid and t["expr"] for t in panel["targets"])
    exprs = dashboard_exprs()
    # promtool parses PromQL offline only inside rule files: one recording rule per query.
    rules = [{"record": f"panel:{n}", "expr": expr} for n, expr in enumerate(exprs.values())]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "panels", "rules": rules}]}))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_shows_what_issue_18_asks_for() -> None:
    exprs = " ".join(dashboard_exprs().values())
    for metric in (
        "fx_records_consumed_total", "fx_consumer_lag", "fx_batch_seconds_bucket",
        "fx_dlq_records_total", "fx_outbox_backlog", "fx_http_requests_total",
        "fx_http_request_seconds_bucket", "fx_money_fen_total",
    ):  # fmt: skip
        assert metric in exprs, metric
    for flow in ("accrued", "settled", "reversed", "withdrawn"):
        assert f'flow="{flow}"' in exprs, flow


def test_the_scrape_configuration_is_valid_and_loads_the_alert_rules(tmp_path: Path) -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    shutil.copy(RULES, tmp_path / "alerts.yml")
    config["rule_files"] = [str(tmp_path / "alerts.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout
    ports = {c["names"][0]: c["port"] for c in config["scrape_configs"][0]["dns_sd_configs"]}
    assert ports == {"referral-binding": 8101, "qualification": 8102, "commission": 8103,
                     "payout": 8104}  # fmt: skip


def test_compose_provisions_prometheus_and_grafana_only_in_the_observability_profile() -> None:
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"], name
        for mount in services[name]["volumes"]:
            source = mount.split(":")[0]
            assert (REPO / source).exists(), f"{name} mounts {source}, which does not exist"
    assert services["grafana"]["image"].startswith("${FX_GRAFANA_IMAGE:-")
    others = [s for n, s in services.items() if n not in {"prometheus", "grafana"}]
    assert not any("observability" in s.get("profiles", []) for s in others)
