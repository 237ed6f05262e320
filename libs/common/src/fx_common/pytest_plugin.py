"""pytest plugin (`-p fx_common.pytest_plugin` in the root pyproject's addopts), loaded before
any test module: Kafka, Redis and PostgreSQL for the session, as containers or local processes
(`FX_TEST_INFRA`, see fx_common.testinfra). Never imported by the services."""

import pytest

from fx_common import testinfra


def pytest_configure(config: pytest.Config) -> None:
    testinfra.configure()


def pytest_report_header(config: pytest.Config) -> str | None:
    infra = testinfra.current()
    if infra is None:
        return None
    return (
        f"fx test infrastructure: {infra.mode} (kafka {infra.bootstrap}, redis {infra.redis_url},"
        f" postgres {infra.postgres_url.rsplit('@', 1)[-1]})"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    testinfra.shutdown()
