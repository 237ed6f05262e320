"""What the OpenAPI document says about errors and roles, derived from the routes.

Every route documents the error answers it can give, all with the `ErrorBody` model: 401 and
403 (and 503 when the key set cannot be read) when it needs a token, 422 when it takes
parameters or a body (also when the body is not JSON), 413 when it takes a body, plus what
the route declares itself with `errors(...)` (404, 409, 412, 428). The roles a route admits
are appended to its description and given as `x-fx-roles`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic.json_schema import models_json_schema

from fx_common.auth import Role, role_names, roles_of
from fx_common.errors import ErrorBody

DESCRIPTIONS = {
    400: "A required header is missing or invalid.",
    401: "No token, or the token is invalid or expired (`unauthenticated`, `invalid_token`, "
    "`token_expired`).",
    403: "The token's role may not do this, or it is another distributor's data (`forbidden`).",
    404: "No such resource (`not_found` or a more specific code).",
    409: "The request does not fit the current state; nothing was written.",
    412: "`If-Match` names a version that is no longer the latest (`version_mismatch`).",
    413: "The body is over the size limit (`payload_too_large`).",
    422: "A parameter or body field is missing or invalid, or the body is not JSON "
    "(`invalid_request` or a more specific code).",
    428: "`If-Match` is required (`if_match_required`).",
    503: "The signing keys could not be read (`auth_unavailable`).",
}


def errors(*statuses: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route's own error answers; `described` overrides descriptions
    (keys `s404`, `s409`…)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        text = described.get(f"s{status}", DESCRIPTIONS.get(status, "Error."))
        out[status] = {"model": ErrorBody, "description": text}
    return out


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for child in dependant.dependencies:
        yield from _dependants(child)


def route_roles(route: APIRoute) -> tuple[Role, ...] | None:
    for dependant in _dependants(route.dependant):
        roles = roles_of(dependant.call)
        if roles is not None:
            return roles
    return None


def _takes_parameters(route: APIRoute) -> bool:
    return any(
        d.path_params or d.query_params or d.header_params or d.cookie_params
        for d in _dependants(route.dependant)
        if roles_of(d.call) is None
    )


def api_routes(app: FastAPI) -> Iterator[tuple[str, set[str], APIRoute]]:
    """(path, methods, route) of every API route, those of included routers too."""
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            yield context.path_format or route.path, set(context.methods or ()), route


def _error_schemas() -> dict[str, Any]:
    _, top = models_json_schema(
        [(ErrorBody, "serialization")], ref_template="#/components/schemas/{model}"
    )
    defs: dict[str, Any] = top.get("$defs", {})
    return defs


FASTAPI_422 = "#/components/schemas/HTTPValidationError"


def _document(app: FastAPI, doc: dict[str, Any]) -> None:
    doc.setdefault("components", {}).setdefault("schemas", {}).update(_error_schemas())
    error_body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path, methods, route in api_routes(app):
        if not route.include_in_schema:
            continue
        statuses: set[int] = set()
        roles = route_roles(route)
        if route.body_field is not None:
            statuses |= {413, 422}
        if _takes_parameters(route):
            statuses.add(422)
        for method in methods:
            operation = doc["paths"][path][method.lower()]
            if roles is not None:
                statuses |= {401, 403, 503}
                note = f"Roles: {role_names(roles)}."
                operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
                operation["x-fx-roles"] = [role.value for role in roles]
            responses = operation.setdefault("responses", {})
            if FASTAPI_422 in str(responses.get("422", {})):  # its body is ErrorBody here
                del responses["422"]
            for status in sorted(statuses):
                responses.setdefault(
                    str(status), {"description": DESCRIPTIONS[status], "content": error_body}
                )
    for unused in ("HTTPValidationError", "ValidationError"):
        doc["components"]["schemas"].pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    """`app.openapi()` with the errors and roles of every route (computed once)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _document(app, doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def link_to(name: str, path: str, method: str, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to the route `name` (its function) at `path` (as served, prefix
    included), its parameters taken from this response (`$response.body#/withdrawal_id`):
    how a client (and schemathesis' stateful phase) goes from a created resource to its
    operations."""
    operation_id = re.sub(r"\W", "_", f"{name}{path}") + f"_{method.lower()}"
    return {"operationId": operation_id, "parameters": parameters}
