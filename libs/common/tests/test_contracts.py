"""Event contracts: registry completeness, validation rules and JSON Schema drift."""

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from fx_common.contracts import topics
from fx_common.contracts.base import ContractModel
from fx_common.contracts.export import EXPORT_COMMAND, dumps, export_schemas
from fx_common.contracts.mall_orders import OrderPaid
from fx_common.contracts.registry import (
    EVENT_MODELS,
    EVENT_TOPIC,
    TOPIC_EVENT_TYPES,
    TOPIC_KEY_FIELD,
    key_for,
    model_for,
)
from fx_common.contracts.samples import SAMPLES

REPO_ROOT = Path(__file__).resolve().parents[3]
CONTRACTS_DIR = REPO_ROOT / "contracts"
ALL_TOPICS = (
    topics.MALL_SHARES,
    topics.MALL_ORDERS,
    topics.QUALIFICATION,
    topics.QUALIFICATION_COMMANDS,
    topics.BINDINGS,
    topics.ATTRIBUTIONS,
    topics.COMMISSIONS,
    topics.PAYOUTS,
    topics.CLOCK,
)
MONEY_FIELDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "mall.order.paid": lambda data: data["lines"][0],
    "mall.order.refunded": lambda data: data["lines"][0],
    "fx.order.attributed": lambda data: data["lines"][0],
    "fx.order.refunded": lambda data: data["lines"][0],
    "fx.commission.accrued": lambda data: data,
    "fx.commission.settled": lambda data: data,
    "fx.commission.reversed": lambda data: data,
    "fx.withdrawal.requested": lambda data: data,
}


def sample(ce_type: str) -> dict[str, Any]:
    return copy.deepcopy(SAMPLES[ce_type])


def validate(ce_type: str, data: dict[str, Any]) -> ContractModel:
    model = model_for(ce_type)
    assert model is not None
    return model.model_validate_json(json.dumps(data))


def money_field(container: dict[str, Any]) -> str:
    return next(name for name in container if name.endswith("_fen"))


# --- registry -----------------------------------------------------------------------------


def test_every_topic_lists_its_types_and_every_type_has_a_model() -> None:
    assert set(TOPIC_EVENT_TYPES) == set(ALL_TOPICS)
    listed = [ce_type for ce_types in TOPIC_EVENT_TYPES.values() for ce_type in ce_types]
    assert len(listed) == len(set(listed))
    assert set(listed) == set(EVENT_MODELS)
    assert set(SAMPLES) == set(EVENT_MODELS)


def test_topics_hold_the_types_of_contracts_md() -> None:
    assert TOPIC_EVENT_TYPES[topics.MALL_SHARES] == ("mall.share.created", "mall.share.visited")
    assert TOPIC_EVENT_TYPES[topics.ATTRIBUTIONS] == (
        "fx.order.attributed",
        "fx.order.completed",
        "fx.order.refunded",
        "fx.recruiter.recorded",
    )
    assert len(TOPIC_EVENT_TYPES[topics.QUALIFICATION]) == 6
    assert len(TOPIC_EVENT_TYPES[topics.COMMISSIONS]) == 6
    assert len(TOPIC_EVENT_TYPES[topics.PAYOUTS]) == 5
    assert TOPIC_EVENT_TYPES[topics.CLOCK] == ("fx.clock.set",)


def test_unknown_types_have_no_model() -> None:
    assert model_for("mall.order.shipped") is None


@pytest.mark.parametrize(
    ("ce_type", "expected"),
    [
        ("mall.share.created", "u-sharer"),
        ("mall.share.visited", "u-buyer"),
        ("mall.order.paid", "u-buyer"),
        ("fx.distributor.qualified", "u-sharer"),
        ("fx.binding.created", "u-buyer"),
        ("fx.order.attributed", "u-sharer"),
        ("fx.commission.accrued", "u-sharer"),
        ("fx.withdrawal.paid", "u-sharer"),
        ("fx.clock.set", "clock"),
    ],
)
def test_key_for(ce_type: str, expected: str) -> None:
    assert key_for(ce_type, validate(ce_type, sample(ce_type))) == expected


def test_every_type_has_a_key() -> None:
    for ce_type in EVENT_MODELS:
        assert key_for(ce_type, validate(ce_type, sample(ce_type)))


def test_topic_key_fields_exist_on_every_model_of_the_topic() -> None:
    for topic, field in TOPIC_KEY_FIELD.items():
        for ce_type in TOPIC_EVENT_TYPES[topic]:
            assert field in EVENT_MODELS[ce_type].model_fields, (ce_type, field)


def test_key_for_rejects_unknown_types() -> None:
    with pytest.raises(KeyError):
        key_for("mall.order.shipped", validate("mall.order.paid", sample("mall.order.paid")))


# --- valid samples ------------------------------------------------------------------------


