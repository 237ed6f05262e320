"""schemathesis against each service's OpenAPI, with a token of each role.

Each run is the schemathesis CLI (`schemathesis run`, every check, the examples, coverage,
fuzzing and stateful phases) against the service's HTTP API served by uvicorn on a free local
port, on an SQLite store, without the Kafka lifespan. Besides schemathesis' own checks,
`tests/schemathesis/hooks.py` fails a run when a refused request (4xx) changed the store.
`tests/schemathesis/schemathesis.toml` lists the statuses a schema-valid request may get
(schemathesis' defaults plus 412/428: the plan edits' preconditions, which depend on the
stored version, not on the request's shape).

Examples per operation: `FX_SCHEMATHESIS_EXAMPLES` (default 10: the size `make test` and CI
run, about a minute per service on two cores); `FX_SCHEMATHESIS_SEED` fixes the seed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import SERVICES
from fx_common.http import issue_token
from fx_common.runtime import ServiceRuntime
from fx_common.testing import record
from tests.schemathesis.serve import SECRET, running

HERE = Path(__file__).resolve().parent / "schemathesis"
ROOT = HERE.parents[1]
EXAMPLES = int(os.environ.get("FX_SCHEMATHESIS_EXAMPLES", "10"))
SEED = os.environ.get("FX_SCHEMATHESIS_SEED", "20261206")
ROLES = ("distributor", "ops", "mall")
WEBHOOK_SECRET = "schemathesis-wecom-secret"


def schemathesis_run(
    url: str, token: str, store_url: str, workdir: Path
) -> subprocess.CompletedProcess[str]:
    """`schemathesis run` in `workdir` (where it keeps its cache)."""
    cli = Path(sys.executable).parent / "schemathesis"
    command = [
        str(cli), "--config-file", str(HERE / "schemathesis.toml"), "run",
        f"{url}/openapi.json", "-H", f"Authorization: Bearer {token}",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "-n", str(EXAMPLES), "--seed", SEED, "--workers", "1", "--no-color",
        "--generation-database", "none", "--request-timeout", "30",
    ]  # fmt: skip
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.schemathesis.hooks",
        "FX_SCHEMATHESIS_STORE_URL": store_url,
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def settled_commission(runtime: ServiceRuntime) -> None:
    """payout: distributor-1 has money, so the withdrawal example (and the stateful phase's
    approve / reject / mark-paid / mark-failed after it) reach the ledger."""
    data = {
        **SAMPLES["fx.commission.settled"],
        "distributor_id": "distributor-1",
        "amount_fen": 10_000_000,
    }
    event = record("fx.commission.settled", data, time=datetime(2026, 1, 1, tzinfo=UTC))
    assert runtime.processor.process([event]).applied == 1


@pytest.mark.parametrize("service", SERVICES)
def test_schemathesis_finds_nothing(service: str, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / (service + '.db')}"
    extra: dict[str, Any] = {}
    if service == "qualification":
        extra["wecom_webhook_secret"] = WEBHOOK_SECRET
    if service == "payout":
        extra["seed"] = settled_commission
    failures = []
    with running(service, store_url, **extra) as url:
        for role in ROLES:
            token = issue_token(SECRET, f"{role}-1", role, ttl_s=3600)
            result = schemathesis_run(url, token, store_url, tmp_path)
            if result.returncode != 0:
                failures.append(f"--- {service} as {role} ---\n{result.stdout[-12000:]}")
    assert not failures, "\n".join(failures)


def test_the_write_check_fails_a_refused_request_that_wrote(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hook itself: a 4xx after which the store changed is a failure; a 2xx that wrote,
    or a 4xx that did not, is not."""
    from sqlalchemy import create_engine, text

    from tests.schemathesis import hooks

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x INTEGER)"))
    monkeypatch.setenv("FX_SCHEMATHESIS_STORE_URL", url)
    monkeypatch.setattr(hooks, "_engine", None)
    monkeypatch.setattr(hooks, "_last", None)

    class Answer:
        def __init__(self, status_code: int) -> None:
            self.status_code = status_code

    class Case:
        method, formatted_path = "POST", "/v1/things"

    def write() -> None:
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO t VALUES (1)"))

    hooks.nothing_written_when_refused(None, Answer(200), Case())  # the baseline
    write()
    hooks.nothing_written_when_refused(None, Answer(201), Case())  # accepted: may write
    hooks.nothing_written_when_refused(None, Answer(403), Case())  # refused, wrote nothing
    write()
    with pytest.raises(AssertionError, match="refused with 422 but changed the store"):
        hooks.nothing_written_when_refused(None, Answer(422), Case())
    engine.dispose()
