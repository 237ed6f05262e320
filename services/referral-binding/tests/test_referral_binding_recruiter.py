"""The recruiter (docs/domain.md §2.7): recorded once, as `fx.recruiter.recorded`, from the
binding that covered the applicant when they applied."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from fx_common.contracts.attributions import RecruiterRecorded
from referral_binding import domain, store
from referral_binding.handlers import binding_id_for

if TYPE_CHECKING:
    from conftest import Harness, HarnessFactory

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


def recorded(rb: Harness) -> list[RecruiterRecorded]:
    events = rb.published("fx.recruiter.recorded")
    return [e.data for e in events if isinstance(e.data, RecruiterRecorded)]


def test_the_distributor_whose_binding_covered_the_applicant_is_their_recruiter(
    rb: Harness,
) -> None:
    rb.run(rb.qualified("r1", day(0)), rb.share("s1", "r1", day(0)))
    rb.run(rb.visit("s1", "r1", "d1", day(1), event_id="v1"))
    rb.run(rb.applied("d1", day(3)))
    [event] = rb.published("fx.recruiter.recorded")
    assert event.data == RecruiterRecorded(
        distributor_id="d1", recruiter_id="r1", binding_id=binding_id_for("v1"), applied_at=day(3)
    )
    assert event.time == day(3)
    assert [key for topic, key, _, _ in rb.outbox() if topic.endswith("attributions.v1")] == ["d1"]
    with Session(rb.engine) as session:
        [row] = session.exec(select(store.RbRecruiter)).all()
        assert (row.distributor_id, row.recruiter_id) == ("d1", "r1")


def test_recorded_once_the_first_stands(rb: Harness) -> None:
    rb.run(rb.qualified("r1", day(0)), rb.qualified("r2", day(0)))
    rb.run(rb.visit("s1", "r1", "d1", day(1)))
    rb.run(rb.applied("d1", day(2)))
    # d1 failed, the binding lapsed, another distributor bound d1, who applies again
    rb.run(rb.tick(day(12)), rb.visit("s2", "r2", "d1", day(13)), rb.applied("d1", day(14)))
    assert [(e.distributor_id, e.recruiter_id) for e in recorded(rb)] == [("d1", "r1")]


def test_no_binding_when_applying_means_no_recruiter(rb: Harness) -> None:
    rb.run(rb.qualified("r1", day(0)))
    rb.run(rb.visit("s1", "r1", "d1", day(1)))  # protected until day 11
    rb.run(rb.applied("d1", day(11)), rb.applied("d2", day(2)))  # lapsed; never bound
    assert recorded(rb) == []


def test_a_binding_in_any_mode_counts(new_harness: HarnessFactory) -> None:
    rb = new_harness("permanent", binding_mode="permanent")
    rb.run(rb.qualified("r1", day(0)), rb.visit("s1", "r1", "d1", day(1)))
    rb.run(rb.applied("d1", day(400)))
    assert [e.recruiter_id for e in recorded(rb)] == ["r1"]


def test_the_rule_never_names_the_applicant_and_reads_the_interval() -> None:
    def binding(distributor: str) -> domain.Binding:
        return domain.Binding(
            binding_id="b1", customer_id="d1", distributor_id=distributor, share_id="s1",
            order_id=None, bound_at=day(1), protected_until=day(11),
        )  # fmt: skip

    def customer(distributor: str) -> domain.CustomerBindings:
        return domain.CustomerBindings("d1", [binding(distributor)])

    assert domain.recruiter_binding("d1", day(2), customer("r1"), recorded=False) == binding("r1")
    assert domain.recruiter_binding("d1", day(2), customer("r1"), recorded=True) is None
    assert domain.recruiter_binding("d1", day(11), customer("r1"), recorded=False) is None
    assert domain.recruiter_binding("d1", day(0), customer("r1"), recorded=False) is None
    assert domain.recruiter_binding("d1", day(2), customer("d1"), recorded=False) is None
