"""What the demo scenario must produce, wherever the cluster runs (processes in the end-to-end
test, containers in `make compose-test`). Each check raises AssertionError naming what is wrong."""

from __future__ import annotations

from demo.scenario import CUSTOMER, FAILING, LAPSING, OTHER, RECRUIT, SHARER, WITHDRAWAL, Outcome
from fx_common.logs import trace_id

EXPECTED_TYPES = (
    "fx.distributor.assessment_started",
    "fx.binding.created",
    "fx.binding.extended",
    "fx.order.attributed",
    "fx.distributor.qualified",
    "fx.distributor.assessment_failed",
    "fx.commission.accrued",
    "fx.commission.released",
    "fx.commission.settled",
    "fx.commission.reversed",
    "fx.commission.voided",
    "fx.withdrawal.approved",
)


def check_outcome(outcome: Outcome, traces: dict[str, str]) -> None:
    """Every rule the scenario touches, the money to the fen, and the mall's traces."""
    types = outcome.types()
    for expected in EXPECTED_TYPES:
        assert expected in types, f"{expected} missing; saw {sorted(types)}"
    attributed = [e for _, e in outcome.events if e.type == "fx.order.attributed"]
    assert {(e.data.order_id, e.data.distributor_id, e.data.basis) for e in attributed} == {  # type: ignore[attr-defined]
        ("o-1", SHARER, "binding"), ("o-2", SHARER, "binding"), ("o-3", SHARER, "binding"),
        ("o-4", FAILING, "binding"),
    }  # fmt: skip
    released = {
        (e.data.customer_id, e.data.reason)  # type: ignore[attr-defined]
        for _, e in outcome.events
        if e.type == "fx.binding.released"
    }
    assert released == {
        (CUSTOMER, "expired"),
        (LAPSING, "expired"),
        (OTHER, "distributor_ineligible"),
    }

    def total(ce_type: str) -> int:
        return sum(e.data.amount_fen for _, e in outcome.events if e.type == ce_type)  # type: ignore[attr-defined]

    assert total("fx.commission.settled") == 3 * 2580  # 10% of 258.00 per order, floored
    assert total("fx.commission.reversed") == 2580  # o-3 refunded after settlement
    assert total("fx.commission.voided") == 1980  # u-zhao failed: o-4 earns nothing
    assert outcome.balance == {
        "available_fen": 3 * 2580 - WITHDRAWAL - 2580, "on_hold_fen": WITHDRAWAL,
        "paid_out_fen": 0,
    } | {k: v for k, v in outcome.balance.items() if not k.endswith("_fen")}  # fmt: skip

    # The mall's W3C trace id travels with every event caused by its event.
    for _, event in outcome.events:
        data = event.data.model_dump()
        if event.type in ("fx.order.attributed", "fx.commission.accrued"):
            paid = traces[f"mall.order.paid:{data['order_id']}"]
            assert trace_id(event.traceparent) == paid, event
        if event.type == "fx.binding.created":
            visit = traces[f"mall.share.visited:{data['customer_id']}"]
            assert trace_id(event.traceparent) == visit, event
    caused = [e for _, e in outcome.events if e.type == "fx.distributor.assessment_progressed"]
    assert all(trace_id(e.traceparent) for e in caused)  # through the attribution, too


def check_second_tier(outcome: Outcome) -> None:
    """FX_COMMISSION_TIERS=2 (tier-2 rate 5 %): c-zhou's recruiter is u-lin, and each of
    c-zhou's three own orders earns u-lin a tier-2 line that settles into u-lin's balance."""
    [recorded] = [e.data for _, e in outcome.events if e.type == "fx.recruiter.recorded"]
    assert (recorded.distributor_id, recorded.recruiter_id) == (RECRUIT, SHARER)  # type: ignore[attr-defined]
    second = [
        (e.type, e.data.order_id, e.data.amount_fen)  # type: ignore[attr-defined]
        for _, e in outcome.events
        if e.type.startswith("fx.commission.") and e.data.tier == 2  # type: ignore[attr-defined]
    ]
    for kind in ("accrued", "released", "settled"):
        assert sorted(x[1:] for x in second if x[0] == f"fx.commission.{kind}") == [
            (f"o-z{n}", 1290) for n in (1, 2, 3)
        ], second
    sources = {
        (e.data.distributor_id, e.data.source_distributor_id)  # type: ignore[attr-defined]
        for _, e in outcome.events
        if e.type.startswith("fx.commission.") and e.data.tier == 2  # type: ignore[attr-defined]
    }
    assert sources == {(SHARER, RECRUIT)}
    [member] = outcome.team
    assert (member["distributor_id"], member["status"], member["orders"]) == (
        RECRUIT, "qualified", 3,
    )  # fmt: skip
    assert member["tier2"]["settled"] == 3 * 1290
    assert outcome.balance["available_fen"] == 3 * 2580 - WITHDRAWAL - 2580 + 3 * 1290
