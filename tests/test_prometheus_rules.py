"""The alert rules are valid and behave as their unit tests say (promtool, Debian's
`prometheus` package, installed by deploy/install-deps.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yml"
# What issue 18 asks to be woken by, each with the alert that covers it.
REQUIRED = {
    "FxConsumerLagGrowing", "FxDeadLetters", "FxBatchesRetrying", "FxOutboxBacklog",
    "FxNoRelayLeader", "FxNoSweeperLeader", "FxClocksDisagree", "FxReconciliationMismatch",
    "FxIgnoredEventTypes", "FxHttp5xx", "FxServiceDown",
}  # fmt: skip


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: deploy/install-deps.sh installs Debian's prometheus"
    return subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_unit_tested_firing_and_has_a_runbook_entry() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = {rule["alert"] for rule in alert_rules()}
    assert names >= REQUIRED
    assert names <= fired, f"never shown firing: {sorted(names - fired)}"
    runbook = (REPO / "docs" / "runbook.md").read_text()
    for rule in alert_rules():
        anchor = rule["annotations"]["runbook"]
        assert anchor == f"docs/runbook.md#{rule['alert'].lower()}", rule["alert"]
        assert f"## {rule['alert']}" in runbook, f"{rule['alert']} missing from docs/runbook.md"
        assert rule["labels"]["severity"] in {"page", "ticket"}
