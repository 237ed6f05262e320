"""One error shape for everything, the framework's own errors included; body size limit;
the OpenAPI document states the errors, the roles and the bearer scheme; the clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY

if TYPE_CHECKING:
    from conftest import Bearer, MakeClient


def shape(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return response.status_code, body["error"]["code"]


def test_unknown_paths_and_dot_dot_are_404_in_the_shape(make_client: MakeClient) -> None:
    client = make_client()
    assert shape(client.get("/nope")) == (404, "not_found")
    assert shape(client.get("/v1/%2e%2e/%2e%2e/etc/passwd")) == (404, "not_found")
    assert shape(client.get("/v1/thing/../../metrics/x")) == (404, "not_found")


def test_a_wrong_method_is_405_with_every_allowed_method(
    make_client: MakeClient, bearer: Bearer
) -> None:
    client = make_client()
    response = client.delete("/v1/thing", headers=bearer("ops-1", "ops"))
    assert shape(response) == (405, "method_not_allowed")
    assert response.headers["Allow"] == "GET, PUT"
    assert shape(client.post("/v1/clock")) == (405, "method_not_allowed")
    assert client.post("/v1/clock").headers["Allow"] == "GET"


def test_bodies_that_are_not_json_are_422_in_the_shape(
    make_client: MakeClient, bearer: Bearer
) -> None:
    client = make_client(http_max_body_bytes=1_000_000)
    ops = {**bearer("ops-1", "ops"), "Content-Type": "application/json"}
    for raw in (b"{not json", b"", b"\xff\xfe", b'{"name": "x"', b"[" * 100_000 + b"]" * 100_000):
        response = client.put("/v1/thing", content=raw, headers=ops)
        assert shape(response) == (422, "invalid_request"), raw[:20]
    deep = b'{"name": "x", "depth": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert shape(client.put("/v1/thing", content=deep, headers=ops)) == (422, "invalid_request")
    wrong = client.put("/v1/thing", json={"name": 5}, headers=ops)
    assert shape(wrong) == (422, "invalid_request")
    assert "name" in wrong.json()["error"]["message"]


def test_an_oversized_body_is_413_before_parsing(make_client: MakeClient, bearer: Bearer) -> None:
    client = make_client(http_max_body_bytes=1024)
    ops = {**bearer("ops-1", "ops"), "Content-Type": "application/json"}
    big = b'{"name": "' + b"x" * 2000 + b'"}'
    response = client.put("/v1/thing", content=big, headers=ops)
    assert shape(response) == (413, "payload_too_large")
    assert "1024 bytes" in response.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"name": "'
        for _ in range(10):
            yield b"y" * 200
        yield b'"}'

    streamed = client.put("/v1/thing", content=chunks(), headers=ops)
    assert shape(streamed) == (413, "payload_too_large")
    small = client.put("/v1/thing", json={"name": "fits"}, headers=ops)
    assert small.json() == {"thing": "fits"}


def test_an_unexpected_error_is_500_in_the_shape(make_client: MakeClient, bearer: Bearer) -> None:
    response = make_client().post("/v1/boom", headers=bearer("ops-1", "ops"))
    assert shape(response) == (500, "internal_error")
    assert "a bug" not in response.text


def test_openapi_states_bearer_auth_roles_and_error_bodies(make_client: MakeClient) -> None:
    doc = make_client().get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A JWT with `sub`, `role` (distributor, ops or mall) and `exp`.",
    }
    put = doc["paths"]["/v1/thing"]["put"]
    assert put["security"] == [{"HTTPBearer": []}]
    assert put["x-fx-roles"] == ["ops"]
    assert {"401", "403", "413", "422"} <= set(put["responses"])
    for status in ("401", "403", "413", "422"):
        schema = put["responses"][status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
    checkout = doc["paths"]["/v1/checkout/{user_id}"]["get"]
    assert checkout["x-fx-roles"] == ["distributor", "ops", "mall"]
    assert "413" not in checkout["responses"]
    clock = doc["paths"]["/v1/clock"]["get"]
    assert "security" not in clock and "401" not in clock["responses"]


def test_the_clock_is_readable_before_and_after_a_move(make_client: MakeClient) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    client = make_client(clock="simulated")
    reading = client.get("/v1/clock").json()
    assert reading == {
        "mode": "simulated",
        "now": "2026-01-01T00:00:00Z",
        "unix_seconds": start.timestamp(),
        "start": "2026-01-01T00:00:00Z",
        "moves": 0,
    }
    runtime = client.app.state.runtime
    runtime.clock.advance_to(datetime(2026, 2, 1, tzinfo=UTC))
    moved = client.get("/v1/clock").json()
    assert (moved["now"], moved["moves"]) == ("2026-02-01T00:00:00Z", 1)
    assert client.get("/readyz").json()["clock"] == moved
    gauge = REGISTRY.get_sample_value("fx_clock_now_seconds", {"service": "http-shell-test"})
    assert gauge == datetime(2026, 2, 1, tzinfo=UTC).timestamp()
    assert 'fx_clock_now_seconds{service="http-shell-test"}' in client.get("/metrics").text


def test_the_system_clock_reading(make_client: MakeClient) -> None:
    reading = make_client().get("/v1/clock").json()
    assert (reading["mode"], reading["start"], reading["moves"]) == ("system", None, 0)
    assert abs(reading["unix_seconds"] - datetime.now(UTC).timestamp()) < 60
