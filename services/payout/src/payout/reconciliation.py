"""Reconciliation: is the ledger sound, and does it book exactly what fx.commissions.v1 says?

Pure: the caller (`payout.reconcile_cli`, the command) reads the store and the topic and
hands over plain rows. Two independent checks, each returning the differences it finds:

- `check_ledger`: every entry is well formed, every hold belongs to a withdrawal and is
  settled at most once (by the release or payout its withdrawal's final state calls for), and
  each distributor's balance folded from its entries equals what its commissions and its
  withdrawals add up to.
- `compare_with_events`: the credits and debits the ledger holds against those the settled
  and reversed commission events call for, per event, per commission and per distributor,
  following the consumer's own rules (a redelivered event id counts once; a second
  settlement of one commission under another id is dead-lettered, not credited).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from payout import domain
from payout.domain import Balance, EntryKind, LedgerEntry, Status

_COMMISSION_KINDS = frozenset({EntryKind.CREDIT, EntryKind.DEBIT})
_SETTLEMENT: dict[Status, EntryKind | None] = {
    Status.REQUESTED: None,
    Status.APPROVED: None,
    Status.REJECTED: EntryKind.RELEASE,
    Status.FAILED: EntryKind.RELEASE,
    Status.PAID: EntryKind.PAYOUT,
}


@dataclass(frozen=True)
class LedgerLine:
    """A ledger row as stored; `kind` is kept raw so a corrupted row can still be reported."""

    entry_id: int
    distributor_id: str
    kind: str
    amount_fen: int
    source_event_id: str
    commission_id: str | None = None
    withdrawal_id: str | None = None

    def describe(self) -> str:
        ref = self.commission_id or self.withdrawal_id or "-"
        return f"entry {self.entry_id} ({self.kind} {self.amount_fen} fen, {ref})"


@dataclass(frozen=True)
class WithdrawalFacts:
    withdrawal_id: str
    distributor_id: str
    amount_fen: int
    status: str


@dataclass(frozen=True)
class CommissionMovement:
    """A settled (credit) or reversed (debit) commission event; `amount_fen` as in the event.

    `consumed`: the payout consumer has committed its offset past this event, so the ledger
    must hold it (the store commits before the offset). An event beyond that point may not be
    booked yet; it is checked only if it is.
    """

    event_id: str
    kind: EntryKind
    distributor_id: str
    commission_id: str
    amount_fen: int
    consumed: bool = True

    def signed(self) -> int:
        return self.amount_fen if self.kind is EntryKind.CREDIT else -self.amount_fen


@dataclass(frozen=True)
class Difference:
    subject: str
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class Report:
    differences: list[Difference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    balances: dict[str, Balance] = field(default_factory=dict)
    entries: int = 0
    withdrawals: int = 0
    events: int = 0
    commissions: int = 0

    @property
    def ok(self) -> bool:
        return not self.differences

    def render(self) -> str:
        lines = [
            f"ledger: {self.entries} entries, {self.withdrawals} withdrawals, "
            f"{len(self.balances)} distributors",
            f"fx.commissions.v1: {self.events} settled/reversed events, "
            f"{self.commissions} commissions",
        ]
        lines += [f"note: {note}" for note in self.notes]
        if self.ok:
            lines.append("no difference: every balance reconciles with the ledger and the events")
            return "\n".join(lines)
        lines.append(f"{len(self.differences)} difference(s):")
        lines += [f"  {difference}" for difference in self.differences]
        return "\n".join(lines)


def reconcile(
    lines: Sequence[LedgerLine],
    withdrawals: Sequence[WithdrawalFacts],
    movements: Sequence[CommissionMovement],
) -> Report:
    """Both checks; `movements` in topic order (each partition in offset order)."""
    expected, notes = expected_movements(movements)
    booked = {line.source_event_id for line in lines}
    pending = [m for m in expected if not m.consumed and m.event_id not in booked]
    if pending:
        notes.append(
            f"{len(pending)} event(s) not consumed yet by the payout service: checked once booked"
        )
        expected = [m for m in expected if m.consumed or m.event_id in booked]
    report = Report(
        notes=notes,
        entries=len(lines),
        withdrawals=len(withdrawals),
        events=len(expected),
        commissions=len({m.commission_id for m in expected}),
    )
    report.balances, ledger_differences = check_ledger(lines, withdrawals)
    report.differences = ledger_differences + compare_with_events(lines, expected)
    return report


# --- the ledger on its own -----------------------------------------------------------------


def check_ledger(
    lines: Sequence[LedgerLine], withdrawals: Sequence[WithdrawalFacts]
) -> tuple[dict[str, Balance], list[Difference]]:
    """Each distributor's balance folded from its entries, and what breaks an invariant."""
    differences: list[Difference] = []
    by_id = {w.withdrawal_id: w for w in withdrawals}
    entries: dict[str, list[LedgerEntry]] = defaultdict(list)
    kinds_of: dict[str, list[EntryKind]] = defaultdict(list)
    earned: dict[str, int] = defaultdict(int)
    for line in lines:
        entry = _entry(line, differences)
        if entry is None:
            continue
        entries[line.distributor_id].append(entry)
        if entry.kind in _COMMISSION_KINDS:
            earned[line.distributor_id] += entry.amount_fen
            if line.commission_id is None or line.withdrawal_id is not None:
                differences.append(
                    Difference(line.describe(), "a commission entry must name only a commission")
                )
            continue
        owner = by_id.get(line.withdrawal_id or "")
        if owner is None:
            differences.append(Difference(line.describe(), f"{entry.kind} without a withdrawal"))
            continue
        kinds_of[owner.withdrawal_id].append(entry.kind)
        if owner.distributor_id != line.distributor_id:
            differences.append(
                Difference(
                    line.describe(),
                    f"booked to {line.distributor_id} but withdrawal {owner.withdrawal_id} "
                    f"belongs to {owner.distributor_id}",
                )
            )
        if abs(entry.amount_fen) != owner.amount_fen:
            differences.append(
                Difference(
                    line.describe(),
                    f"withdrawal {owner.withdrawal_id} is for {owner.amount_fen} fen",
                )
            )
    for withdrawal in withdrawals:
        booked = kinds_of[withdrawal.withdrawal_id]
        differences += _hold_settled_as_its_state_says(withdrawal, booked)
    balances = {d: domain.balance(e) for d, e in entries.items()}
    for withdrawal in withdrawals:
        balances.setdefault(withdrawal.distributor_id, Balance())
    differences += _balances_add_up(balances, withdrawals, earned)
    return balances, differences