@pytest.mark.parametrize("ce_type", sorted(SAMPLES))
def test_sample_validates(ce_type: str) -> None:
    event = validate(ce_type, sample(ce_type))
    assert isinstance(event, EVENT_MODELS[ce_type])
    assert json.loads(event.model_dump_json(exclude_unset=True)) == SAMPLES[ce_type]


@pytest.mark.parametrize("ce_type", sorted(SAMPLES))
def test_python_mode_validates_too(ce_type: str) -> None:
    model = EVENT_MODELS[ce_type]
    assert model.model_validate(sample(ce_type)) == validate(ce_type, sample(ce_type))


def test_models_are_frozen() -> None:
    event = validate("mall.order.paid", sample("mall.order.paid"))
    assert isinstance(event, OrderPaid)
    with pytest.raises(ValidationError):
        event.order_id = "o-2"  # type: ignore[misc]


# --- rejections ---------------------------------------------------------------------------


@pytest.mark.parametrize("ce_type", sorted(MONEY_FIELDS))
@pytest.mark.parametrize("bad", [12.5, "12", -1, True, None, 2**53, 1e300, float("inf")])
def test_money_must_be_a_non_negative_integer(ce_type: str, bad: object) -> None:
    data = sample(ce_type)
    container = MONEY_FIELDS[ce_type](data)
    container[money_field(container)] = bad
    with pytest.raises(ValidationError):
        validate(ce_type, data)
    with pytest.raises(ValidationError):
        EVENT_MODELS[ce_type].model_validate(data)


@pytest.mark.parametrize("ce_type", sorted(MONEY_FIELDS))
@pytest.mark.parametrize("raw", ["1200.0", "1.2e3", "12e2"])
def test_money_written_as_an_integral_json_number_is_that_integer(ce_type: str, raw: str) -> None:
    """JSON Schema's "integer" accepts 1200.0, so the service reads it as 1200 fen too."""
    data = sample(ce_type)
    container = MONEY_FIELDS[ce_type](data)
    field = money_field(container)
    container[field] = "__raw__"
    text = json.dumps(data).replace('"__raw__"', raw)
    parsed = EVENT_MODELS[ce_type].model_validate_json(text).model_dump(mode="json")
    value = MONEY_FIELDS[ce_type](parsed)[field]
    assert value == 1200 and isinstance(value, int)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", 2**31])
def test_quantity_must_be_a_positive_integer(bad: object) -> None:
    data = sample("mall.order.paid")
    data["lines"][0]["quantity"] = bad
    with pytest.raises(ValidationError):
        validate("mall.order.paid", data)


@pytest.mark.parametrize(
    "ce_type",
    ["mall.order.paid", "mall.order.refunded", "fx.order.attributed", "fx.order.refunded"],
)
def test_lines_must_not_be_empty(ce_type: str) -> None:
    data = sample(ce_type)
    data["lines"] = []
    with pytest.raises(ValidationError, match="at least 1"):
        validate(ce_type, data)


@pytest.mark.parametrize(
    "ce_type",
    ["mall.order.paid", "mall.order.refunded", "fx.order.attributed", "fx.order.refunded"],
)
def test_line_ids_must_be_unique(ce_type: str) -> None:
    data = sample(ce_type)
    data["lines"] = [data["lines"][0], {**data["lines"][0]}]
    with pytest.raises(ValidationError, match="duplicate line_id 'l-1'"):
        validate(ce_type, data)


@pytest.mark.parametrize(
    ("ce_type", "field"),
    [
        ("fx.distributor.assessment_started", "deadline"),
        ("fx.binding.created", "protected_until"),
        ("fx.binding.extended", "protected_until"),
        ("fx.order.attributed", "paid_at"),
        ("fx.clock.set", "now"),
    ],
)
def test_naive_datetimes_are_rejected(ce_type: str, field: str) -> None:
    data = sample(ce_type)
    data[field] = "2025-01-03T00:00:00"
    with pytest.raises(ValidationError, match="timezone"):
        validate(ce_type, data)


@pytest.mark.parametrize("currency", ["USD", "cny", None])
def test_currency_must_be_cny(currency: object) -> None:
    data = sample("mall.order.paid")
    data["currency"] = currency
    with pytest.raises(ValidationError):
        validate("mall.order.paid", data)


@pytest.mark.parametrize("ce_type", sorted(SAMPLES))
def test_every_required_field_is_required(ce_type: str) -> None:
    model = EVENT_MODELS[ce_type]
    required = [name for name, info in model.model_fields.items() if info.is_required()]
    assert required
    for name in required:
        data = sample(ce_type)
        del data[name]
        with pytest.raises(ValidationError, match=name):
            validate(ce_type, data)


def test_missing_line_field_is_rejected() -> None:
    data = sample("mall.order.paid")
    del data["lines"][1]["paid_amount_fen"]
    with pytest.raises(ValidationError, match="paid_amount_fen"):
        validate("mall.order.paid", data)


@pytest.mark.parametrize("bad", ["", 42, "x" * 129])
def test_ids_must_be_non_empty_strings(bad: object) -> None:
    data = sample("mall.order.paid")
    data["order_id"] = bad
    with pytest.raises(ValidationError):
        validate("mall.order.paid", data)


