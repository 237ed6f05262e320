"""Decoding, filtering, summarising and trace matching of records (no broker)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka.structs import ConsumerRecord

from fx_common.envelope import encode, encode_structured, make_event
from fxctl.records import RecordFilter, Seen, mentions, seen, summary
from fxctl.trace import journey

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
PAID = {
    "order_id": "o-1",
    "buyer_id": "c-1",
    "currency": "CNY",
    "lines": [{"line_id": "l-1", "sku": "tea", "quantity": 1, "paid_amount_fen": 100}],
}


def record(
    value: bytes | None, headers: list[tuple[str, bytes]], *, key: str = "c-1", offset: int = 0
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic="mall.orders.v1", partition=0, offset=offset, timestamp=1_772_442_000_000,
        timestamp_type=0, key=key.encode(), value=value, checksum=None,
        serialized_key_size=0, serialized_value_size=0, headers=tuple(headers),
    )  # fmt: skip


def paid(at: datetime = T0, **data: Any) -> Seen:
    event = make_event("mall.order.paid", PAID | data, time=at, event_id=f"e-{at:%d%H}")
    return seen(record(*encode(event), key=(PAID | data)["buyer_id"]))


def test_binary_and_structured_records_decode_the_same() -> None:
    event = make_event("mall.order.paid", PAID, time=T0, event_id="e-1")
    binary, structured = seen(record(*encode(event))), seen(record(*encode_structured(event)))
    for view in (binary, structured):
        assert (view.id, view.type, view.time, view.error) == ("e-1", "mall.order.paid", T0, None)
        assert view.data == PAID
    as_json = binary.as_json()
    assert as_json["time"] == "2026-03-02T09:00:00Z"
    assert json.loads(json.dumps(as_json))["data"]["order_id"] == "o-1"


def test_an_undecodable_record_is_kept_with_its_error() -> None:
    event = make_event("mall.order.paid", PAID, time=T0, event_id="e-1")
    _, headers = encode(event)
    view = seen(record(b'{"order_id": "o-1", "currency": "USD"}', headers))
    assert view.error is not None and view.error.startswith("contract_violation")
    assert (view.id, view.type, view.time) == ("e-1", "mall.order.paid", T0)
    assert view.as_json()["raw"] == '{"order_id": "o-1", "currency": "USD"}'
    garbage = seen(record(b"not json", []))
    assert garbage.error is not None and garbage.type is None
    unknown = seen(record(b"{}", [*headers[:2], ("ce_type", b"mall.order.shipped"), *headers[3:]]))
    assert unknown.error == "unknown event type mall.order.shipped"


def test_filters_on_type_glob_key_and_event_time() -> None:
    view = paid()
    assert RecordFilter().matches(view)
    assert RecordFilter(types=("mall.order.*",)).matches(view)
    assert not RecordFilter(types=("mall.share.*", "fx.*")).matches(view)
    assert RecordFilter(key="c-1").matches(view) and not RecordFilter(key="c-2").matches(view)
    assert RecordFilter(since=T0, until=T0 + timedelta(seconds=1)).matches(view)
    assert not RecordFilter(since=T0 + timedelta(seconds=1)).matches(view)
    assert not RecordFilter(until=T0).matches(view)


def test_summary_is_one_short_line() -> None:
    assert summary(PAID) == "order_id=o-1 buyer_id=c-1 currency=CNY lines=[1]"
    assert summary({"x": "y" * 500}, width=20) == "x=" + "y" * 17 + "…"
    assert summary(None) == ""


def test_mentions_looks_at_id_fields_at_any_depth_and_id_lists() -> None:
    assert mentions(PAID, "o-1") and mentions(PAID, "c-1") and mentions(PAID, "l-1")
    assert not mentions(PAID, "tea")  # a sku is not an id
    assert not mentions(PAID, "CNY")
    assert mentions({"user_id": "u", "order_ids": ["o-1", "o-2"]}, "o-2")
    assert not mentions({"reason": "o-1"}, "o-1")


def test_journey_keeps_what_names_the_id_in_event_time_order() -> None:
    later, earlier = paid(T0 + timedelta(days=1)), paid(T0)
    other = paid(T0, order_id="o-2", buyer_id="c-2")
    assert journey([later, other, earlier], "o-1") == [earlier, later]
    assert journey([later, other, earlier], "c-2") == [other]


def test_ignored_lists_the_types_the_services_ignore_by_topic() -> None:
    from datetime import timedelta

    from fx_common.contracts.samples import SAMPLES
    from fx_common.envelope import encode, make_event
    from fx_common.testing import raw_record
    from fxctl.context import Target
    from fxctl.ignored_cmd import ignored_types
    from fxctl.records import seen

    start = datetime(2026, 3, 2, 9, tzinfo=UTC)
    value, headers = encode(make_event("mall.order.completed", SAMPLES["mall.order.completed"],
                                       time=start))  # fmt: skip

    def as_type(ce_type: str, topic: str, minutes: int) -> Any:
        hdrs = [
            (k, ce_type.encode() if k == "ce_type" else
             (start + timedelta(minutes=minutes)).isoformat().encode() if k == "ce_time" else v)
            for k, v in headers
        ]  # fmt: skip
        return seen(raw_record(topic, value, hdrs))

    records = [
        as_type("mall.order.cancelled", "ns.mall.orders.v1", 5),
        as_type("mall.order.cancelled", "ns.mall.orders.v1", 1),
        as_type("crm.customer.updated", "ns.mall.shares.v1", 2),
        as_type("mall.order.payed", "ns.mall.orders.v1", 3),  # dead-lettered, not ignored
        as_type("mall.order.completed", "ns.mall.orders.v1", 4),  # handled
        as_type("fx.clock.set", "ns.mall.orders.v1", 4),  # wrong topic: dead-lettered
    ]
    found = ignored_types(records, Target("x", "ns."))
    assert [(e.topic, e.type, e.count) for e in found] == [
        ("mall.orders.v1", "mall.order.cancelled", 2),
        ("mall.shares.v1", "crm.customer.updated", 1),
    ]
    assert found[0].first_time == start + timedelta(minutes=1)