def _entry(line: LedgerLine, differences: list[Difference]) -> LedgerEntry | None:
    try:
        return LedgerEntry(EntryKind(line.kind), line.amount_fen)
    except ValueError as exc:
        differences.append(Difference(line.describe(), f"malformed: {exc}"))
        return None


def _hold_settled_as_its_state_says(
    withdrawal: WithdrawalFacts, kinds: Sequence[EntryKind]
) -> list[Difference]:
    subject = f"withdrawal {withdrawal.withdrawal_id} ({withdrawal.status})"
    try:
        status = Status(withdrawal.status)
    except ValueError:
        return [Difference(subject, "unknown status")]
    found = []
    holds = kinds.count(EntryKind.HOLD)
    if holds != 1:
        found.append(Difference(subject, f"held {holds} times (exactly once expected)"))
    settlements = [k for k in kinds if k in (EntryKind.RELEASE, EntryKind.PAYOUT)]
    expected = _SETTLEMENT[status]
    if len(settlements) > 1:
        found.append(Difference(subject, f"hold settled {len(settlements)} times"))
    elif expected is None and settlements:
        found.append(Difference(subject, f"still open, yet its hold was {settlements[0]}d"))
    elif expected is not None and settlements != [expected]:
        seen = settlements[0] if settlements else "nothing"
        found.append(Difference(subject, f"hold should be settled by {expected}, found {seen}"))
    return found


def _balances_add_up(
    balances: Mapping[str, Balance],
    withdrawals: Iterable[WithdrawalFacts],
    earned: Mapping[str, int],
) -> list[Difference]:
    """What the entries add up to must be what the withdrawals' states say is held and paid."""
    held: dict[str, int] = defaultdict(int)
    paid: dict[str, int] = defaultdict(int)
    for w in withdrawals:
        if w.status in (Status.REQUESTED, Status.APPROVED):
            held[w.distributor_id] += w.amount_fen
        elif w.status == Status.PAID:
            paid[w.distributor_id] += w.amount_fen
    found = []
    for distributor_id, folded in sorted(balances.items()):
        on_hold, paid_out = held[distributor_id], paid[distributor_id]
        expected = Balance(earned[distributor_id] - on_hold - paid_out, on_hold, paid_out)
        if folded != expected:
            found.append(
                Difference(
                    f"distributor {distributor_id}",
                    f"the entries add up to {_fmt(folded)} but commissions and withdrawals "
                    f"say {_fmt(expected)}",
                )
            )
    return found