@pytest.mark.parametrize(
    ("ce_type", "field", "bad"),
    [
        ("fx.order.attributed", "basis", "coupon"),
        ("fx.binding.released", "reason", "manual"),
        ("fx.commission.accrued", "status", "settled"),
        ("fx.withdrawal.requested", "method", "paypal"),
        ("fx.commission.accrued", "rate_bps", 10_001),
        ("fx.withdrawal.requested", "amount_fen", 0),
    ],
)
def test_enumerations_and_ranges(ce_type: str, field: str, bad: object) -> None:
    data = sample(ce_type)
    data[field] = bad
    with pytest.raises(ValidationError):
        validate(ce_type, data)


def test_withdrawal_fee_cannot_exceed_the_amount() -> None:
    data = sample("fx.withdrawal.requested")
    data["fee_fen"] = data["amount_fen"] + 1
    with pytest.raises(ValidationError, match="fee_fen exceeds amount_fen"):
        validate("fx.withdrawal.requested", data)


# --- tolerant reader ----------------------------------------------------------------------


def test_extra_fields_are_preserved() -> None:
    data = sample("mall.order.paid")
    data["coupon_code"] = "SPRING"
    data["lines"][0]["gift_wrap"] = True
    event = validate("mall.order.paid", data)
    assert isinstance(event, OrderPaid)
    assert event.model_extra == {"coupon_code": "SPRING"}
    dumped = json.loads(event.model_dump_json(exclude_unset=True))
    assert dumped["coupon_code"] == "SPRING"
    assert dumped["lines"][0]["gift_wrap"] is True


@pytest.mark.parametrize("ce_type", sorted(SAMPLES))
def test_extra_fields_pass_through_every_type(ce_type: str) -> None:
    data = {**sample(ce_type), "added_later": {"nested": [1, 2]}}
    dumped = json.loads(validate(ce_type, data).model_dump_json(exclude_unset=True))
    assert dumped["added_later"] == {"nested": [1, 2]}


def test_optional_fields_default_to_none() -> None:
    data = sample("mall.order.paid")
    for name in ("share_id", "shipping_fen"):
        del data[name]
    del data["lines"][0]["category"]
    event = validate("mall.order.paid", data)
    assert isinstance(event, OrderPaid)
    assert event.share_id is None
    assert event.shipping_fen is None
    assert event.lines[0].category is None


# --- JSON Schema --------------------------------------------------------------------------


def test_checked_in_schemas_match_the_models() -> None:
    fresh = export_schemas()
    hint = f"contracts/ is out of date with the models: run `{EXPORT_COMMAND}` and commit it"
    checked_in = {path.name for path in CONTRACTS_DIR.glob("*.json")}
    assert checked_in == set(fresh), hint
    for name, content in fresh.items():
        on_disk = (CONTRACTS_DIR / name).read_text(encoding="utf-8")
        assert on_disk == dumps(content), f"{name}: {hint}"


def test_schemas_name_their_type_topic_and_key() -> None:
    files = export_schemas()
    for ce_type, topic in EVENT_TOPIC.items():
        schema = files[f"{ce_type}.json"]
        assert schema["title"] == ce_type
        assert schema["$id"] == f"{ce_type}.json"
        assert f"Topic `{topic}`; Kafka key: " in schema["description"]
        assert not [k for k in schema if k.startswith("x-")]
        assert schema["additionalProperties"] is True
        assert schema["examples"]
    assert "Kafka key: data.visitor_id." in files["mall.share.visited.json"]["description"]
    assert "Kafka key: data.sharer_id." in files["mall.share.created.json"]["description"]
    assert "Kafka key: the constant 'clock'." in files["fx.clock.set.json"]["description"]
    index = files["index.json"]["topics"]
    assert set(index) == set(TOPIC_EVENT_TYPES)
    assert index["mall.orders.v1"]["types"]["mall.order.paid"] == {
        "key": {"field": "buyer_id"},
        "model": "OrderPaid",
        "schema": "mall.order.paid.json",
    }
    assert "mall.order.cancelled" in index["mall.orders.v1"]["ignored_types"]
    assert index["fx.clock.v1"]["types"]["fx.clock.set"]["key"] == {"const": "clock"}


def test_money_is_an_integer_in_the_schema() -> None:
    schema = export_schemas()["mall.order.paid.json"]
    line = schema["$defs"]["OrderLine"]["properties"]["paid_amount_fen"]
    assert line["type"] == "integer"
    assert line["minimum"] == 0


def test_export_main_writes_the_files(tmp_path: Path) -> None:
    from fx_common.contracts.export import main

    (tmp_path / "stale.json").write_text("{}\n", encoding="utf-8")
    main([str(tmp_path)])
    assert {path.name for path in tmp_path.iterdir()} == set(export_schemas())
    text = (tmp_path / "fx.clock.set.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text.startswith('{\n  "$id": "fx.clock.set.json",')
