"""Loaded before any test module: Kafka, Redis and PostgreSQL for the session, as containers or
local processes (`FX_TEST_INFRA`, see fx_common.testinfra)."""

import pytest

from fx_common import testinfra


def pytest_configure(config: pytest.Config) -> None:
    infra = testinfra.configure()
    if infra is not None and infra.mode == "containers":
        config.stash[STARTED] = infra.started


def pytest_report_header(config: pytest.Config) -> str | None:
    infra = testinfra._active
    if infra is None:
        return None
    return (
        f"fx test infrastructure: {infra.mode} (kafka {infra.bootstrap}, redis {infra.redis_url},"
        f" postgres {infra.postgres_url.rsplit('@', 1)[-1]})"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    testinfra.shutdown()


STARTED = pytest.StashKey[list[str]]()
