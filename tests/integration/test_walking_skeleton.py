"""The four services as real processes on the real broker: a share visit and paid orders
published to mall.* come out as a binding, attributions, commissions and a ledger credit."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from demo.cluster import Cluster
from demo.scenario import SHARER, Scenario

pytestmark = pytest.mark.integration


async def test_share_visit_and_orders_flow_through_all_four_services(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    cluster = Cluster(
        bootstrap, tmp_path, namespace=f"e2e-{unique}.", port_offset=200,
        extra_env={"FX_CLOCK": "simulated"},
    )  # fmt: skip
    cluster.start_all()
    try:
        outcome = await Scenario(cluster, say=lambda _: None).run()
    finally:
        codes = cluster.stop_all()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is the normal exit code.
    assert set(codes.values()) <= {0, -15}, f"unexpected exit: {codes}"
    for service in codes:
        assert "stopped cleanly" in cluster.log(service).read_text(), f"{service} did not drain"

    types = outcome.types()
    for expected in (
        "fx.distributor.assessment_started",
        "fx.binding.created",
        "fx.order.attributed",
        "fx.distributor.qualified",
        "fx.commission.accrued",
        "fx.commission.released",
        "fx.commission.settled",
    ):
        assert expected in types, f"{expected} missing; saw {sorted(types)}"
    attributed = [e for _, e in outcome.events if e.type == "fx.order.attributed"]
    assert {e.data.distributor_id for e in attributed} == {SHARER}  # type: ignore[attr-defined]
    assert {e.data.basis for e in attributed} == {"binding"}  # type: ignore[attr-defined]

    settled = sum(
        e.data.amount_fen  # type: ignore[attr-defined]
        for _, e in outcome.events
        if e.type == "fx.commission.settled"
    )
    assert settled == 3 * 2580  # 10% of 258.00 per order, floored per line
    assert outcome.balance["available_fen"] == settled
    engine = create_engine(cluster.database_url("payout"))
    with engine.connect() as conn:
        credits = conn.execute(text("SELECT count(*) FROM po_ledger_entry")).scalar()
    engine.dispose()
    assert credits == 3
