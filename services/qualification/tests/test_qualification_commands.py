"""Accepted commands as input events (`qualification.commands`): the terms they carry, and a
replay applying them through the batch processor on a real SQLite store (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from fx_common import db, migrations
from fx_common.clock import SimulatedClock
from fx_common.contracts.qualification import COMMAND_ACCEPTED, CommandAccepted
from fx_common.contracts.topics import QUALIFICATION
from fx_common.runtime import processor_for
from fx_common.testing import events_published, record
from qualification import commands, store
from qualification.app import HISTORY, SPEC
from qualification.domain import Mode, Policy, Qualification, Status, TransitionRefused

T0 = datetime(2026, 1, 1, 10, tzinfo=UTC)
POLICY = Policy(3, timedelta(days=30), False, timedelta(days=7))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'qualification.db'}")
    migrations.upgrade(engine, HISTORY)
    return engine


def test_the_event_carries_the_terms_it_ran_under() -> None:
    policy = Policy(5, timedelta(days=14, hours=1), True, timedelta(hours=3), Mode.EVERYONE, True)
    command = commands.accepted("apply", "u-1", policy, wechat_id="wx-1")
    assert commands.policy_of(command) == policy
    assert CommandAccepted.model_validate_json(command.model_dump_json()) == command


def test_decide_runs_each_command_as_the_routes_did() -> None:
    q = Qualification("u-1")
    assert [type(e).__name__ for e in commands.decide(q, accept("apply"), T0)] == ["Applied"]
    confirmed = commands.decide(q, accept("confirm_contact"), T0 + timedelta(hours=1))
    assert [type(e).__name__ for e in confirmed] == ["AssessmentStarted"]
    assert q.deadline == T0 + timedelta(hours=1, days=30)
    with pytest.raises(TransitionRefused):
        commands.decide(q, accept("revoke", reason="not yet a distributor"), T0)
    appointing = commands.accepted(
        "appoint", "u-1", POLICY, reason="tea club", appointed_by="ops-1"
    )
    with pytest.raises(TransitionRefused, match="appointed mode"):
        commands.decide(q, appointing, T0)


def accept(kind: commands.Kind, **args: str) -> CommandAccepted:
    return commands.accepted(kind, "u-1", POLICY, **args)


def test_a_replayed_batch_starts_and_fails_an_assessment_in_one_go(engine: Engine) -> None:
    """Commands, an order and the clock in one batch (as a replay reads them): the tick sees
    the assessment this batch started, not yet written, and fails it at its deadline."""
    deadline = T0 + timedelta(hours=1, days=30)
    batch = [
        record(COMMAND_ACCEPTED, accept("apply"), time=T0),
        record(COMMAND_ACCEPTED, accept("confirm_contact"), time=T0 + timedelta(hours=1)),
        record("fx.clock.set", {"now": (deadline + timedelta(days=1)).isoformat()},
               time=deadline + timedelta(days=1)),
    ]  # fmt: skip
    outcome = processor_for(SPEC, engine, SimulatedClock(T0)).process(batch)
    assert (outcome.applied, outcome.dead_lettered) == (3, 0)
    published = events_published(engine, topic=QUALIFICATION)
    assert [e.type for e in published] == [
        "fx.distributor.applied",
        "fx.distributor.assessment_started",
        "fx.distributor.assessment_failed",
    ]
    assert published[-1].time == deadline
    with Session(engine) as session:
        q = store.load(session, "u-1", for_update=False)
    assert q is not None and (q.status, q.failed_at) == (Status.FAILED, deadline)


def test_a_replayed_command_the_state_refuses_is_dead_lettered(engine: Engine) -> None:
    """Topics that disagree with what the live store saw (a revocation of a user who is not a
    distributor) dead-letter the command; the rest of the batch is applied."""
    batch = [
        record(COMMAND_ACCEPTED, accept("apply"), time=T0),
        record(COMMAND_ACCEPTED, accept("revoke", reason="fraud"), time=T0 + timedelta(hours=1)),
    ]
    outcome = processor_for(SPEC, engine, SimulatedClock(T0)).process(batch)
    assert (outcome.applied, outcome.dead_lettered) == (1, 1)
    assert [e.type for e in events_published(engine, topic=QUALIFICATION)] == [
        "fx.distributor.applied"
    ]
    with Session(engine) as session:
        q = store.load(session, "u-1", for_update=False)
    assert q is not None and q.status is Status.APPLIED
