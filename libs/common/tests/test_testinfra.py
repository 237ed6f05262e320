"""FX_TEST_INFRA: which infrastructure a test session gets (fx_common.testinfra).

The containers mode itself runs in CI (`FX_TEST_INFRA=containers make test`), where the
integration tests use Kafka, Redis and Postgres started by testcontainers."""

from __future__ import annotations

import pytest

from fx_common import testinfra

URLS = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
    "REDIS_URL": "redis://127.0.0.1:16379/0",
    "FX_TEST_POSTGRES_URL": "postgresql+psycopg://fx:fx@127.0.0.1:15432/fx_test",
}


def test_unset_means_the_given_servers() -> None:
    assert testinfra.resolve_mode({}) is None
    assert testinfra.resolve_mode({"FX_TEST_INFRA": " Processes "}) == "processes"
    assert testinfra.resolve_mode({"FX_TEST_INFRA": "containers"}) == "containers"


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="FX_TEST_INFRA='docker'"):
        testinfra.resolve_mode({"FX_TEST_INFRA": "docker"})


def test_auto_without_an_engine_runs_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    assert not testinfra.engine_reachable(timeout=1)
    assert testinfra.resolve_mode({"FX_TEST_INFRA": "auto"}) == "processes"


def test_servers_already_named_are_used_as_they_are() -> None:
    environ = dict(URLS, FX_TEST_INFRA="processes")
    saved = testinfra._active
    try:
        infra = testinfra.configure(environ)
        assert infra is not None and infra.mode == "external"
        assert (infra.bootstrap, infra.redis_url, infra.postgres_url) == tuple(URLS.values())
        assert environ["KAFKA_BOOTSTRAP_SERVERS"] == URLS["KAFKA_BOOTSTRAP_SERVERS"]
    finally:
        testinfra._active = saved


def test_nothing_is_started_when_unset_and_unnamed() -> None:
    environ: dict[str, str] = {}
    saved = testinfra._active
    try:
        assert testinfra.configure(environ) is None
        assert environ == {}
    finally:
        testinfra._active = saved


def test_the_kafka_container_is_one_kraft_node_advertising_the_host_port() -> None:
    env = testinfra.kafka_environment("127.0.0.1:40123")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_ADVERTISED_LISTENERS"].split(",")[0] == "PLAINTEXT://127.0.0.1:40123"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"
    assert "CONTROLLER://localhost:9093" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len(env["CLUSTER_ID"]) == 22, "a base64url UUID, as kafka-storage expects"
