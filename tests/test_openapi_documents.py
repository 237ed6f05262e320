"""What the four OpenAPI documents promise integrators: the bearer scheme, each route's error
answers with the error body, and a description on every money and status field."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fx_common.contracts.topics import SERVICES
from fx_common.http import create_app
from fx_common.runtime import ServiceRuntime

ERROR_BODY = {"$ref": "#/components/schemas/ErrorBody"}
METHODS = ("get", "put", "post", "delete", "patch")


def document(service: str, tmp_path: Path) -> dict[str, Any]:
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    settings = spec.settings_cls(database_url=f"sqlite:///{tmp_path / 'doc.db'}", env="test")
    runtime = ServiceRuntime(spec, settings)
    try:
        doc: dict[str, Any] = TestClient(create_app(spec, runtime)).get("/openapi.json").json()
        return doc
    finally:
        runtime.engine.dispose()


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def is_money_or_status(name: str) -> bool:
    return name.endswith(("_fen", "_bps")) or name in ("status", "basis", "rate_basis")


@pytest.mark.parametrize("service", SERVICES)
def test_errors_security_and_field_descriptions(service: str, tmp_path: Path) -> None:
    doc = document(service, tmp_path)
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    problems = []
    for name, operation in operations(doc):
        responses = operation["responses"]
        errors = [status for status in responses if status[0] in "45"]
        for status in errors:
            content = responses[status].get("content", {}).get("application/json", {})
            if content.get("schema") != ERROR_BODY:
                problems.append(f"{name} {status}: not the error body")
        if "security" in operation and not {"401", "403"} <= set(responses):
            problems.append(f"{name}: needs a token but documents no 401/403")
        if (operation.get("parameters") or "requestBody" in operation) and "422" not in errors:
            problems.append(f"{name}: takes input but documents no 422")
    for model, schema in doc["components"]["schemas"].items():
        for field, spec in schema.get("properties", {}).items():
            if is_money_or_status(field) and not spec.get("description"):
                problems.append(f"{model}.{field} has no description")
    assert not problems, "\n".join(problems)
