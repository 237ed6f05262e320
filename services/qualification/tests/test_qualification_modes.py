"""Qualification modes (modes.py): every mode × every state × every command, then switches of
the mode between commands (hypothesis): nobody already qualified is ever changed by one."""

from __future__ import annotations

from copy import deepcopy
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qualification import modes
from qualification.domain import (
    Applied,
    AssessmentStarted,
    Mode,
    Policy,
    Qualification,
    Qualified,
    Status,
    TransitionRefused,
)

APPLIED_AT = datetime(2026, 1, 1, 9, tzinfo=UTC)
CONFIRMED_AT = APPLIED_AT + timedelta(hours=1)
DEADLINE = CONFIRMED_AT + timedelta(days=30)
POLICY = Policy(3, timedelta(days=30), True, timedelta(0))


def in_state(status: Status) -> Qualification:
    """`u1` in `status` the seed's way; assessing with one counted order, `o-1`."""
    q = Qualification("u1")
    if status is Status.NONE:
        return q
    q.apply(APPLIED_AT, POLICY)
    if status is Status.APPLIED:
        return q
    q.confirm_contact(CONFIRMED_AT, POLICY)
    for n in range(1 if status in (Status.ASSESSING, Status.FAILED) else 3):
        paid_at = CONFIRMED_AT + timedelta(days=n + 1)
        q.order_attributed(f"o-{n + 1}", paid_at, 10_000, "binding", at=paid_at)
    if status is Status.FAILED:
        q.expire(DEADLINE + timedelta(seconds=1))
    if status is Status.REVOKED:
        q.revoke(DEADLINE, "fake orders")
    return q


LATER = DEADLINE + timedelta(days=2)
ASSESSMENT = POLICY
EVERYONE = replace(POLICY, mode=Mode.EVERYONE)
EVERYONE_WITH_CONTACT = replace(POLICY, mode=Mode.EVERYONE, contact_step=True)
APPOINTED = replace(POLICY, mode=Mode.APPOINTED)
ALL_STATES = list(Status)


def test_the_default_policy_is_the_seeds_assessment() -> None:
    assert (POLICY.mode, POLICY.contact_step) == (Mode.ASSESSMENT, False)


@pytest.mark.parametrize("status", ALL_STATES)
def test_assessment_mode_is_the_seeds_state_machine(status: Status) -> None:
    """In `assessment`, modes.apply / confirm_contact are exactly the domain's commands."""
    for command in ("apply", "confirm"):
        seed, moded = in_state(status), in_state(status)
        try:
            if command == "apply":
                expected = seed.apply(LATER, POLICY)
            else:
                expected = seed.confirm_contact(LATER, POLICY)
        except TransitionRefused as refused:
            with pytest.raises(TransitionRefused) as caught:
                _run(command, moded, ASSESSMENT)
            assert caught.value.code == refused.code
            continue
        assert _run(command, moded, ASSESSMENT) == expected
        assert moded == seed


def test_everyone_qualifies_an_application_at_once() -> None:
    q = Qualification("u1")
    events = modes.apply(q, APPLIED_AT, EVERYONE, wechat_id="wx")
    assert events == [
        Applied("u1", APPLIED_AT),
        Qualified("u1", APPLIED_AT, (), via=Mode.EVERYONE),
    ]
    assert (q.status, q.qualified_at, q.qualified_via, q.attempt) == (
        Status.QUALIFIED,
        APPLIED_AT,
        Mode.EVERYONE,
        1,
    )
    with pytest.raises(TransitionRefused) as refused:
        modes.apply(q, LATER, EVERYONE)
    assert refused.value.code == "already_qualified"


def test_everyone_with_the_contact_step_qualifies_at_the_confirmation() -> None:
    q = Qualification("u1")
    assert modes.apply(q, APPLIED_AT, EVERYONE_WITH_CONTACT) == [Applied("u1", APPLIED_AT)]
    assert q.status is Status.APPLIED
    confirmed = APPLIED_AT + timedelta(hours=3)
    events = modes.confirm_contact(q, confirmed, EVERYONE_WITH_CONTACT)
    assert events == [Qualified("u1", confirmed, (), via=Mode.EVERYONE)]
    assert (q.status, q.confirmed_at, q.deadline) == (Status.QUALIFIED, confirmed, None)
    assert modes.confirm_contact(q, LATER, EVERYONE_WITH_CONTACT) == []


def test_a_failed_user_in_everyone_mode_still_waits_for_the_cooldown() -> None:
    policy = replace(EVERYONE, reapply_cooldown=timedelta(days=7))
    q = in_state(Status.FAILED)
    with pytest.raises(TransitionRefused) as refused:
        modes.apply(q, DEADLINE + timedelta(days=1), policy)
    assert refused.value.code == "reapply_cooldown"
    events = modes.apply(q, DEADLINE + timedelta(days=8), policy)
    assert [type(e) for e in events] == [Applied, Qualified]
    assert q.attempt == 2 and q.qualifying_orders == 0


@pytest.mark.parametrize("status", [Status.NONE, Status.FAILED])
def test_appointed_mode_closes_applications(status: Status) -> None:
    q = in_state(status)
    before = deepcopy(q)
    with pytest.raises(TransitionRefused) as refused:
        modes.apply(q, LATER, APPOINTED)
    assert refused.value.code == "applications_closed"
    assert q == before


