"""contracts/ as a Node.js integrator sees it: ajv in strict mode (tests/contract-js, installed
by deploy/install-deps.sh) compiles every schema and validates its own examples, and ajv and
the service agree on what is valid (integers written as 1200.0, bounds, times)."""

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fx_common.contracts.export import export_schemas
from fx_common.envelope import DecodeError, decode

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "tests" / "contract-js"
CONTRACTS = ROOT / "contracts"


def _node() -> str:
    node = shutil.which("node")
    assert node, "node is missing: run deploy/install-deps.sh"
    assert (CHECKER / "node_modules" / "ajv").is_dir(), "ajv is missing: run deploy/install-deps.sh"
    return node


def ajv_valid(instances: list[tuple[str, str]]) -> list[bool]:
    """ajv's verdict on each (schema file, JSON text)."""
    request = json.dumps([{"schema": schema, "json": text} for schema, text in instances])
    done = subprocess.run(
        [_node(), str(CHECKER / "check.mjs"), str(CONTRACTS), "--instances"],
        input=request,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result: list[bool] = json.loads(done.stdout)
    return result


def test_ajv_strict_compiles_every_schema_and_accepts_its_examples() -> None:
    done = subprocess.run(
        [_node(), str(CHECKER / "check.mjs"), str(CONTRACTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    assert report["errors"] == [], report["errors"]
    assert done.returncode == 0
    schemas = [name for name in export_schemas() if name != "index.json"]
    assert report["schemas"] == len(schemas) >= 31
    assert report["examples"] >= len(schemas)


def test_ajv_strict_refuses_an_unknown_keyword(tmp_path: Path) -> None:
    """The check is strict: the annotation that made ajv refuse the schemas fails it."""
    schema = json.loads((CONTRACTS / "mall.order.paid.json").read_text(encoding="utf-8"))
    schema["x-key"] = {"field": "buyer_id"}
    (tmp_path / "mall.order.paid.json").write_text(json.dumps(schema), encoding="utf-8")
    done = subprocess.run(
        [_node(), str(CHECKER / "check.mjs"), str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 1
    errors = json.loads(done.stdout)["errors"]
    assert [e["message"] for e in errors] == ['strict mode: unknown keyword: "x-key"']


def _paid(amount: str, quantity: str = "2", order_id: str = '"o-1"') -> str:
    return (
        f'{{"order_id": {order_id}, "buyer_id": "u-1", "currency": "CNY", "lines": '
        f'[{{"line_id": "l-1", "sku": "tea", "quantity": {quantity}, '
        f'"paid_amount_fen": {amount}}}]}}'
    )


PAID_CASES = [
    _paid("1200"),
    _paid("1200.0"),
    _paid("1.2e3"),
    _paid("12.5"),
    _paid('"1200"'),
    _paid("true"),
    _paid("-1"),
    _paid(str(2**53 - 1)),
    _paid(str(2**53)),
    _paid(str(2**63)),
    _paid("1", quantity="2.0"),
    _paid("1", quantity=str(2**31)),
    _paid("1", order_id='"a\\u0000b"'),
    _paid("1", order_id='""'),
    _paid("1", order_id=json.dumps("x" * 129)),
]


def _service_accepts(value: bytes, headers: list[tuple[str, bytes]]) -> bool:
    try:
        decode(value, headers)
    except DecodeError:
        return False
    return True


def _headers(ce_type: str = "mall.order.paid", time: str = "2025-01-03T00:30:00Z") -> list[Any]:
    return [
        ("ce_specversion", b"1.0"),
        ("ce_id", b"e-1"),
        ("ce_type", ce_type.encode()),
        ("ce_source", b"/mall/orders"),
        ("ce_time", time.encode()),
        ("content-type", b"application/json"),
    ]


def test_ajv_and_the_service_agree_on_money_counts_and_ids() -> None:
    verdicts = ajv_valid([("mall.order.paid.json", text) for text in PAID_CASES])
    service = [_service_accepts(text.encode(), _headers()) for text in PAID_CASES]
    assert verdicts == service
    assert verdicts[:3] == [True, True, True]  # 1200, 1200.0 and 1.2e3 are all 1200 fen
    assert sum(verdicts) == 5


TIMES = [
    "2025-01-03T00:30:00Z",
    "2025-01-03T08:30:00+08:00",
    "2099-12-31T23:59:59Z",
    "1735689600000",
    "9999-12-30T00:00:00Z",
    "1999-12-31T23:59:59Z",
    "2025-01-03T00:30:00",
]


def test_ajv_and_the_service_agree_on_ce_time() -> None:
    headers = [dict((k, v.decode()) for k, v in _headers(time=time)) for time in TIMES]
    verdicts = ajv_valid([("cloudevents.binary-headers.json", json.dumps(h)) for h in headers])
    service = [_service_accepts(_paid("1").encode(), _headers(time=time)) for time in TIMES]
    assert verdicts == service == [True, True, True, False, False, False, False]


def test_ajv_and_the_service_agree_on_structured_events() -> None:
    def event(data: str, time: str = '"2025-01-03T00:30:00Z"') -> str:
        return (
            '{"specversion": "1.0", "id": "e-1", "type": "mall.order.paid", '
            f'"source": "/mall/orders", "time": {time}, "data": {data}}}'
        )

    cases = [
        event(_paid("1200.0")),
        event(_paid(str(2**53))),
        event('{"order_id": "o-1"}'),
        event(_paid("1"), time="1735689600000"),
    ]
    verdicts = ajv_valid([("cloudevents.structured.json", text) for text in cases])
    structured = [("content-type", b"application/cloudevents+json")]
    service = [_service_accepts(text.encode(), structured) for text in cases]
    assert verdicts == service == [True, False, False, False]


@pytest.mark.parametrize("structured", [False, True])
def test_ce_time_in_epoch_milliseconds_gets_a_message_saying_so(structured: bool) -> None:
    millis = int(datetime(2025, 1, 3, tzinfo=UTC).timestamp() * 1000)
    if structured:
        value = json.dumps(
            {
                "specversion": "1.0",
                "id": "e-1",
                "type": "mall.order.paid",
                "source": "/mall/orders",
                "time": millis,
                "data": json.loads(_paid("1")),
            }
        ).encode()
        headers = [("content-type", b"application/cloudevents+json")]
    else:
        value, headers = _paid("1").encode(), _headers(time=str(millis))
    with pytest.raises(DecodeError) as caught:
        decode(value, headers)
    assert "looks like epoch milliseconds" in caught.value.message
    assert "RFC 3339" in caught.value.message
