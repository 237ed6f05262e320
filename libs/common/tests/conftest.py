"""A small service app for the HTTP shell's tests: one route per role set, an SQLite store.

`make_client(**settings)` builds its TestClient (tokens: `token(sub, role)`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from pydantic import BaseModel, ConfigDict
from sqlalchemy.engine import Engine

from fx_common import db
from fx_common.http import Auth, MallReader, Ops, create_app, issue_token, require_reader
from fx_common.runtime import ServiceRuntime, ServiceSpec
from fx_common.settings import ServiceSettings
from fx_common.testing import fresh_postgres_database

SECRET = "fx-common-http-tests-secret-of-32-bytes"


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    depth: Any = None


router = APIRouter(prefix="/v1")


@router.get("/checkout/{user_id}")
def checkout_read(user_id: str, who: MallReader) -> dict[str, str]:
    require_reader(who, user_id)
    return {"user_id": user_id, "caller": who.subject, "role": who.role}


@router.get("/own/{user_id}")
def own_read(user_id: str, who: Auth) -> dict[str, str]:
    require_reader(who, user_id)
    return {"user_id": user_id}


@router.get("/thing")
def read_thing(who: Auth) -> dict[str, str]:
    return {"thing": "read"}


@router.put("/thing")
def put_thing(body: Thing, who: Ops) -> dict[str, str]:
    return {"thing": body.name}


@router.post("/boom")
def boom(who: Ops) -> dict[str, str]:
    raise RuntimeError("a bug")


SPEC = ServiceSpec(name="http-shell-test", topics=(), handlers={}, tables=(), router=router)

MakeClient = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> MakeClient:
    def make(**settings: Any) -> TestClient:
        return _client(tmp_path, **settings)

    return make


def _client(tmp_path: Path, **settings: Any) -> TestClient:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 'http.db'}",
        "jwt_secret": SECRET,
        **settings,
    }
    runtime = ServiceRuntime(SPEC, ServiceSettings(service="http-shell-test", **values))
    return TestClient(create_app(SPEC, runtime), raise_server_exceptions=False)


Bearer = Callable[..., dict[str, str]]


@pytest.fixture
def bearer() -> Bearer:
    """`bearer(sub, role, **issue_token options)`: an Authorization header (HS256, SECRET)."""

    def header(sub: str, role: str, **kwargs: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(SECRET, sub, role, **kwargs)}"}

    return header


@pytest.fixture(params=["sqlite", "postgres"])
def plumbing_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A store with only the plumbing tables (inbox, outbox, leases): SQLite, then Postgres."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'plumbing.db'}"
        made = db.make_engine(url)
        db.create_schema(made, [])
        yield made
        made.dispose()
        return
    server = os.environ.get("FX_TEST_POSTGRES_URL")
    if not server:
        pytest.fail("FX_TEST_POSTGRES_URL is not set: `make test` starts Postgres and sets it")
    with fresh_postgres_database(server) as url:
        made = db.make_engine(url)
        db.create_schema(made, [])
        yield made
        made.dispose()
