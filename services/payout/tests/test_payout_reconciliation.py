"""Reconciliation: the ledger's invariants and its agreement with the commission events, on
hand-made ledgers, on any ledger the rules can produce (and any single tampering of it), and
on a real SQLite store filled by the service's own processor and commands."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from fx_common import migrations
from fx_common.contracts.samples import SAMPLES
from fx_common.ops_metrics import RECONCILIATION_DIFFERENCES
from fx_common.replay import Record
from fx_common.runtime import ServiceRuntime
from fx_common.testing import raw_record, record
from payout import commands, domain, ledger_watch, reconcile_cli
from payout.app import HISTORY, SPEC
from payout.domain import Balance, EntryKind, Status
from payout.reconciliation import (
    CommissionMovement,
    LedgerLine,
    Report,
    WithdrawalFacts,
    check_ledger,
)
from payout.reconciliation import (
    reconcile as reconcile_all,
)
from payout.settings import PayoutSettings

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


class Book:
    """Builds a ledger, its withdrawals and the commission events the way the service does."""

    def __init__(self) -> None:
        self.lines: list[LedgerLine] = []
        self.withdrawals: dict[str, WithdrawalFacts] = {}
        self.movements: list[CommissionMovement] = []

    def line(self, distributor: str, kind: EntryKind, amount: int, **refs: str) -> None:
        entry_id = len(self.lines) + 1
        self.lines.append(
            LedgerLine(entry_id, distributor, kind.value, amount, f"src-{entry_id}", **refs)
        )

    def commission(self, kind: EntryKind, distributor: str, commission: str, amount: int) -> None:
        event_id = f"ev-{len(self.movements) + 1}"
        self.movements.append(CommissionMovement(event_id, kind, distributor, commission, amount))
        signed = amount if kind is EntryKind.CREDIT else -amount
        entry_id = len(self.lines) + 1
        self.lines.append(
            LedgerLine(
                entry_id, distributor, kind.value, signed, event_id, commission_id=commission
            )
        )

    def settle(self, distributor: str, commission: str, amount: int) -> None:
        self.commission(EntryKind.CREDIT, distributor, commission, amount)

    def reverse(self, distributor: str, commission: str, amount: int) -> None:
        self.commission(EntryKind.DEBIT, distributor, commission, amount)

    def withdraw(self, distributor: str, withdrawal: str, amount: int) -> None:
        self.withdrawals[withdrawal] = WithdrawalFacts(withdrawal, distributor, amount, "approved")
        self.line(distributor, EntryKind.HOLD, -amount, withdrawal_id=withdrawal)

    def finish(self, withdrawal: str, status: Status) -> None:
        facts = self.withdrawals[withdrawal]
        self.withdrawals[withdrawal] = dataclasses.replace(facts, status=status.value)
        entry = domain.ledger_effect(
            domain.Withdrawal(
                withdrawal, facts.distributor_id, facts.amount_fen, 0, "alipay", "x", status
            )
        )
        assert entry is not None
        self.line(facts.distributor_id, entry.kind, entry.amount_fen, withdrawal_id=withdrawal)

    def report(self) -> Report:
        return reconcile_all(self.lines, list(self.withdrawals.values()), self.movements)


def sound_book() -> Book:
    book = Book()
    book.settle("d-1", "c-1", 5000)
    book.settle("d-1", "c-2", 3000)
    book.withdraw("d-1", "w-1", 2000)
    book.finish("w-1", Status.PAID)
    book.withdraw("d-1", "w-2", 1000)
    book.finish("w-2", Status.REJECTED)
    book.withdraw("d-1", "w-3", 1500)
    book.reverse("d-1", "c-2", 3000)
    book.settle("d-2", "c-3", 700)
    return book


def messages(report: Report) -> list[str]:
    return [str(d) for d in report.differences]


# --- a sound ledger ------------------------------------------------------------------------


def test_a_sound_ledger_reconciles_and_reports_its_balances() -> None:
    report = sound_book().report()
    assert report.ok, messages(report)
    assert report.balances == {"d-1": Balance(1500, 1500, 2000), "d-2": Balance(700, 0, 0)}
    counts = (report.entries, report.withdrawals, report.events, report.commissions)
    assert counts == (9, 3, 4, 3)
    assert "no difference" in report.render()


def test_a_clawback_may_leave_a_negative_balance_that_still_reconciles() -> None:
    book = Book()
    book.settle("d-1", "c-1", 5000)
    book.withdraw("d-1", "w-1", 4000)
    book.finish("w-1", Status.PAID)
    book.reverse("d-1", "c-1", 5000)
    report = book.report()
    assert report.ok, messages(report)
    assert report.balances["d-1"] == Balance(-4000, 0, 4000)


# --- the ledger's own invariants -----------------------------------------------------------


def test_a_hold_without_a_withdrawal_is_reported() -> None:
    book = sound_book()
    book.line("d-1", EntryKind.HOLD, -500, withdrawal_id="w-ghost")
    assert any("hold without a withdrawal" in m for m in messages(book.report()))


def test_a_hold_settled_twice_is_reported() -> None:
    book = sound_book()
    book.line("d-1", EntryKind.PAYOUT, -1000, withdrawal_id="w-2")  # w-2 was rejected
    found = messages(book.report())
    assert any("withdrawal w-2 (rejected): hold settled 2 times" in m for m in found)
    assert any("distributor d-1: the entries add up to" in m for m in found)


def test_a_withdrawal_held_twice_or_never_is_reported() -> None:
    book = sound_book()
    book.line("d-1", EntryKind.HOLD, -1500, withdrawal_id="w-3")
    book.withdrawals["w-4"] = WithdrawalFacts("w-4", "d-1", 100, "requested")
    found = messages(book.report())
    assert any("withdrawal w-3 (approved): held 2 times" in m for m in found)
    assert any("withdrawal w-4 (requested): held 0 times" in m for m in found)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("approved", "still open, yet its hold was released"),
        ("paid", "hold should be settled by payout, found release"),
    ],
)
def test_a_settlement_that_does_not_match_the_state_is_reported(status: str, expected: str) -> None:
    book = sound_book()
    book.withdrawals["w-2"] = dataclasses.replace(book.withdrawals["w-2"], status=status)
    assert any(expected in m for m in messages(book.report()))


def test_a_final_withdrawal_whose_hold_was_never_settled_is_reported() -> None:
    book = sound_book()
    book.withdrawals["w-3"] = dataclasses.replace(book.withdrawals["w-3"], status="failed")
    assert any("should be settled by release, found nothing" in m for m in messages(book.report()))


def test_a_withdrawal_entry_of_the_wrong_amount_or_distributor_is_reported() -> None:
    book = sound_book()
    book.lines[4] = dataclasses.replace(book.lines[4], amount_fen=-1001)  # w-2's hold
    book.lines[5] = dataclasses.replace(book.lines[5], distributor_id="d-2")  # w-2's release
    found = messages(book.report())
    assert any("withdrawal w-2 is for 1000 fen" in m for m in found)
    assert any("but withdrawal w-2 belongs to d-1" in m for m in found)


@pytest.mark.parametrize(
    ("kind", "amount", "expected"),
    [("credit", -5, "a credit entry cannot be -5 fen"), ("bonus", 5, "'bonus' is not a valid")],
)
def test_malformed_entries_are_reported(kind: str, amount: int, expected: str) -> None:
    book = sound_book()
    book.lines.append(LedgerLine(99, "d-1", kind, amount, "src-99", commission_id="c-1"))
    assert any(expected in m for m in messages(book.report()))


def test_a_commission_entry_must_name_its_commission() -> None:
    book = sound_book()
    book.lines[0] = dataclasses.replace(book.lines[0], commission_id=None, withdrawal_id="w-1")
    assert any("must name only a commission" in m for m in messages(book.report()))


def test_check_ledger_alone_reports_balances() -> None:
    book = sound_book()
    balances, differences = check_ledger(book.lines, list(book.withdrawals.values()))
    assert differences == []
    assert balances["d-2"] == Balance(700, 0, 0)


# --- the ledger against the events ---------------------------------------------------------


def test_a_tampered_credit_is_reported_per_event_commission_and_distributor() -> None:
    book = sound_book()
    book.lines[1] = dataclasses.replace(book.lines[1], amount_fen=3001)  # c-2's credit
    found = messages(book.report())
    assert any(m.startswith("event ev-2: booked as entry 2 (credit 3001 fen") for m in found)
    assert (
        "commission c-2: ledger credited 3001 and debited 3000 fen; the events settled 3000 "
        "and reversed 3000 fen"
    ) in found
    assert any(m.startswith("distributor d-1: ledger credited 8001") for m in found)
    assert "difference(s):" in book.report().render()


def test_an_event_missing_from_the_ledger_is_reported() -> None:
    book = sound_book()
    del book.lines[0]
    found = messages(book.report())
    assert any(
        "event ev-1: credit of 5000 fen to d-1 (commission c-1) is not in the ledger" in m
        for m in found
    )
    assert any(m.startswith("commission c-1: ledger credited 0") for m in found)


def test_an_entry_from_no_event_is_reported() -> None:
    book = sound_book()
    book.lines.append(LedgerLine(99, "d-2", "credit", 10, "made-up", commission_id="c-9"))
    found = messages(book.report())
    assert "entry 99 (credit 10 fen, c-9): comes from no event on fx.commissions.v1" in found
    assert any(m.startswith("commission c-9: ledger credited 10") for m in found)


def test_an_event_booked_twice_is_reported() -> None:
    book = sound_book()
    book.lines.append(dataclasses.replace(book.lines[0], entry_id=99))
    assert "event ev-1: booked 2 times" in messages(book.report())


def test_redelivered_events_count_once_and_second_settlements_are_not_credited() -> None:
    book = sound_book()
    book.movements.append(book.movements[0])
    book.movements.append(CommissionMovement("ev-again", EntryKind.CREDIT, "d-1", "c-1", 5000))
    report = book.report()
    assert report.ok, messages(report)
    assert any("ev-again settles commission c-1 again" in note for note in report.notes)


def test_events_not_consumed_yet_are_checked_only_once_booked() -> None:
    book = sound_book()
    book.movements.append(
        CommissionMovement("ev-new", EntryKind.CREDIT, "d-3", "c-7", 900, consumed=False)
    )
    report = book.report()
    assert report.ok, messages(report)
    assert any("1 event(s) not consumed yet" in note for note in report.notes)
    book.lines.append(LedgerLine(99, "d-3", "credit", 901, "ev-new", commission_id="c-7"))
    assert any(m.startswith("event ev-new: booked as") for m in messages(book.report()))


# --- any ledger the rules produce, and any single tampering of it -------------------------

FINAL = [Status.PAID.value, Status.REJECTED.value, Status.FAILED.value]
# How the ledger shows each state: requested and approved book the same entries.
SETTLED_BY = {
    "requested": "",
    "approved": "",
    "paid": "payout",
    "rejected": "release",
    "failed": "release",
}
Operation = tuple[str, str, int]

operation = st.one_of(
    st.tuples(st.just("settle"), st.sampled_from(["d-1", "d-2"]), st.integers(0, 9000)),
    st.tuples(st.just("reverse"), st.sampled_from(["d-1", "d-2"]), st.integers(0, 4000)),
    st.tuples(st.just("withdraw"), st.sampled_from(["d-1", "d-2"]), st.integers(100, 6000)),
    st.tuples(st.just("finish"), st.sampled_from(FINAL), st.integers(0, 50)),
)


def book_from(operations: list[Operation]) -> Book:
    """Only what the rules allow: withdrawals within the balance, holds settled once."""
    book = Book()
    for name, what, number in operations:
        commission_id = f"c-{len(book.movements)}"
        if name == "settle":
            book.settle(what, commission_id, number)
        elif name == "reverse":
            book.reverse(what, commission_id, number)
        elif name == "withdraw":
            balances, _ = check_ledger(book.lines, list(book.withdrawals.values()))
            if balances.get(what, Balance()).available_fen >= number:
                book.withdraw(what, f"w-{len(book.withdrawals)}", number)
        else:
            open_ = [w for w in book.withdrawals.values() if w.status == "approved"]
            if open_:
                book.finish(open_[number % len(open_)].withdrawal_id, Status(what))
    return book


@settings(max_examples=200, deadline=None)
@given(st.lists(operation, max_size=30))
def test_any_ledger_the_rules_produce_reconciles(operations: list[Operation]) -> None:
    report = book_from(operations).report()
    assert report.ok, messages(report)
    for distributor, balance in report.balances.items():
        assert balance.on_hold_fen >= 0 and balance.paid_out_fen >= 0, distributor


@settings(max_examples=300, deadline=None)
@given(
    st.lists(operation, min_size=1, max_size=30),
    st.sampled_from(["amount", "drop", "duplicate", "status"]),
    st.data(),
)
def test_any_single_tampering_is_found(
    operations: list[Operation], how: str, data: st.DataObject
) -> None:
    book = book_from(operations)
    if how == "status" and book.withdrawals:
        target = data.draw(st.sampled_from(sorted(book.withdrawals)))
        facts = book.withdrawals[target]
        shown = [
            s for s in ("approved", "paid", "rejected") if SETTLED_BY[s] != SETTLED_BY[facts.status]
        ]
        book.withdrawals[target] = dataclasses.replace(
            facts, status=data.draw(st.sampled_from(shown))
        )
    elif how != "status" and book.lines:
        index = data.draw(st.integers(0, len(book.lines) - 1))
        line = book.lines[index]
        if how == "amount":
            delta = data.draw(st.integers(-50, 50).filter(lambda d: d != 0))
            book.lines[index] = dataclasses.replace(line, amount_fen=line.amount_fen + delta)
        elif how == "drop":
            del book.lines[index]
        else:
            book.lines.append(dataclasses.replace(line, entry_id=len(book.lines) + 1))
    else:
        return
    assert not book.report().ok


# --- records from the topic ----------------------------------------------------------------


def commission(ce_type: str, amount: int, event_id: str) -> Record:
    data = {**SAMPLES[ce_type], "commission_id": "c-1", "distributor_id": "d-1"}
    return record(ce_type, {**data, "amount_fen": amount}, time=T0, event_id=event_id)


def test_records_become_movements_and_the_committed_offset_says_what_is_consumed() -> None:
    settled = commission("fx.commission.settled", 2580, "e-1")
    reversed_ = commission("fx.commission.reversed", 80, "e-2")
    accrued = record("fx.commission.accrued", SAMPLES["fx.commission.accrued"], time=T0)
    garbage = raw_record("fx.commissions.v1", b"{not json", [("ce_type", b"x")])
    committed = {TopicPartition("fx.commissions.v1", 0): reversed_.offset}
    movements, undecodable = reconcile_cli.movements_from(
        [settled, reversed_, accrued, garbage], committed
    )
    assert undecodable == 1
    assert movements == [
        CommissionMovement("e-1", EntryKind.CREDIT, "d-1", "c-1", 2580),
        CommissionMovement("e-2", EntryKind.DEBIT, "d-1", "c-1", 80, consumed=False),
    ]


def test_lag_is_what_the_group_has_not_committed() -> None:
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    assert reconcile_cli.lag({a: 10, b: 5}, {a: 10}) == 5
    assert reconcile_cli.lag({a: 10, b: 5}, {a: 10, b: 5}) == 0


# --- a real store, filled by the service's processor and commands --------------------------


def test_a_store_filled_by_the_service_reconciles_until_a_row_is_tampered(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'payout.db'}"
    runtime = ServiceRuntime(SPEC, PayoutSettings(database_url=url))
    migrations.upgrade(runtime.engine, HISTORY)
    records = [
        commission("fx.commission.settled", 9000, "e-1"),
        commission("fx.commission.reversed", 500, "e-2"),
    ]
    assert runtime.processor.process(records).applied == 2
    policy = PayoutSettings().withdrawal_policy()
    orders = [
        commands.WithdrawalOrder("d-1", key, amount, "alipay", "13812345678")
        for key, amount in (("k-1", 3000), ("k-2", 2000))
    ]
    for order in orders:
        request = partial(commands.request_withdrawal, order=order, policy=policy, now=T0)
        runtime.command(order.withdrawal_id, request)
    paid = partial(
        commands.advance_withdrawal,
        withdrawal_id=orders[0].withdrawal_id,
        target=Status.PAID,
        now=T0,
        transfer_ref="t-1",
    )
    runtime.command("paid", paid)
    everything_consumed = {TopicPartition("fx.commissions.v1", 0): 10**9}
    movements, _ = reconcile_cli.movements_from(records, everything_consumed)

    report = reconcile_all(*reconcile_cli.read_store(url), movements)
    assert report.ok, messages(report)
    assert report.balances == {"d-1": Balance(3500, 2000, 3000)}

    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE po_ledger_entry SET amount_fen = -400 WHERE kind = 'debit'")
    tampered = reconcile_all(*reconcile_cli.read_store(url), movements)
    assert (
        "commission c-1: ledger credited 9000 and debited 400 fen; the events settled 9000 and "
        "reversed 500 fen"
    ) in messages(tampered)
    runtime.engine.dispose()


def test_the_in_service_ledger_check_exports_its_differences(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'payout.db'}"
    runtime = ServiceRuntime(SPEC, PayoutSettings(database_url=url))
    migrations.upgrade(runtime.engine, HISTORY)
    assert runtime.processor.process([commission("fx.commission.settled", 9000, "e-1")]).applied
    policy = PayoutSettings().withdrawal_policy()
    order = commands.WithdrawalOrder("d-1", "k-1", 3000, "alipay", "13812345678")
    request = partial(commands.request_withdrawal, order=order, policy=policy, now=T0)
    runtime.command(order.withdrawal_id, request)
    gauge = RECONCILIATION_DIFFERENCES.labels("payout", "ledger")

    assert ledger_watch.check_once(url) == 0
    assert gauge._value.get() == 0
    with runtime.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE po_ledger_entry SET amount_fen = -2500 WHERE kind = 'hold'")
    found = ledger_watch.check_once(url)
    assert found is not None and found > 0
    assert gauge._value.get() == found
    assert ledger_watch.check_once(f"sqlite:///{tmp_path / 'missing.db'}") is None
    assert gauge._value.get() == found  # a failed check keeps the last answer
    runtime.engine.dispose()
