"""Times and durations as people type them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fxctl.parsing import parse_duration, parse_time


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("45s", timedelta(seconds=45)),
        ("2w", timedelta(weeks=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1.5h", timedelta(minutes=90)),
        ("P7D", timedelta(days=7)),
        ("PT12H", timedelta(hours=12)),
        ("P1DT2H30M", timedelta(days=1, hours=2, minutes=30)),
        ("p2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "7x", "7d garbage", "P", "PT", "P1M", "P1Y", "0d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_times_are_rfc3339_with_a_timezone_returned_in_utc() -> None:
    assert parse_time("2026-03-02T09:00:00Z") == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert parse_time("2026-03-02T17:00:00+08:00") == datetime(2026, 3, 2, 9, tzinfo=UTC)
    with pytest.raises(ValueError, match="no timezone"):
        parse_time("2026-03-02T09:00:00")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("yesterday")


def test_fxctl_imports_no_service_package() -> None:
    """fxctl depends on fx_common and the contracts: a service's code is reached through its
    spec (`fxctl.replay_cmd.load_spec`), never imported by name."""
    import ast
    from pathlib import Path

    import fxctl

    services = {"referral_binding", "qualification", "commission", "payout"}
    found = []
    for path in Path(fxctl.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            found += [f"{path.name}: {n}" for n in names if n.split(".")[0] in services]
    assert not found, found
