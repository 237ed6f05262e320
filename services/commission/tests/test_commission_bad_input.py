"""Bad input on the consume path: handled as documented, never a crash.

- a negative amount (paid or refunded) violates the contract: the record is dead-lettered
  with the error in its headers and nothing else is written;
- a zero paid amount earns 0 fen and goes through the lifecycle like any line;
- refunds beyond what was paid count up to the paid amount (the line is then fully
  refunded: voided before settlement, clawed back entirely after) — never a negative amount;
- a refund or completion of an order not attributed yet is kept until the attribution
  arrives, and stays kept (publishing nothing) if it never does.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from commission import store
from fx_common import db
from fx_common.contracts.topics import COMMISSIONS
from fx_common.testing import outbox_header_text, raw_record

if TYPE_CHECKING:
    from conftest import Harness

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
DAY = timedelta(days=1)
HOLD = timedelta(days=7)


def dead_letters(h: Harness) -> list[dict[str, str]]:
    with Session(h.engine) as session:
        rows = session.exec(
            select(db.OutboxRecord)
            .where(db.OutboxRecord.topic == "fx.dlq.commission.v1")
            .order_by(col(db.OutboxRecord.id))
        )
        return [outbox_header_text(r.headers) for r in rows]


def tampered(h: Harness, ce_type: str, data: dict[str, Any], **change: Any) -> Any:
    """The record `data` makes, with fields of its first line changed after encoding (so the
    contract check is the consumer's)."""
    [valid] = h.recorded(lambda r: r.send(ce_type, data, T0))
    value = json.loads(valid.value)
    value["lines"][0].update(change)
    return raw_record(valid.topic, json.dumps(value).encode(), list(valid.headers), key="d-1")


def attribution(lines: dict[str, int]) -> dict[str, Any]:
    return {
        "order_id": "o-1", "buyer_id": "b-1", "distributor_id": "d-1", "basis": "binding",
        "paid_at": T0.isoformat(),
        "lines": [{"line_id": k, "sku": "tea", "quantity": 1, "paid_amount_fen": v}
                  for k, v in lines.items()],
    }  # fmt: skip


def test_a_negative_paid_amount_is_dead_lettered_and_nothing_is_written(harness: Harness) -> None:
    bad = tampered(harness, "fx.order.attributed", attribution({"l-1": 100}), paid_amount_fen=-100)
    outcome = harness.processor.process([bad])
    assert (outcome.dead_lettered, outcome.applied) == (1, 0)
    [letter] = dead_letters(harness)
    assert letter["fx_error_type"] == "contract_violation", letter
    assert "paid_amount_fen" in letter["fx_error_message"]
    assert harness.commissions() == [] and harness.published() == []


def test_a_negative_refund_is_dead_lettered_and_the_commission_is_untouched(
    harness: Harness,
) -> None:
    harness.attribute("o-1", {"l-1": 10000}, T0)
    refund = {
        "order_id": "o-1", "distributor_id": "d-1", "refund_id": "r-1",
        "lines": [{"line_id": "l-1", "refund_amount_fen": 100}],
    }  # fmt: skip
    bad = tampered(harness, "fx.order.refunded", refund, refund_amount_fen=-5000)
    assert harness.processor.process([bad]).dead_lettered == 1
    commission = harness.commission("o-1")
    assert (commission.amount_fen, commission.refunded_fen) == (1000, 0)


def test_a_zero_paid_line_earns_zero_through_the_whole_lifecycle(harness: Harness) -> None:
    h = harness
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 0, "l-2": 10000}, T0)
    h.complete("o-1", T0 + DAY)
    h.tick(T0 + DAY + HOLD)
    h.refund("o-1", "r-1", {"l-1": 0}, T0 + 10 * DAY)
    zero = h.commission("o-1", "l-1")
    assert (zero.status, zero.accrued_fen, zero.amount_fen, zero.settled_fen) == (
        "settled", 0, 0, 0,
    )  # fmt: skip
    assert h.commission("o-1", "l-2").settled_fen == 1000


def test_refunds_beyond_the_paid_amount_count_up_to_it_before_settlement(harness: Harness) -> None:
    h = harness
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000, "l-2": 10000}, T0)
    h.refund("o-1", "r-1", {"l-1": 99999}, T0 + DAY)  # more than paid at once
    h.refund("o-1", "r-2", {"l-2": 6000}, T0 + DAY)
    h.refund("o-1", "r-3", {"l-2": 6000}, T0 + 2 * DAY)  # more than paid in total
    h.refund("o-1", "r-4", {"l-2": 1}, T0 + 3 * DAY)  # nothing left to refund
    by_line = {c.line_id: (c.status, c.refunded_fen, c.amount_fen, c.voided_fen)
               for c in h.commissions()}  # fmt: skip
    assert by_line == {"l-1": ("voided", 10000, 0, 1000), "l-2": ("voided", 10000, 0, 400)}
    assert [(e.type, e.data.amount_fen) for e in h.published()][2:] == [
        ("fx.commission.voided", 1000),
        ("fx.commission.adjusted", 400),
        ("fx.commission.voided", 400),
    ]


def test_a_refund_beyond_the_paid_amount_after_settlement_claws_back_only_what_settled(
    harness: Harness,
) -> None:
    h = harness
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000}, T0)
    h.complete("o-1", T0)
    h.tick(T0 + HOLD)
    h.refund("o-1", "r-1", {"l-1": 50000}, T0 + 8 * DAY)
    h.refund("o-1", "r-2", {"l-1": 50000}, T0 + 9 * DAY)
    commission = h.commission("o-1")
    assert (commission.status, commission.settled_fen, commission.reversed_fen) == (
        "reversed", 1000, 1000,
    )  # fmt: skip
    assert [e.data.amount_fen for e in h.published() if e.type.endswith("reversed")] == [1000]


def test_a_refund_of_an_order_never_attributed_is_kept_and_publishes_nothing(
    harness: Harness,
) -> None:
    h = harness
    assert h.refund("o-unknown", "r-1", {"l-1": 500}, T0).applied == 1
    assert h.complete("o-unknown", T0).applied == 1
    with Session(h.engine) as session:
        kept = session.exec(select(store.RefundLineRecord)).all()
    assert [(r.order_id, r.refund_id, r.refund_amount_fen) for r in kept] == [
        ("o-unknown", "r-1", 500)
    ]
    assert h.published() == [] and dead_letters(h) == []


def test_a_refund_arriving_in_an_earlier_batch_than_its_attribution_is_applied(
    harness: Harness,
) -> None:
    h = harness
    h.refund("o-1", "r-1", {"l-1": 2500}, T0 + DAY)
    h.tick(T0 + 2 * DAY)
    h.qualification("qualified", T0 - DAY)
    h.attribute("o-1", {"l-1": 10000}, T0)
    assert [(e.type, e.data.amount_fen) for e in h.published()] == [
        ("fx.commission.accrued", 1000),
        ("fx.commission.adjusted", 750),
    ]
    with Session(h.engine) as session:
        rows = session.exec(select(db.OutboxRecord).where(db.OutboxRecord.topic == COMMISSIONS))
        assert {r.key for r in rows} == {"d-1"}
