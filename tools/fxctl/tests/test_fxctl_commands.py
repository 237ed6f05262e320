"""The pure parts of publish, replay, topics and the CLI's input errors (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka import TopicPartition
from typer.testing import CliRunner

from fxctl.cli import app
from fxctl.publish import build
from fxctl.replay_cmd import compare
from fxctl.topics_cmd import lag_of

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
NOWHERE = ["--bootstrap", "127.0.0.1:1"]


def test_publish_checks_type_topic_and_contract() -> None:
    event = build("mall.orders.v1", "mall.order.completed", {"order_id": "o", "buyer_id": "c"},
                  time=T0, event_id="e-1")  # fmt: skip
    assert (event.id, event.type, event.time, event.source) == (
        "e-1", "mall.order.completed", T0, "/fxctl",
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown event type 'mall.order.shipped'"):
        build("mall.orders.v1", "mall.order.shipped", {}, time=T0)
    with pytest.raises(ValueError, match=r"belongs on mall.orders.v1, not mall.shares.v1"):
        build("mall.shares.v1", "mall.order.completed", {}, time=T0)
    with pytest.raises(ValueError, match=r"contract violation for mall.order.completed: buyer_id"):
        build("mall.orders.v1", "mall.order.completed", {"order_id": "o"}, time=T0)


def test_replay_compare_reports_rows_only_on_one_side() -> None:
    a, b, c = ("e-a", "t", "k", b"1"), ("e-b", "t", "k", b"2"), ("e-b", "t", "k", b"3")
    same = compare([a, b], [b, a])
    assert same.identical and same.rows == 2
    differs = compare([a, b], [a, c])
    assert not differs.identical
    assert (differs.only_live, differs.only_replay) == ([b], [c])


def test_lag_counts_from_the_committed_offset_or_the_partition_start() -> None:
    p0, p1 = TopicPartition("t", 0), TopicPartition("t", 1)
    assert lag_of([p0, p1], {p0: 10, p1: 5}, {p0: 0, p1: 2}, {p0: 7}) == (7, 3 + 3)


def test_bad_input_fails_with_exit_2_before_touching_the_broker() -> None:
    runner = CliRunner()
    cases = [
        (["clock", "advance", "7 days"], "not a duration"),
        (["clock", "set", "2026-03-02T09:00:00"], "no timezone"),
        (["tail", "mall.orders.v1", "--since", "soon"], "not an RFC 3339 time"),
        (["publish", "mall.orders.v1", "--type", "mall.order.paid", "--data", "{"], "not JSON"),
        (["publish", "mall.orders.v1", "--type", "mall.order.paid", "--data", "{}"],
         "contract violation"),
        (["dlq", "list", "billing"], "unknown service 'billing'"),
        (["replay", "billing"], "unknown service 'billing'"),
    ]  # fmt: skip
    for args, message in cases:
        result = runner.invoke(app, [*NOWHERE, *args])
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
