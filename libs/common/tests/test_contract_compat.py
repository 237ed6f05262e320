"""The contract evolves safely: contracts/ stays backward compatible with contracts/released/
(BACKWARD mode of a schema registry), and each kind of break is caught."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fx_common.contracts.compat import breaking_changes, check_directory
from fx_common.contracts.export import export_schemas

CONTRACTS = Path(__file__).resolve().parents[3] / "contracts"
Schema = dict[str, Any]


def paid() -> Schema:
    return copy.deepcopy(export_schemas()["mall.order.paid.json"])


def attributed() -> Schema:
    return copy.deepcopy(export_schemas()["fx.order.attributed.json"])


def test_the_checked_in_contract_is_backward_compatible_with_the_release() -> None:
    released = {p.name for p in (CONTRACTS / "released").glob("*.json")}
    current = {name for name in export_schemas() if name != "index.json"}
    assert released == current, "a type was added or removed: see README 'Evolving the contract'"
    assert check_directory(CONTRACTS) == {}


def test_a_removed_released_type_is_reported(tmp_path: Path) -> None:
    (tmp_path / "released").mkdir()
    (tmp_path / "released" / "mall.order.paid.json").write_text("{}", encoding="utf-8")
    assert check_directory(tmp_path) == {"mall.order.paid.json": ["type removed"]}


def _remove_field(s: Schema) -> None:
    del s["properties"]["shipping_fen"]


def _rename_field(s: Schema) -> None:
    s["properties"]["buyer"] = s["properties"].pop("buyer_id")
    s["required"] = ["buyer" if r == "buyer_id" else r for r in s["required"]]


def _rename_nested_field(s: Schema) -> None:
    line = s["$defs"]["OrderLine"]
    line["properties"]["amount_fen"] = line["properties"].pop("paid_amount_fen")


def _new_required_field(s: Schema) -> None:
    s["properties"]["store_id"] = {"type": "string"}
    s["required"].append("store_id")


def _optional_made_mandatory(s: Schema) -> None:
    s["properties"]["share_id"] = {"type": "string", "minLength": 1, "maxLength": 128}


def _integer_to_string(s: Schema) -> None:
    s["$defs"]["OrderLine"]["properties"]["quantity"] = {"type": "string"}


def _lower_maximum(s: Schema) -> None:
    s["$defs"]["OrderLine"]["properties"]["paid_amount_fen"]["maximum"] = 10**9


def _shorter_ids(s: Schema) -> None:
    s["properties"]["order_id"]["maxLength"] = 64


def _new_pattern(s: Schema) -> None:
    s["properties"]["buyer_id"]["pattern"] = "^u-"


def _closed_object(s: Schema) -> None:
    s["additionalProperties"] = False


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_remove_field, "shipping_fen: field removed"),
        (_rename_field, "buyer_id: field removed"),
        (_rename_field, "buyer: new required field"),
        (_rename_nested_field, "lines[].paid_amount_fen: field removed"),
        (_new_required_field, "store_id: new required field"),
        (_optional_made_mandatory, "share_id: type narrowed (null no longer accepted)"),
        (_integer_to_string, "lines[].quantity: type narrowed (integer no longer accepted)"),
        (_lower_maximum, "lines[].paid_amount_fen: type narrowed (maximum"),
        (_shorter_ids, "order_id: type narrowed (maxLength 128 → 64)"),
        (_new_pattern, "buyer_id: type narrowed (pattern"),
        (_closed_object, "<data>: type narrowed (additionalProperties closed)"),
    ],
)
def test_each_kind_of_break_is_caught(change: Callable[[Schema], None], expected: str) -> None:
    current = paid()
    change(current)
    problems = breaking_changes(paid(), current)
    assert any(p.startswith(expected) for p in problems), problems


def test_an_enum_value_removed_is_caught() -> None:
    current = attributed()
    current["properties"]["basis"]["enum"].remove("share_link")
    assert breaking_changes(attributed(), current) == ["basis: enum value removed ['share_link']"]


def test_a_const_changed_is_caught() -> None:
    current = paid()
    current["properties"]["currency"]["const"] = "USD"
    assert breaking_changes(paid(), current) == ["currency: enum value removed ['CNY']"]


def _add_optional_field(s: Schema) -> None:
    s["properties"]["coupon_id"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}


def _raise_maximum(s: Schema) -> None:
    s["properties"]["order_id"]["maxLength"] = 256


def _required_made_optional(s: Schema) -> None:
    s["required"].remove("buyer_id")


def _integer_widened_to_number(s: Schema) -> None:
    s["$defs"]["OrderLine"]["properties"]["quantity"] = {"type": "number", "minimum": 1}


@pytest.mark.parametrize(
    "change",
    [_add_optional_field, _raise_maximum, _required_made_optional, _integer_widened_to_number],
)
def test_additive_changes_pass(change: Callable[[Schema], None]) -> None:
    current = paid()
    change(current)
    assert breaking_changes(paid(), current) == []


def test_an_enum_value_added_passes() -> None:
    current = attributed()
    current["properties"]["basis"]["enum"].append("coupon")
    assert breaking_changes(attributed(), current) == []