def test_appointed_mode_refuses_to_confirm_a_pending_application() -> None:
    q = in_state(Status.APPLIED)
    before = deepcopy(q)
    with pytest.raises(TransitionRefused) as refused:
        modes.confirm_contact(q, LATER, APPOINTED)
    assert refused.value.code == "applications_closed"
    assert q == before


@pytest.mark.parametrize("status", [Status.NONE, Status.APPLIED, Status.ASSESSING, Status.FAILED])
def test_ops_appoint_any_user_not_yet_qualified(status: Status) -> None:
    q = in_state(status)
    counted_before = tuple(o.order_id for o in q.counting_orders)
    attempt = q.attempt
    events = modes.appoint(q, LATER, APPOINTED, "ops-7", "our tea master")
    orders = counted_before if status is Status.ASSESSING else ()
    assert events == [
        Qualified(
            "u1", LATER, orders, via=Mode.APPOINTED, appointed_by="ops-7", reason="our tea master"
        )
    ]
    assert (q.status, q.qualified_via, q.appointed_by, q.appoint_reason) == (
        Status.QUALIFIED,
        Mode.APPOINTED,
        "ops-7",
        "our tea master",
    )
    new_attempt = status in (Status.NONE, Status.FAILED)
    assert q.attempt == attempt + (1 if new_attempt else 0)
    if status is Status.FAILED:
        assert (q.failed_at, q.deadline, q.qualifying_orders) == (None, None, 0)


def test_appointing_a_distributor_again_changes_nothing_and_revoked_stays_revoked() -> None:
    q = Qualification("u1")
    modes.appoint(q, APPLIED_AT, APPOINTED, "ops-1", "first")
    before = deepcopy(q)
    assert modes.appoint(q, LATER, APPOINTED, "ops-2", "second") == []
    assert q == before
    q.revoke(LATER, "fraud")
    with pytest.raises(TransitionRefused) as refused:
        modes.appoint(q, LATER, APPOINTED, "ops-2", "again")
    assert refused.value.code == "revoked" and q.status is Status.REVOKED


@pytest.mark.parametrize("policy", [ASSESSMENT, EVERYONE, EVERYONE_WITH_CONTACT])
def test_appointments_are_off_in_the_other_modes(policy: Policy) -> None:
    q = in_state(Status.APPLIED)
    before = deepcopy(q)
    with pytest.raises(TransitionRefused) as refused:
        modes.appoint(q, LATER, policy, "ops-1", "why")
    assert refused.value.code == "appointments_off"
    assert q == before


def test_a_running_assessment_keeps_its_terms_after_a_switch_to_everyone() -> None:
    q = Qualification("u1")
    modes.apply(q, APPLIED_AT, ASSESSMENT)
    events = modes.confirm_contact(q, APPLIED_AT, ASSESSMENT)
    assert isinstance(events[0], AssessmentStarted)
    with pytest.raises(TransitionRefused) as refused:
        modes.apply(q, LATER, EVERYONE)
    assert refused.value.code == "already_assessing"
    assert modes.confirm_contact(q, LATER, EVERYONE) == []
    assert q.status is Status.ASSESSING and q.required_orders == POLICY.required_orders


def _run(command: str, q: Qualification, policy: Policy) -> list[object]:
    match command:
        case "apply":
            return list(modes.apply(q, LATER, policy))
        case "confirm":
            return list(modes.confirm_contact(q, LATER, policy))
        case "appoint":
            return list(modes.appoint(q, LATER, policy, "ops-1", "why"))
        case _:
            q.revoke(LATER, "fraud")
            return []


POLICIES = st.sampled_from([ASSESSMENT, EVERYONE, EVERYONE_WITH_CONTACT, APPOINTED])
STEPS = st.lists(
    st.tuples(POLICIES, st.sampled_from(["apply", "confirm", "appoint", "revoke"])), max_size=12
)


@settings(max_examples=300, deadline=None)
@given(start=st.sampled_from(ALL_STATES), steps=STEPS)
def test_switching_the_mode_never_changes_anyone_already_qualified(
    start: Status, steps: list[tuple[Policy, str]]
) -> None:
    """Commands under any sequence of modes: a refused one changes nothing; once qualified, a
    user stays exactly as qualified (when, how, by whom) until revoked; each qualification
    names the mode that made it; the status only moves along the allowed transitions."""
    q = in_state(start)
    for policy, command in steps:
        before = deepcopy(q)
        try:
            events = _run(command, q, policy)
        except TransitionRefused:
            assert q == before
            continue
        if before.status is Status.QUALIFIED and command != "revoke":
            assert q == before and events == []
        if before.status is Status.REVOKED:
            assert q.status is Status.REVOKED
        for event in events:
            if isinstance(event, Qualified):
                assert event.via == policy.mode
                assert (event.appointed_by is not None) == (event.via is Mode.APPOINTED)
                assert q.qualified_via == event.via and q.qualified_at == event.at
        if policy.mode is Mode.APPOINTED and command == "apply":
            assert before.status not in (Status.NONE, Status.FAILED)
