"""`fxctl ops` against the services' real HTTP APIs (uvicorn on free ports, SQLite stores, no
broker): confirm, revoke, review a withdrawal, edit the plan with If-Match; refusals exit 1
in the service's words and change nothing."""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from fx_common import migrations
from fx_common.contracts.topics import SERVICES
from fx_common.http import create_app, issue_token
from fx_common.runtime import ServiceRuntime
from fxctl.cli import app

SECRET = "fxctl-ops-test-secret-at-least-32-bytes"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The four services over HTTP (their lifespan off: no broker), by name → URL."""
    tmp = tmp_path_factory.mktemp("ops")
    servers, urls = [], {}
    for service in SERVICES:
        spec = importlib.import_module(f"{service.replace('-', '_')}.app").SPEC
        settings = spec.settings_cls(database_url=f"sqlite:///{tmp / (service + '.db')}",
                                     jwt_secret=SECRET, env="test", clock="simulated")  # fmt: skip
        runtime = ServiceRuntime(spec, settings)
        assert spec.migrations is not None
        migrations.upgrade(runtime.engine, spec.migrations)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(create_app(spec, runtime), port=port,
                                               lifespan="off", log_level="warning"))  # fmt: skip
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        urls[service] = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not all(s.started for s in servers) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield urls
    for server in servers:
        server.should_exit = True


def fxctl(urls: dict[str, str], *args: str) -> tuple[int, str]:
    where = [f"--service={s}={u}" for s, u in urls.items()]
    result = CliRunner().invoke(
        app, ["ops", "--secret", SECRET, "--operator", "ops-ann", *where, *args]
    )
    return result.exit_code, result.output


def test_confirm_and_revoke(served: dict[str, str]) -> None:
    base = served["qualification"]
    token = issue_token(SECRET, "u-ops-1", "distributor")

    httpx.post(f"{base}/v1/applications", headers={"Authorization": f"Bearer {token}"}, json={})
    code, out = fxctl(served, "candidates")
    assert code == 0 and "u-ops-1  applied" in out
    code, out = fxctl(served, "confirm", "u-ops-1")
    assert code == 0 and "u-ops-1: assessing" in out
    code, out = fxctl(served, "confirm", "u-nobody")
    assert code == 1 and "never applied" in out and "nothing changed" in out
    code, out = fxctl(served, "revoke", "u-ops-1", "--reason", "self-referral ring")
    assert code == 1 and "only a qualified distributor can be revoked" in out, out
    code, out = fxctl(served, "candidates", "--status", "assessing")
    assert "u-ops-1  assessing" in out, "the refused revocation changed nothing"
    code, out = fxctl(served, "appoint", "u-ops-2", "--reason", "partner shop")
    assert code == 1 and "appointments_off" in out  # the default mode is the assessment


def test_plan_override_names_the_version_it_changes(served: dict[str, str]) -> None:
    code, out = fxctl(served, "plan")
    assert code == 0 and "latest: version 0" in out
    code, out = fxctl(served, "override", "sku", "tea-oolong", "--version", "0",
                      "--rate-bps", "1200")  # fmt: skip
    assert code == 0 and "plan version 1 created (from 0)" in out
    code, out = fxctl(served, "override", "sku", "tea-puer", "--version", "0",
                      "--rate-bps", "900")  # fmt: skip
    assert code == 1 and "version_mismatch" in out
    code, out = fxctl(served, "plan", "--as-json")
    assert '"latest": 1' in out and "tea-puer" not in out and '"created_by": "ops-ann"' in out
    code, out = fxctl(served, "override", "sku", "tea-oolong", "--version", "1", "--remove")
    assert code == 0 and "plan version 2 created" in out
    code, out = fxctl(served, "override", "brand", "x", "--version", "2", "--rate-bps", "1")
    assert code == 2 and "sku or category" in out


def test_review_refusals_are_plain_and_inputs_checked(served: dict[str, str]) -> None:
    code, out = fxctl(served, "review", "approve", "w-missing")
    assert code == 1 and "no withdrawal w-missing" in out
    code, out = fxctl(served, "review", "reject", "w-missing")
    assert code == 2 and "needs --reason" in out
    code, out = fxctl(served, "review", "pay", "w-1")
    assert code == 2 and "approve, reject, mark-paid, mark-failed" in out
    code, out = fxctl(served, "withdrawals")
    assert code == 0


def test_without_a_token_or_secret_nothing_is_sent() -> None:
    result = CliRunner().invoke(app, ["ops", "candidates"], env={"FX_JWT_SECRET": ""})
    assert result.exit_code == 2 and "FX_OPS_TOKEN" in result.output
