"""The four services in-process (SQLite stores, no broker) behind httpx transports: the
console's tests call the real APIs, not stand-ins."""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx
from fastapi import FastAPI

from fx_common import migrations
from fx_common.contracts.topics import SERVICES
from fx_common.http import create_app
from fx_common.runtime import ServiceRuntime

SECRET = "console-test-secret-at-least-32-bytes"


def service_app(service: str, tmp_path: Path) -> FastAPI:
    spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
    settings = spec.settings_cls(
        database_url=f"sqlite:///{tmp_path / (service + '.db')}",
        jwt_secret=SECRET,
        env="test",
        clock="simulated",
        auto_approve_limit_fen=0,
        topic_namespace=f"console-{tmp_path.name}.",  # its own leaderboards in Redis
    )
    runtime = ServiceRuntime(spec, settings)
    assert spec.migrations is not None
    migrations.upgrade(runtime.engine, spec.migrations)
    return create_app(spec, runtime)


def transports(tmp_path: Path) -> dict[str, httpx.AsyncBaseTransport]:
    return {s: httpx.ASGITransport(app=service_app(s, tmp_path)) for s in SERVICES}
