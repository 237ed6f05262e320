"""One paid order's trace crosses all four services with its parent links intact.

The four services run as processes with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a tiny
OTLP/HTTP receiver in the test (tests/otlp_receiver.py: the services' real OTLP exporter,
protobuf over HTTP); the demo scenario runs; the spans of the order `o-1`'s trace (the W3C
trace id the mall put on `mall.order.paid`) are followed from payout back to the mall.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from demo.cluster import Cluster
from demo.scenario import Scenario
from tests.otlp_receiver import Receiver, Span
from tests.ports import free_port, free_ports

pytestmark = pytest.mark.integration

CONSUMER, PRODUCER = 5, 4  # OTLP SpanKind values


def parent(spans: dict[str, Span], span: Span) -> Span:
    assert span.parent_id in spans, f"{span.service}/{span.name}: parent {span.parent_id} missing"
    return spans[span.parent_id]


async def test_a_paid_orders_trace_reaches_all_four_services(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    with Receiver(free_port(38900, 38999)) as receiver:
        cluster = Cluster(
            bootstrap, tmp_path, namespace=f"trace-{unique}.",
            extra_env={"FX_CLOCK": "simulated", "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                       "OTEL_BSP_SCHEDULE_DELAY": "200"},
        )  # fmt: skip
        # Ports of our own range, checked free now (the default ephemeral ones may collide).
        cluster.ports = dict(zip(cluster.ports, free_ports(4, 38100, 38500), strict=True))
        cluster.start_all()
        try:
            scenario = Scenario(cluster, say=lambda _: None)
            await scenario.run()
        finally:
            codes = cluster.stop_all()
        assert set(codes.values()) <= {0, -15}, codes
    trace = scenario.traces["mall.order.paid:o-1"]
    spans = {s.span_id: s for s in receiver.spans if s.trace_id == trace}
    assert {s.service for s in spans.values()} == {
        "referral-binding", "qualification", "commission", "payout",
    }, Counter((s.service, s.name) for s in spans.values())  # fmt: skip

    # Every span's parent is in the trace, except the first one's: the mall's own span.
    outside = {s.parent_id for s in spans.values() if s.parent_id not in spans}
    assert len(outside) == 1, outside
    (root,) = [s for s in spans.values() if s.parent_id in outside]
    ns = cluster.namespace
    assert (root.service, root.name, root.kind) == (
        "referral-binding", f"consume {ns}mall.orders.v1", CONSUMER,
    )  # fmt: skip
    assert root.attributes["cloudevents.event_type"] == "mall.order.paid"

    # payout's consume of the accrued commission, followed back hop by hop to the mall's order.
    accrued = [
        s for s in spans.values()
        if s.service == "payout" and s.attributes.get("cloudevents.event_type")
        == "fx.commission.accrued"
    ]  # fmt: skip
    assert accrued, "payout did not consume o-1's accrued commission in its trace"
    chain, span = [], accrued[0]
    while span.parent_id in spans:
        chain.append((span.service, span.name))
        span = parent(spans, span)
    chain.append((span.service, span.name))
    assert chain == [
        ("payout", f"consume {ns}fx.commissions.v1"),
        ("commission", f"publish {ns}fx.commissions.v1"),
        ("commission", "handle fx.order.attributed"),
        ("commission", f"consume {ns}fx.attributions.v1"),
        ("referral-binding", f"publish {ns}fx.attributions.v1"),
        ("referral-binding", "handle mall.order.paid"),
        ("referral-binding", f"consume {ns}mall.orders.v1"),
    ]
    # qualification counted the same attribution: its consume span hangs off the same publish.
    publish_attributed = next(s for s in spans.values() if s.name == chain[4][1])
    assert any(
        s.service == "qualification" and s.parent_id == publish_attributed.span_id
        and s.kind == CONSUMER
        for s in spans.values()
    )  # fmt: skip
    assert all(s.kind == PRODUCER for s in spans.values() if s.name.startswith("publish "))

    # Each consume span links to its batch span; batches carry their transaction and commit.
    batches = {s.span_id: s for s in receiver.spans if s.name.startswith("batch ")}
    assert root.links and root.links[0] in {
        c.span_id for c in receiver.spans if c.name == "transaction"
    }
    children = Counter(s.name for s in receiver.spans if s.parent_id in batches)
    assert children["transaction"] and children["commit offsets"]

    # The HTTP side: FastAPI server spans, and the withdrawal's events continue its trace.
    withdrawals = [
        s
        for s in receiver.spans
        if s.service == "payout" and s.name.startswith("POST /v1/withdrawals")
    ]
    assert withdrawals, sorted({s.name for s in receiver.spans if s.service == "payout"})
    assert any(
        s.name == f"publish {ns}fx.payouts.v1" and s.trace_id == withdrawals[0].trace_id
        for s in receiver.spans
    )
