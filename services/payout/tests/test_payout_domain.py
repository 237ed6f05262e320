"""The payout rules: ledger balances, account validation, withdrawal decisions and lifecycle."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from payout import domain
from payout.domain import (
    Balance,
    EntryKind,
    InvalidAccount,
    InvalidTransition,
    LedgerEntry,
    Method,
    Status,
    Withdrawal,
    WithdrawalPolicy,
    WithdrawalRefused,
)

OPENID = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"
POLICY = WithdrawalPolicy(
    min_withdrawal_fen=1000, withdrawal_fee_bps=0, auto_approve_limit_fen=50000
)


def withdrawal(status: Status = Status.REQUESTED, **changes: object) -> Withdrawal:
    base = Withdrawal(
        withdrawal_id="w-1",
        distributor_id="d-1",
        amount_fen=3000,
        fee_fen=0,
        method="wechat_wallet",
        account=OPENID,
        status=status,
    )
    return Withdrawal(**{**base.__dict__, **changes})


def request(
    amount_fen: int, available_fen: int, policy: WithdrawalPolicy = POLICY
) -> list[Withdrawal]:
    return domain.request_withdrawal(
        withdrawal_id="w-1",
        distributor_id="d-1",
        amount_fen=amount_fen,
        method="wechat_wallet",
        account=OPENID,
        available_fen=available_fen,
        policy=policy,
    )


# --- ledger and balances -------------------------------------------------------------------


def test_an_empty_ledger_has_nothing() -> None:
    assert domain.balance([]) == Balance(0, 0, 0)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (domain.credit(500), Balance(500, 0, 0)),
        (domain.debit(500), Balance(-500, 0, 0)),
        (domain.hold(500), Balance(-500, 500, 0)),
        (domain.release(500), Balance(500, -500, 0)),
        (domain.payout(500), Balance(0, -500, 500)),
    ],
)
def test_each_kind_moves_money_between_the_buckets(entry: LedgerEntry, expected: Balance) -> None:
    assert domain.balance([entry]) == expected


def test_a_withdrawal_round_trip() -> None:
    earned = [domain.credit(10000), domain.credit(2500)]
    held = [*earned, domain.hold(8000)]
    assert domain.balance(held) == Balance(4500, 8000, 0)
    assert domain.balance([*held, domain.payout(8000)]) == Balance(4500, 0, 8000)
    assert domain.balance([*held, domain.release(8000)]) == Balance(12500, 0, 0)


def test_a_clawback_can_make_available_negative() -> None:
    entries = [domain.credit(3000), domain.hold(3000), domain.payout(3000), domain.debit(1200)]
    assert domain.balance(entries) == Balance(-1200, 0, 3000)


@pytest.mark.parametrize(
    ("kind", "amount"),
    [
        (EntryKind.CREDIT, -1),
        (EntryKind.DEBIT, 1),
        (EntryKind.HOLD, 1),
        (EntryKind.RELEASE, -1),
        (EntryKind.PAYOUT, 1),
    ],
)
def test_an_entry_carries_the_sign_of_its_kind(kind: EntryKind, amount: int) -> None:
    with pytest.raises(ValueError, match="entry cannot be"):
        LedgerEntry(kind, amount)


def test_zero_entries_are_allowed() -> None:
    assert domain.balance([domain.credit(0), domain.debit(0)]) == Balance(0, 0, 0)


# --- accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number", ["6222021234567894", "424242424242", "621483000000000009", "6217000000000000004"]
)
def test_luhn_accepts_valid_card_numbers(number: str) -> None:
    assert domain.luhn_valid(number)


@pytest.mark.parametrize("number", ["6222021234567895", "4242424242424", "", "12a4", "١٢٣٤"])
def test_luhn_refuses_wrong_check_digits_and_non_digits(number: str) -> None:
    assert not domain.luhn_valid(number)


@pytest.mark.parametrize(
    ("method", "account", "canonical"),
    [
        ("wechat_wallet", OPENID, OPENID),
        ("wechat_wallet", f"  {OPENID} ", OPENID),
        ("wechat_wallet", "o-abc_DEF-123456", "o-abc_DEF-123456"),
        ("alipay", "13812345678", "13812345678"),
        ("alipay", "19912345678", "19912345678"),
        ("alipay", "Li.Lei+tea@Example.COM", "li.lei+tea@example.com"),
        ("bank_card", "6222021234567894", "6222021234567894"),
        ("bank_card", "6222 0212 3456 7894", "6222021234567894"),
        ("bank_card", "6222-0212-3456-7894", "6222021234567894"),
        ("bank_card", "424242424242", "424242424242"),
        ("bank_card", "6217000000000000004", "6217000000000000004"),
    ],
)
def test_valid_accounts_are_normalised(method: Method, account: str, canonical: str) -> None:
    assert domain.normalise_account(method, account) == canonical


@pytest.mark.parametrize(
    ("method", "account", "complaint"),
    [
        ("wechat_wallet", "short", "openid"),
        ("wechat_wallet", "oUpF8uMuAJO M2pxb1Q9zNjWeS6o", "openid"),
        ("wechat_wallet", "someone@example.com", "openid"),
        ("wechat_wallet", "o" * 65, "openid"),
        ("wechat_wallet", "13812345678", "openid"),
        ("alipay", "12812345678", "mobile"),
        ("alipay", "1381234567", "mobile"),
        ("alipay", "+8613812345678", "mobile"),
        ("alipay", "someone@localhost", "email"),
        ("alipay", "some one@example.com", "email"),
        ("alipay", "", "mobile"),
        ("bank_card", "62220212345", "12-19 digits"),
        ("bank_card", "62170000000000000000", "12-19 digits"),
        ("bank_card", "6222O21234567894", "12-19 digits"),
        ("bank_card", "6222021234567895", "Luhn"),
        ("bank_card", "６２２２０２１２３４５６７８９４", "12-19 digits"),
    ],
)
def test_malformed_accounts_are_refused_with_a_reason(
    method: Method, account: str, complaint: str
) -> None:
    with pytest.raises(InvalidAccount, match=complaint):
        domain.normalise_account(method, account)


# --- requesting a withdrawal ---------------------------------------------------------------


def test_a_request_within_the_auto_approve_limit_is_approved_at_once() -> None:
    states = request(50000, available_fen=60000)
    assert [s.status for s in states] == [Status.REQUESTED, Status.APPROVED]
    assert all(s.amount_fen == 50000 and s.fee_fen == 0 for s in states)


def test_a_request_above_the_limit_waits_for_review() -> None:
    assert [s.status for s in request(50001, available_fen=60000)] == [Status.REQUESTED]


def test_the_minimum_is_inclusive() -> None:
    assert request(1000, available_fen=1000)[-1].amount_fen == 1000
    with pytest.raises(WithdrawalRefused) as refused:
        request(999, available_fen=5000)
    assert refused.value.code == "below_minimum"


@pytest.mark.parametrize("available", [0, -1, -5000])
def test_nothing_is_withdrawn_while_the_balance_is_not_positive(available: int) -> None:
    with pytest.raises(WithdrawalRefused) as refused:
        request(1000, available_fen=available)
    assert refused.value.code == "insufficient_balance"


def test_more_than_available_is_refused_and_all_of_it_is_allowed() -> None:
    with pytest.raises(WithdrawalRefused) as refused:
        request(5001, available_fen=5000)
    assert refused.value.code == "insufficient_balance"
    assert "5000" in refused.value.message
    assert request(5000, available_fen=5000)[-1].amount_fen == 5000


@pytest.mark.parametrize(
    ("available", "blocker"),
    [(-1, "negative_balance"), (0, "below_minimum"), (999, "below_minimum"), (1000, None)],
)
def test_the_page_says_why_nothing_can_be_withdrawn(available: int, blocker: str | None) -> None:
    assert domain.withdrawal_blocker(available, POLICY) == blocker


@pytest.mark.parametrize("amount", [0, -1])
def test_amounts_must_be_positive(amount: int) -> None:
    with pytest.raises(WithdrawalRefused) as refused:
        request(amount, available_fen=5000)
    assert refused.value.code == "invalid_amount"


@pytest.mark.parametrize(
    ("amount", "bps", "fee"), [(1999, 60, 11), (10000, 60, 60), (1000, 0, 0), (1000, 10_000, 1000)]
)
def test_the_fee_is_floored_and_included_in_the_amount(amount: int, bps: int, fee: int) -> None:
    policy = WithdrawalPolicy(min_withdrawal_fen=1000, withdrawal_fee_bps=bps)
    requested = request(amount, available_fen=amount, policy=policy)[0]
    assert (requested.amount_fen, requested.fee_fen, requested.net_fen) == (
        amount,
        fee,
        amount - fee,
    )


def test_the_account_is_stored_normalised_and_checked() -> None:
    states = domain.request_withdrawal(
        withdrawal_id="w-1",
        distributor_id="d-1",
        amount_fen=1000,
        method="bank_card",
        account="6222 0212 3456 7894",
        available_fen=1000,
        policy=POLICY,
    )
    assert states[0].account == "6222021234567894"
    with pytest.raises(InvalidAccount):
        domain.request_withdrawal(
            withdrawal_id="w-1",
            distributor_id="d-1",
            amount_fen=1000,
            method="alipay",
            account="not-a-phone",
            available_fen=1000,
            policy=POLICY,
        )


# --- lifecycle -----------------------------------------------------------------------------

ALLOWED = {
    (Status.REQUESTED, Status.APPROVED),
    (Status.REQUESTED, Status.REJECTED),
    (Status.APPROVED, Status.PAID),
    (Status.APPROVED, Status.FAILED),
}


@pytest.mark.parametrize("current", list(Status))
@pytest.mark.parametrize("target", list(Status))
def test_only_the_review_and_transfer_transitions_are_allowed(
    current: Status, target: Status
) -> None:
    start = withdrawal(current, transfer_ref="tr-1" if current is Status.PAID else None)
    if current is target:
        assert domain.advance(start, target, transfer_ref="tr-1") is None
    elif (current, target) in ALLOWED:
        moved = domain.advance(start, target, transfer_ref="tr-1")
        assert moved is not None and moved.status is target
    else:
        with pytest.raises(InvalidTransition, match=f"{current} withdrawal cannot become {target}"):
            domain.advance(start, target, transfer_ref="tr-1")


def test_rejection_and_failure_keep_their_reason() -> None:
    rejected = domain.advance(withdrawal(), Status.REJECTED, reason="name mismatch")
    assert rejected is not None and rejected.reason == "name mismatch"
    failed = domain.advance(withdrawal(Status.APPROVED), Status.FAILED, reason="wallet frozen")
    assert failed is not None and failed.reason == "wallet frozen"


def test_paid_needs_a_transfer_reference_and_keeps_it() -> None:
    with pytest.raises(InvalidTransition, match="transfer reference"):
        domain.advance(withdrawal(Status.APPROVED), Status.PAID)
    paid = domain.advance(withdrawal(Status.APPROVED), Status.PAID, transfer_ref="wx-1")
    assert paid is not None and paid.transfer_ref == "wx-1"
    assert domain.advance(paid, Status.PAID, transfer_ref="wx-1") is None
    with pytest.raises(InvalidTransition, match="already paid"):
        domain.advance(paid, Status.PAID, transfer_ref="wx-2")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (Status.REQUESTED, domain.hold(3000)),
        (Status.APPROVED, None),
        (Status.REJECTED, domain.release(3000)),
        (Status.FAILED, domain.release(3000)),
        (Status.PAID, domain.payout(3000)),
    ],
)
def test_each_state_books_its_ledger_effect(status: Status, expected: LedgerEntry | None) -> None:
    assert domain.ledger_effect(withdrawal(status)) == expected


# --- any sequence of events and commands ---------------------------------------------------


class PayoutLedger(RuleBasedStateMachine):
    """Drives the rules the way the service does and checks them against a plain model."""

    policy = WithdrawalPolicy(
        min_withdrawal_fen=100, withdrawal_fee_bps=30, auto_approve_limit_fen=4000
    )

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[tuple[str | None, LedgerEntry]] = []
        self.withdrawals: dict[str, Withdrawal] = {}
        self.credited = 0
        self.debited = 0

    def book(self, state: Withdrawal) -> None:
        self.withdrawals[state.withdrawal_id] = state
        entry = domain.ledger_effect(state)
        if entry is not None:
            self.entries.append((state.withdrawal_id, entry))

    def current(self) -> Balance:
        return domain.balance(entry for _, entry in self.entries)

    @rule(amount=st.integers(0, 20000))
    def commission_settled(self, amount: int) -> None:
        self.entries.append((None, domain.credit(amount)))
        self.credited += amount

    @rule(amount=st.integers(0, 8000))
    def commission_reversed(self, amount: int) -> None:
        self.entries.append((None, domain.debit(amount)))
        self.debited += amount

    @rule(amount=st.integers(-50, 25000))
    def withdrawal_requested(self, amount: int) -> None:
        available = self.current().available_fen
        try:
            states = domain.request_withdrawal(
                withdrawal_id=f"w-{len(self.withdrawals)}",
                distributor_id="d-1",
                amount_fen=amount,
                method="alipay",
                account="13812345678",
                available_fen=available,
                policy=self.policy,
            )
        except WithdrawalRefused:
            assert amount < self.policy.min_withdrawal_fen or amount > available
            return
        assert self.policy.min_withdrawal_fen <= amount <= available
        for state in states:
            self.book(state)
        assert self.current().available_fen >= 0, "a hold overdrew the balance"

    @precondition(lambda self: bool(self.withdrawals))
    @rule(data=st.data(), to=st.sampled_from(list(Status)), ref=st.sampled_from(["t1", "t2"]))
    def withdrawal_moved(self, data: st.DataObject, to: Status, ref: str) -> None:
        current = self.withdrawals[data.draw(st.sampled_from(sorted(self.withdrawals)))]
        try:
            moved = domain.advance(current, to, reason="ops", transfer_ref=ref)
        except InvalidTransition:
            assert (current.status, to) not in ALLOWED
            return
        if moved is not None:
            assert (current.status, to) in ALLOWED
            self.book(moved)

    @invariant()
    def the_buckets_match_the_withdrawals(self) -> None:
        held = sum(
            w.amount_fen
            for w in self.withdrawals.values()
            if w.status in (Status.REQUESTED, Status.APPROVED)
        )
        paid = sum(w.amount_fen for w in self.withdrawals.values() if w.status is Status.PAID)
        assert self.current() == Balance(self.credited - self.debited - held - paid, held, paid)

    @invariant()
    def money_out_never_exceeds_money_credited(self) -> None:
        now = self.current()
        assert now.on_hold_fen >= 0
        assert now.on_hold_fen + now.paid_out_fen <= self.credited

    @invariant()
    def every_hold_is_settled_exactly_once_and_only_when_final(self) -> None:
        kinds: dict[str, list[EntryKind]] = defaultdict(list)
        for withdrawal_id, entry in self.entries:
            if withdrawal_id is not None:
                kinds[withdrawal_id].append(entry.kind)
        for withdrawal_id, state in self.withdrawals.items():
            expected = {
                Status.REQUESTED: [EntryKind.HOLD],
                Status.APPROVED: [EntryKind.HOLD],
                Status.REJECTED: [EntryKind.HOLD, EntryKind.RELEASE],
                Status.FAILED: [EntryKind.HOLD, EntryKind.RELEASE],
                Status.PAID: [EntryKind.HOLD, EntryKind.PAYOUT],
            }[state.status]
            assert kinds[withdrawal_id] == expected

    @invariant()
    def per_kind_totals_give_the_same_balance(self) -> None:
        totals: dict[EntryKind, int] = defaultdict(int)
        for _, entry in self.entries:
            totals[entry.kind] += entry.amount_fen
        subtotals = [LedgerEntry(kind, total) for kind, total in totals.items()]
        assert domain.balance(subtotals) == self.current()


PayoutLedger.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
test_any_sequence_keeps_the_ledger_sound = PayoutLedger.TestCase


def test_the_net_amount_is_what_the_fee_leaves() -> None:
    withdrawal = Withdrawal("w-1", "d-1", 1999, 11, "alipay", "a@b.c", Status.REQUESTED)
    assert withdrawal.net_fen == 1988
