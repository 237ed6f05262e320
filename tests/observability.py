"""The expressions operators look at: every dashboard panel's and every alert rule's."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "fenxiao.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
SCRAPE_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"


def panels() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(DASHBOARD.read_text())["panels"]
    return [p for p in found if p["type"] != "row"]


def dashboard_exprs() -> dict[str, str]:
    """'<panel title> / <refId>' → PromQL."""
    return {f"{p['title']} / {t['refId']}": t["expr"] for p in panels() for t in p["targets"]}


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (`fx_*` and `up`)."""
    names = set(re.findall(r"\b(fx_[a-z_]+)", expr))
    if re.search(r"\bup\{", expr):
        names.add("up")
    return names
