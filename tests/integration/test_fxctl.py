"""fxctl against the real broker: every verb, with its output checked (not just exit codes).

Each test runs in its own topic namespace; the commands run in-process through typer's
CliRunner (`tail --follow` runs as a real process, since it only ends when records arrive).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from demo.cluster import REPO, Cluster
from fx_common.contracts.topics import SERVICES
from fx_common.envelope import rfc3339
from fxctl.cli import app
from fxctl.simulate import MallConfig, generate
from tests.kafka_helpers import header, publish, read_all

pytestmark = pytest.mark.integration

FXCTL = REPO / ".venv" / "bin" / "fxctl"
# Recent event times: the services' sweepers run on the system clock.
T = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


@dataclass
class Fx:
    bootstrap: str
    namespace: str

    def args(self, *args: str) -> list[str]:
        return ["--bootstrap", self.bootstrap, "--namespace", self.namespace, *args]

    def __call__(self, *args: str, stdin: str | None = None, code: int = 0) -> Result:
        result = CliRunner().invoke(app, self.args(*args), input=stdin)
        assert result.exit_code == code, (
            f"fxctl {' '.join(args)}: exit {result.exit_code} (wanted {code})\n"
            f"{result.output}\n{result.exception!r}"
        )
        return result

    def json(self, *args: str) -> list[dict[str, Any]]:
        lines = self(*args, "--json").stdout.splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def wait_json(
        self, *args: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float = 60
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.json(*args)
            if until(rows):
                return rows
            if time.monotonic() > deadline:
                raise TimeoutError(f"fxctl {' '.join(args)} never satisfied the wait: {rows}")
            time.sleep(0.5)

    def publish(self, topic: str, ce_type: str, data: dict[str, Any], at: datetime) -> str:
        args = ["publish", topic, "--type", ce_type, "--data", json.dumps(data)]
        event_id: str = self(*args, "--time", rfc3339(at)).stdout.strip()
        return event_id

    def topic(self, name: str) -> str:
        return self.namespace + name


@pytest.fixture
def fx(bootstrap: str, unique: str) -> Fx:
    return Fx(bootstrap, f"fxctl-{unique}.")


def paid(order_id: str, buyer: str, amount: int = 25800, **extra: Any) -> dict[str, Any]:
    line = {"line_id": "l-1", "sku": "tea-oolong", "category": "oolong", "quantity": 2}
    return {
        "order_id": order_id,
        "buyer_id": buyer,
        "currency": "CNY",
        "lines": [line | {"paid_amount_fen": amount}],
    } | extra


def test_publish_and_tail_show_decoded_events_filtered_and_as_json(fx: Fx) -> None:
    ids = [
        fx.publish("mall.orders.v1", "mall.order.paid", paid("o-1", "c-1"), T),
        fx.publish(
            "mall.orders.v1", "mall.order.completed", {"order_id": "o-1", "buyer_id": "c-1"},
            T + timedelta(minutes=1),
        ),
        fx(
            "publish", "mall.orders.v1", "--type", "mall.order.paid", "--structured",
            "--data", json.dumps(paid("o-2", "c-1")), "--time", rfc3339(T + timedelta(minutes=2)),
        ).stdout.strip(),
    ]  # fmt: skip
    poison = (b"c-1", b"not json", [("ce_type", b"mall.order.paid")])
    asyncio.run(publish(fx.bootstrap, fx.topic("mall.orders.v1"), [], raw=[poison]))

    rows = fx.json("tail", "mall.orders.v1", "--from-beginning")
    # One buyer, one partition: the records come back in the order they were published.
    assert [r["id"] for r in rows[:3]] == ids
    types = ["mall.order.paid", "mall.order.completed", "mall.order.paid"]
    assert [r["type"] for r in rows[:3]] == types
    first = rows[0]
    assert first["topic"] == fx.topic("mall.orders.v1") and first["key"] == "c-1"
    assert first["time"] == rfc3339(T) and first["source"] == "/fxctl"
    assert first["data"] == paid("o-1", "c-1")
    assert rows[2]["data"]["order_id"] == "o-2"  # structured mode decodes the same way
    assert len(rows) == 4 and rows[3]["error"].startswith("invalid_envelope")
    assert rows[3]["raw"] == "not json"

    tail = ["tail", "mall.orders.v1", "--from-beginning"]
    assert [r["id"] for r in fx.json(*tail, "--type", "mall.order.completed")] == [ids[1]]
    # The undecodable record matches on its ce_type header too.
    assert [r["id"] for r in fx.json(*tail, "--type", "mall.order.p*")] == [ids[0], ids[2], None]
    # The poison record has no ce_time: it is filtered on its Kafka timestamp (now).
    window = [
        "--since",
        rfc3339(T + timedelta(minutes=1)),
        "--until",
        rfc3339(T + timedelta(hours=1)),
    ]
    assert [r["id"] for r in fx.json(*tail, *window)] == ids[1:]
    assert fx.json(*tail, "--key", "c-2") == []
    assert [r["id"] for r in fx.json(*tail, "--limit", "2")] == ids[:2]

    text = fx(*tail).stdout
    assert f"id={ids[0]}" in text and "order_id=o-1 buyer_id=c-1 currency=CNY lines=[1]" in text
    assert "mall.order.completed" in text and "UNDECODABLE invalid_envelope" in text
    assert text.index(ids[0]) < text.index(ids[1]) < text.index(ids[2])
    # From the end without --follow there is nothing to show.
    assert fx("tail", "mall.orders.v1").stdout == ""


def test_tail_follow_prints_events_published_after_it_started(fx: Fx) -> None:
    fx.publish("mall.shares.v1", "mall.share.created", {"share_id": "s-0", "sharer_id": "u"}, T)
    follow = ["tail", "mall.shares.v1", "--follow", "--limit", "1", "--json"]
    proc = subprocess.Popen([FXCTL, *fx.args(*follow)], stdout=subprocess.PIPE)
    sent: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            share = {"share_id": f"s-{len(sent) + 1}", "sharer_id": "u"}
            sent.append(fx.publish("mall.shares.v1", "mall.share.created", share, T))
            time.sleep(1)
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    printed = json.loads(out.decode().strip())
    assert printed["id"] in sent  # not the record that was there before it started
    assert printed["type"] == "mall.share.created"


def test_publish_refuses_what_violates_the_contract(fx: Fx) -> None:
    bad = paid("o-1", "c-1") | {"currency": "USD"}
    refused = fx("publish", "mall.orders.v1", "--type", "mall.order.paid",
                 "--data", json.dumps(bad), code=2)  # fmt: skip
    assert "contract violation for mall.order.paid: currency: Input should be 'CNY'" in (
        refused.output
    )
    misplaced = fx("publish", "mall.shares.v1", "--type", "mall.order.paid",
                   "--data", json.dumps(paid("o-1", "c-1")), code=2)  # fmt: skip
    assert "mall.order.paid belongs on mall.orders.v1, not mall.shares.v1" in misplaced.output
    unknown = fx("publish", "mall.orders.v1", "--type", "mall.order.shipped", "--data", "{}",
                 code=2)  # fmt: skip
    assert "unknown event type 'mall.order.shipped'" in unknown.output

    completed = {"order_id": "o-1", "buyer_id": "c-9"}
    event_id = fx("publish", "mall.orders.v1", "--type", "mall.order.completed", "--id", "e-42",
                  stdin=json.dumps(completed)).stdout.strip()  # fmt: skip
    assert event_id == "e-42"
    rows = fx.json("tail", "mall.orders.v1", "--from-beginning")
    assert [(r["id"], r["key"], r["data"]) for r in rows] == [("e-42", "c-9", completed)]


def test_clock_show_set_advance_and_never_back(fx: Fx) -> None:
    assert fx("clock", "show").stdout.strip() == "not set"
    moved = fx("clock", "set", "2026-03-02T09:00:00Z").stdout
    assert "simulated now: 2026-03-02T09:00:00Z (was not set)" in moved
    assert fx("clock", "show").stdout.strip() == "simulated now: 2026-03-02T09:00:00Z"
    assert "simulated now: 2026-03-09T09:00:00Z (was 2026-03-02T09:00:00Z)" in (
        fx("clock", "advance", "7d").stdout
    )
    assert "simulated now: 2026-03-09T21:00:00Z" in fx("clock", "advance", "PT12H").stdout

    back = fx("clock", "set", "2026-03-05T00:00:00Z", code=2)
    assert "never moves back: it is 2026-03-09T21:00:00Z, refusing 2026-03-05T00:00:00Z" in (
        back.output
    )
    assert fx("clock", "show").stdout.strip() == "simulated now: 2026-03-09T21:00:00Z"
    assert "nothing published" in fx("clock", "set", "2026-03-09T21:00:00Z").stdout

    moves = fx.json("tail", "fx.clock.v1", "--from-beginning")
    assert {(m["type"], m["key"], m["source"]) for m in moves} == {
        ("fx.clock.set", "clock", "/fxctl")
    }
    assert [datetime.fromisoformat(m["data"]["now"]) for m in moves] == [
        datetime(2026, 3, 2, 9, tzinfo=UTC),
        datetime(2026, 3, 9, 9, tzinfo=UTC),
        datetime(2026, 3, 9, 21, tzinfo=UTC),
    ]
    assert [m["time"] for m in moves] == [m["data"]["now"] for m in moves]


def test_trace_shows_the_journey_of_an_order_and_of_a_user_in_event_time(fx: Fx) -> None:
    share = {"share_id": "s-1", "sharer_id": "u-1"}
    refund = {"refund_id": "r-1", "lines": [{"line_id": "l-1", "refund_amount_fen": 100}]}
    ids = {"order_id": "o-1", "buyer_id": "c-1"}
    # Published out of event-time order, across two topics.
    fx.publish("mall.orders.v1", "mall.order.completed", ids, T + timedelta(days=5))
    fx.publish("mall.orders.v1", "mall.order.paid", paid("o-2", "c-2"), T + timedelta(days=1))
    fx.publish("mall.orders.v1", "mall.order.refunded", ids | refund, T + timedelta(days=2))
    fx.publish("mall.orders.v1", "mall.order.paid", paid("o-1", "c-1", share_id="s-1"),
               T + timedelta(days=1))  # fmt: skip
    fx.publish("mall.shares.v1", "mall.share.visited", share | {"visitor_id": "c-1"},
               T + timedelta(minutes=10))  # fmt: skip
    fx.publish("mall.shares.v1", "mall.share.created", share, T)

    order = fx.json("trace", "o-1")
    assert [e["type"] for e in order] == [
        "mall.order.paid", "mall.order.refunded", "mall.order.completed",
    ]  # fmt: skip
    assert [e["time"] for e in order] == [rfc3339(T + timedelta(days=d)) for d in (1, 2, 5)]
    customer = fx.json("trace", "c-1")
    assert [e["type"] for e in customer] == [
        "mall.share.visited", "mall.order.paid", "mall.order.refunded", "mall.order.completed",
    ]  # fmt: skip
    assert [e["type"] for e in fx.json("trace", "s-1")] == [
        "mall.share.created", "mall.share.visited", "mall.order.paid",
    ]  # fmt: skip

    table = fx("trace", "o-1").stdout
    assert "o-1: 3 event(s)" in table and "o-2" not in table
    positions = [table.index(t) for t in ("order.paid", "order.refunded", "order.completed")]
    assert positions == sorted(positions)
    assert "no event mentions 'o-404'" in fx("trace", "o-404").stdout


def consumed(rows: list[dict[str, Any]], fx: Fx, topic: str) -> bool:
    """The referral-binding group has committed everything on `topic`."""
    state = next((r for r in rows if r["topic"] == fx.topic(topic)), None)
    group = fx.topic("fx-referral-binding")
    return state is not None and any(
        g["group"] == group and g["lag"] == 0 and g["committed"] > 0 for g in state["groups"]
    )


@pytest.fixture
def referral_binding(fx: Fx, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(fx.bootstrap, tmp_path, namespace=fx.namespace)
    cluster.start("referral-binding")
    try:
        cluster.wait_ready("referral-binding")
        yield cluster
    finally:
        cluster.stop_all()


def test_dlq_topics_and_replay_with_the_referral_binding_service(
    fx: Fx, referral_binding: Cluster, tmp_path: Path
) -> None:
    live = referral_binding.database_url("referral-binding")
    started = {"user_id": "u-1", "deadline": rfc3339(T + timedelta(days=30)), "required_orders": 3}
    fx.publish("fx.qualification.v1", "fx.distributor.assessment_started", started,
               T - timedelta(hours=1))  # fmt: skip
    # One step at a time: the story is about fxctl, not about cross-topic arrival order.
    fx.wait_json("topics", until=lambda rows: consumed(rows, fx, "fx.qualification.v1"))
    share = {"share_id": "s-1", "sharer_id": "u-1"}
    fx.publish("mall.shares.v1", "mall.share.created", share, T)
    fx.publish("mall.shares.v1", "mall.share.visited", share | {"visitor_id": "c-1"},
               T + timedelta(minutes=1))  # fmt: skip
    fx.wait_json("tail", "fx.bindings.v1", "--from-beginning", until=lambda rows: len(rows) == 1)
    paid_id = fx.publish("mall.orders.v1", "mall.order.paid", paid("o-1", "c-1"),
                         T + timedelta(minutes=10))  # fmt: skip
    poison = (b"c-1", json.dumps(paid("o-bad", "c-1") | {"currency": "USD"}).encode(),
              [("ce_specversion", b"1.0"), ("ce_id", b"poison-1"),
               ("ce_type", b"mall.order.paid"), ("ce_source", b"/mall/test"),
               ("ce_time", rfc3339(T).encode()),
               ("content-type", b"application/json")])  # fmt: skip
    asyncio.run(publish(fx.bootstrap, fx.topic("mall.orders.v1"), [], raw=[poison]))

    # dlq list: the poison record with its error and where it came from.
    letters = fx.wait_json("dlq", "list", "referral-binding", until=lambda rows: len(rows) == 1)
    letter = letters[0]
    assert letter["error_type"] == "contract_violation"
    assert "currency" in letter["error_message"]
    assert (letter["ce_id"], letter["ce_type"], letter["key"]) == (
        "poison-1", "mall.order.paid", "c-1",
    )  # fmt: skip
    assert letter["original_topic"] == fx.topic("mall.orders.v1")
    listed = fx("dlq", "list", "referral-binding").stdout
    assert "1 dead letter(s)" in listed and "contract_violation" in listed
    assert f"mall.orders.v1 {letter['original_partition']}@{letter['original_offset']}" in listed

    # dlq show: every header and the value.
    shown = fx("dlq", "show", "referral-binding", str(letter["offset"]),
               "--partition", str(letter["partition"])).stdout  # fmt: skip
    for expected in ("fx_error_type", "contract_violation", "fx_original_offset", "poison-1",
                     '"currency": "USD"', '"order_id": "o-bad"'):  # fmt: skip
        assert expected in shown, expected

    # The service processed the good events: the order is attributed through the binding.
    attributed = fx.wait_json(
        "tail", "fx.attributions.v1", "--from-beginning",
        until=lambda rows: any(r["type"] == "fx.order.attributed" for r in rows),
    )  # fmt: skip
    assert attributed[0]["data"]["distributor_id"] == "u-1"
    journey = fx.json("trace", "o-1")
    assert journey[0]["id"] == paid_id, journey
    assert "fx.order.attributed" in [e["type"] for e in journey[1:]]

    # topics: the service group has consumed everything (lag 0), DLQ included in the list.
    group = fx.topic("fx-referral-binding")

    def caught_up(rows: list[dict[str, Any]]) -> bool:
        orders = next(r for r in rows if r["topic"] == fx.topic("mall.orders.v1"))
        return any(g["group"] == group and g["lag"] == 0 for g in orders["groups"])

    states = {s["topic"]: s for s in fx.wait_json("topics", until=caught_up)}
    orders = states[fx.topic("mall.orders.v1")]
    assert orders["end"] == 2 and orders["partitions"] == 3
    assert [(g["group"], g["committed"], g["lag"]) for g in orders["groups"]] == [(group, 2, 0)]
    assert states[fx.topic("fx.dlq.referral-binding.v1")]["end"] == 1
    table = fx("topics").stdout
    assert fx.topic("fx.dlq.referral-binding.v1") in table and group in table

    # replay: a fresh store rebuilt from offset 0 has the live outbox, byte for byte.
    rebuilt = f"sqlite:///{tmp_path / 'replay-1.db'}"
    replayed = fx("replay", "referral-binding", "--store", rebuilt, "--compare", live).stdout
    assert "replayed 5 record(s)" in replayed and "1 dead-lettered" in replayed
    assert "identical:" in replayed and "match the live store" in replayed
    timing = r"replay took [\d.]+ s \(\d+ records/s\): reading [\d.]+ s, .* CPU s \(\d+ records per"
    assert re.search(timing, replayed), replayed
    again = fx("replay", "referral-binding", "--store", rebuilt, code=2)
    assert "a replay goes into a fresh store" in again.output

    # dlq replay: the record goes back to its topic without the error headers; still poison,
    # it is dead-lettered again.
    resent = fx("dlq", "replay", "referral-binding").stdout
    assert f"→ {fx.topic('mall.orders.v1')}" in resent and "ce_id=poison-1" in resent
    assert "1 record(s) re-sent" in resent
    letters = fx.wait_json("dlq", "list", "referral-binding", until=lambda rows: len(rows) == 2)
    assert letters[1]["original_offset"] != letters[0]["original_offset"]
    records = asyncio.run(read_all(fx.bootstrap, fx.topic("mall.orders.v1"), expect=3))
    back = max(records, key=lambda r: r.timestamp)
    assert header(back, "ce_id") == "poison-1" and back.key == b"c-1"
    assert not [k for k, _ in back.headers if k.startswith("fx_")]

    # A store that has fallen behind differs from a rebuild: exit 1 with the rows.
    differs = fx("replay", "referral-binding", "--store", f"sqlite:///{tmp_path / 'replay-2.db'}",
                 "--compare", rebuilt, code=1).stdout  # fmt: skip
    assert "differences: 0 row(s) only in the live store, 1 only in the replay" in differs
    assert "replay only: ce_id=None" in differs


def test_simulate_publishes_the_story_it_promises(fx: Fx, tmp_path: Path) -> None:
    cluster = Cluster(fx.bootstrap, tmp_path, namespace=fx.namespace)
    cluster.start("qualification")
    try:
        cluster.wait_ready("qualification")
        out = fx(
            "simulate", "--distributors", "2", "--customers", "6", "--orders", "8",
            "--rate", "200", "--seed", "11", "--start", rfc3339(T), "--refund-ratio", "0.25",
            "--qualification-url", f"http://127.0.0.1:{cluster.ports['qualification']}",
            "--jwt-secret", cluster.jwt_secret,
        ).stdout  # fmt: skip
        story = generate(
            MallConfig(distributors=2, customers=6, orders=8, start=T, seed=11, refund_ratio=0.25)
        )
        summary = re.search(r"events published\s*│\s*(\d+)", out)
        assert summary is not None and int(summary.group(1)) == len(story), out
        assert "2 distributor(s) applied and confirmed as candidates" in out
        published = [
            *fx.json("tail", "mall.shares.v1", "--from-beginning"),
            *fx.json("tail", "mall.orders.v1", "--from-beginning"),
        ]
        assert sorted(r["id"] for r in published) == sorted(p.id for p in story)
        assert {r["source"] for r in published} == {"/mall/simulator"}
        assert sum(r["type"] == "mall.order.paid" for r in published) == 8
        # Both distributors are candidates: qualification started their assessment.
        started = fx.wait_json(
            "tail", "fx.qualification.v1", "--from-beginning",
            "--type", "fx.distributor.assessment_started",
            until=lambda rows: len(rows) == 2,
        )  # fmt: skip
        assert {r["data"]["user_id"] for r in started} == {"sim11-d1", "sim11-d2"}
    finally:
        cluster.stop_all()


def test_clock_wait_returns_once_the_services_read_the_move_and_names_those_that_do_not(
    fx: Fx, tmp_path: Path
) -> None:
    cluster = Cluster(fx.bootstrap, tmp_path, namespace=fx.namespace)
    cluster.start("referral-binding", FX_CLOCK="simulated")
    try:
        cluster.wait_ready("referral-binding")
        here = f"referral-binding=http://127.0.0.1:{cluster.ports['referral-binding']}"
        # Only referral-binding runs: the three others are sent to a closed port.
        closed = [f"{s}=http://127.0.0.1:1" for s in SERVICES if s != "referral-binding"]
        waited = fx("clock", "set", "2026-04-01T00:00:00Z", "--wait", "10", "--service", here,
                    *(arg for url in closed for arg in ("--service", url)), code=1)  # fmt: skip
        assert "not every service reads 2026-04-01T00:00:00Z" in waited.output
        assert "qualification: http://127.0.0.1:1 does not answer" in waited.output
        assert "referral-binding:" not in waited.output.split("not every service")[1]
        only = ["--service", here]
        shown = fx("clock", "show", "--services", *only).stdout
        assert "referral-binding: 2026-04-01T00:00:00Z (simulated, 1 move(s))" in shown
    finally:
        cluster.stop_all()
