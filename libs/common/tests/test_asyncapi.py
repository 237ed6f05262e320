"""The AsyncAPI documents: generated from the code, checked in, internally consistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fx_common.asyncapi import cluster_document, dumps, service_document
from fx_common.contracts.registry import EVENT_MODELS

CHECKED_IN = Path(__file__).resolve().parents[3] / "contracts" / "asyncapi" / "cluster.json"


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def test_checked_in_cluster_document_matches_the_code() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == dumps(cluster_document()), (
        "contracts/asyncapi/cluster.json is stale: run `make contracts`"
    )


def test_cluster_document_covers_every_event_type_and_resolves() -> None:
    document = cluster_document()
    messages = {m["name"] for m in document["components"]["messages"].values()}
    assert set(EVENT_MODELS) <= messages
    for ref in refs(document["channels"]) + refs(document["operations"]):
        assert resolve(document, ref) is not None, ref
    addresses = {c["address"] for c in document["channels"].values()}
    assert {s["protocol"] for s in document["servers"].values()} == {"kafka"}
    paid = document["components"]["messages"]["mall_order_paid"]["bindings"]["kafka"]
    assert paid["key"]["description"].startswith("The Kafka key: data.buyer_id")
    visited = document["components"]["messages"]["mall_share_visited"]["bindings"]["kafka"]
    assert "data.visitor_id" in visited["key"]["description"]
    assert {"mall.orders.v1", "fx.payouts.v1", "fx.dlq.payout.v1", "fx.clock.v1"} <= addresses


def test_service_document_names_its_group_inputs_and_outputs() -> None:
    document = service_document(
        "commission", ["fx.order.attributed", "fx.distributor.qualified"], ["fx.commissions.v1"]
    )
    operations = document["operations"]
    receive = operations["receive_fx_attributions_v1"]
    assert receive["action"] == "receive"
    assert receive["bindings"]["kafka"]["groupId"] == {"type": "string", "const": "fx-commission"}
    assert operations["send_fx_commissions_v1"]["action"] == "send"
    assert "send_fx_dlq_commission_v1" in operations
    assert "fx_commission_settled" in document["components"]["messages"]
    json.dumps(document)