def _fmt(balance: Balance) -> str:
    return (
        f"available {balance.available_fen} / on hold {balance.on_hold_fen} / "
        f"paid out {balance.paid_out_fen}"
    )


# --- the ledger against the commission events ----------------------------------------------


def expected_movements(
    movements: Iterable[CommissionMovement],
) -> tuple[list[CommissionMovement], list[str]]:
    """The movements the consumer books, in topic order: each event id once, and only the
    first settlement of a commission (the service dead-letters a second one)."""
    seen: set[str] = set()
    settled: dict[str, str] = {}
    booked, notes = [], []
    for movement in movements:
        if movement.event_id in seen:
            continue
        seen.add(movement.event_id)
        if movement.kind is EntryKind.CREDIT:
            earlier = settled.get(movement.commission_id)
            if earlier is not None:
                notes.append(
                    f"event {movement.event_id} settles commission {movement.commission_id} "
                    f"again (first settled by {earlier}): dead-lettered, not credited"
                )
                continue
            settled[movement.commission_id] = movement.event_id
        booked.append(movement)
    return booked, notes


def compare_with_events(
    lines: Sequence[LedgerLine], expected: Sequence[CommissionMovement]
) -> list[Difference]:
    """Per event, then per commission and per distributor, credited and debited amounts."""
    consumed = [line for line in lines if line.kind in _COMMISSION_KINDS]
    differences = _per_event(consumed, expected)
    ledger_by_commission = _totals(
        (ln.commission_id or "", ln.kind, ln.amount_fen) for ln in consumed
    )
    events_by_commission = _totals((m.commission_id, m.kind.value, m.signed()) for m in expected)
    differences += _compare_totals("commission", ledger_by_commission, events_by_commission)
    ledger_by_distributor = _totals((ln.distributor_id, ln.kind, ln.amount_fen) for ln in consumed)
    events_by_distributor = _totals((m.distributor_id, m.kind.value, m.signed()) for m in expected)
    differences += _compare_totals("distributor", ledger_by_distributor, events_by_distributor)
    return differences


def _per_event(
    consumed: Sequence[LedgerLine], expected: Sequence[CommissionMovement]
) -> list[Difference]:
    differences = []
    booked: dict[str, list[LedgerLine]] = defaultdict(list)
    for line in consumed:
        booked[line.source_event_id].append(line)
    for movement in expected:
        subject = f"event {movement.event_id}"
        found = booked.pop(movement.event_id, [])
        want = (
            movement.kind.value,
            movement.signed(),
            movement.distributor_id,
            movement.commission_id,
        )
        if not found:
            differences.append(
                Difference(
                    subject,
                    f"{movement.kind.value} of {movement.amount_fen} fen to "
                    f"{movement.distributor_id} (commission {movement.commission_id}) "
                    "is not in the ledger",
                )
            )
            continue
        for line in found:
            have = (line.kind, line.amount_fen, line.distributor_id, line.commission_id)
            if have != want:
                differences.append(
                    Difference(
                        subject,
                        f"booked as {line.describe()} to {line.distributor_id}; the event "
                        f"calls for {want[0]} {want[1]} fen to {want[2]} (commission {want[3]})",
                    )
                )
        if len(found) > 1:
            differences.append(Difference(subject, f"booked {len(found)} times"))
    for extra in booked.values():
        for line in extra:
            differences.append(
                Difference(line.describe(), "comes from no event on fx.commissions.v1")
            )
    return differences


def _totals(items: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, int]]:
    """Key → (credited, debited) in fen, debited as a positive amount."""
    totals: dict[str, tuple[int, int]] = {}
    for key, kind, signed in items:
        credited, debited = totals.get(key, (0, 0))
        if kind == EntryKind.CREDIT:
            credited += signed
        else:
            debited -= signed
        totals[key] = (credited, debited)
    return totals


def _compare_totals(
    what: str, ledger: Mapping[str, tuple[int, int]], events: Mapping[str, tuple[int, int]]
) -> list[Difference]:
    differences = []
    for key in sorted(ledger.keys() | events.keys()):
        have, want = ledger.get(key, (0, 0)), events.get(key, (0, 0))
        if have != want:
            differences.append(
                Difference(
                    f"{what} {key}",
                    f"ledger credited {have[0]} and debited {have[1]} fen; the events settled "
                    f"{want[0]} and reversed {want[1]} fen",
                )
            )
    return differences
