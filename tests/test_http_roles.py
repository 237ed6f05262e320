"""The role walk: every route of the four services, with every role and with bad tokens,
against the role × route table of the README (which must name every route)."""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from fx_common import migrations
from fx_common.contracts.topics import SERVICES
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime

ROOT = Path(__file__).resolve().parents[1]
SECRET = "role-walk-secret-at-least-32-bytes-long"
AUDIENCE = "fenxiao"
ROLES = ("distributor", "ops", "mall")
USER_PARAMS = {"distributor_id", "user_id", "customer_id"}
PUBLIC = {"/healthz", "/readyz", "/metrics", "/asyncapi", "/v1/clock"}
SIGNED = {"POST /v1/webhooks/wecom/contact-added"}
ROW = re.compile(r"^\| (?P<service>[a-z-]+) \| `(?P<route>[A-Z]+ [^`]+)` \| (?P<cells>.+) \|$")


def role_table() -> dict[tuple[str, str], dict[str, str]]:
    """(service, "METHOD /path") → {role: "yes" | "own" | "—"} from the README."""
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match and match["service"] in SERVICES:
            cells = [cell.strip() for cell in match["cells"].split("|")]
            table[match["service"], match["route"]] = dict(zip(ROLES, cells, strict=True))
    return table


def app_of(service: str, tmp_path: Path) -> FastAPI:
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    settings = spec.settings_cls(
        database_url=f"sqlite:///{tmp_path / (service + '.db')}",
        jwt_secret=SECRET,
        jwt_audience=AUDIENCE,
        clock="simulated",
    )
    runtime = ServiceRuntime(spec, settings)
    assert spec.migrations is not None
    migrations.upgrade(runtime.engine, spec.migrations)
    return create_app(spec, runtime)


def routes(app: FastAPI) -> Iterator[tuple[str, str, APIRoute]]:
    for context in iter_route_contexts(app.router.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in sorted(context.methods or ()):
                yield method, context.path_format or route.path, route


def fill(path: str, subject: str) -> str:
    def value(match: re.Match[str]) -> str:
        return subject if match[1] in USER_PARAMS else f"{match[1]}-1"

    return re.sub(r"\{(\w+)\}", value, path)


def token(sub: str, role: str, **options: Any) -> dict[str, str]:
    options.setdefault("audience", AUDIENCE)
    return {"Authorization": f"Bearer {issue_token(SECRET, sub, role, **options)}"}


BAD_TOKENS = {
    "no token": {},
    "expired": token("ops-1", "ops", ttl_s=-120),
    "wrong audience": token("ops-1", "ops", audience="another-app"),
    "no audience": token("ops-1", "ops", audience=None),
    "forged": {"Authorization": f"Bearer {issue_token('x' * 40, 'ops-1', 'ops')}"},
}


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    body: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
    status: int = client.request(method, path, headers=headers, **body).status_code
    return status


@pytest.mark.parametrize("service", SERVICES)
def test_every_route_with_every_role(service: str, tmp_path: Path) -> None:
    table = {route: cells for (svc, route), cells in role_table().items() if svc == service}
    app = app_of(service, tmp_path)
    client = TestClient(app, raise_server_exceptions=False)
    served = set()
    problems: list[str] = []
    for method, path, _route in routes(app):
        key = f"{method} {path}"
        served.add(key)
        if path in PUBLIC:
            for name, headers in BAD_TOKENS.items():
                if call(client, method, path, headers) in (401, 403):
                    problems.append(f"{key} is public but refused {name}")
            continue
        if key in SIGNED:  # no JWT: the HMAC signature (absent here) decides
            for role in ROLES:
                if call(client, method, path, token("u-1", role)) < 400:
                    problems.append(f"{key} accepted a JWT without a signature")
            continue
        if key not in table:
            problems.append(f"{key} is missing from the README's role table")
            continue
        problems += walk(client, method, path, key, table[key], "{" in path)
    assert not problems, "\n".join(problems)
    stale = sorted(set(table) - served)
    assert not stale, f"the README names routes {service} does not serve: {stale}"


def walk(
    client: TestClient, method: str, path: str, key: str, cells: dict[str, str], params: bool
) -> list[str]:
    problems = []
    for name, headers in BAD_TOKENS.items():
        if (status := call(client, method, fill(path, "d-1"), headers)) != 401:
            problems.append(f"{key} with {name}: {status}, not 401")
    for role, cell in cells.items():
        me = f"{role}-self"
        status = call(client, method, fill(path, me), token(me, role))
        if cell == "—" and status != 403:
            problems.append(f"{key} as {role}: {status}, not 403")
        if cell in ("yes", "own") and status in (401, 403):
            problems.append(f"{key} as {role} for itself: {status}")
        if cell == "own" and any(f"{{{p}}}" in path for p in USER_PARAMS):
            other = call(client, method, fill(path, "someone-else"), token(me, role))
            if other != 403:
                problems.append(f"{key} as {role} for another user: {other}, not 403")
    return problems


def test_the_table_only_uses_known_cells() -> None:
    table = role_table()
    assert len(table) >= 30
    assert {cell for cells in table.values() for cell in cells.values()} <= {"yes", "own", "—"}
    money_or_rules = [r for r in table if r[1].split()[0] in ("POST", "PUT", "DELETE")]
    assert all(table[r]["mall"] == "—" for r in money_or_rules), "the mall role only reads"
