"""Kafka, Redis and PostgreSQL for the test suite: containers, or local processes.

`FX_TEST_INFRA` chooses (read by fx_common.pytest_plugin before any test is collected):

- `containers`: start the three with testcontainers on the Docker API (`DOCKER_HOST`, Docker
  Desktop, or podman's service: deploy/containers/engine.sh). Images: `FX_KAFKA_IMAGE`
  (apache/kafka:4.1.1), `FX_POSTGRES_IMAGE` (postgres:16), `FX_REDIS_IMAGE` (redis:7); where no
  registry is reachable, deploy/containers/build.sh makes equivalent local images. Needs no Java
  and no Postgres on the machine.
- `processes`: the local processes of deploy/{kafka,redis,postgres} (`make infra-up`), started
  here unless `KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL` and `FX_TEST_POSTGRES_URL` already name
  running servers.
- `auto`: containers when an engine answers, processes otherwise.

Unset, nothing is started: the variables above are used as given (tests that need a server they
do not name fail and say so). The tests read `KAFKA_BOOTSTRAP_SERVERS`, `REDIS_URL` and
`FX_TEST_POSTGRES_URL`, which `configure` sets.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("containers", "processes", "auto")
KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:16"
REDIS_IMAGE = "redis:7"
REPO = Path(__file__).resolve().parents[4]
URL_VARIABLES = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "FX_TEST_POSTGRES_URL")


@dataclass
class Infra:
    """The servers one test session uses, and how to stop (or restart the broker of) them."""

    mode: str
    bootstrap: str
    redis_url: str
    postgres_url: str
    stop: Callable[[], None] = lambda: None
    broker_stop: Callable[[], None] = lambda: None
    broker_start: Callable[[], None] = lambda: None
    started: list[str] = field(default_factory=list)

    def export(self, environ: MutableMapping[str, str]) -> None:
        environ["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        environ["REDIS_URL"] = self.redis_url
        environ["FX_TEST_POSTGRES_URL"] = self.postgres_url


_active: Infra | None = None


def engine_reachable(timeout: float = 3.0) -> bool:
    """A Docker API answers (DOCKER_HOST or the default socket)."""
    try:
        import docker

        client = docker.from_env(timeout=int(timeout))
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # any failure to reach an engine means "no engine"
        return False


def resolve_mode(environ: MutableMapping[str, str]) -> str | None:
    mode = environ.get("FX_TEST_INFRA", "").strip().lower()
    if not mode:
        return None
    if mode not in MODES:
        raise ValueError(f"FX_TEST_INFRA={mode!r}: expected one of {', '.join(MODES)}")
    if mode == "auto":
        return "containers" if engine_reachable() else "processes"
    return mode


def configure(environ: MutableMapping[str, str] = os.environ) -> Infra | None:
    """Start (or find) the servers the mode asks for and export their URLs into `environ`."""
    global _active
    mode = resolve_mode(environ)
    if mode == "containers":
        _active = start_containers(environ)
    elif all(environ.get(name) for name in URL_VARIABLES):
        bootstrap, redis_url, postgres_url = (environ[name] for name in URL_VARIABLES)
        _active = Infra("external", bootstrap, redis_url, postgres_url)
        _active.broker_stop = lambda: _broker_script("stop")
        _active.broker_start = lambda: _broker_script("start")
    elif mode == "processes":
        _active = start_processes(environ)
    else:
        return None
    _active.export(environ)
    return _active


def current() -> Infra | None:
    return _active


def active() -> Infra:
    if _active is None:
        raise RuntimeError("no test infrastructure: fx_common.pytest_plugin configures it")
    return _active


def shutdown() -> None:
    global _active
    if _active is not None:
        _active.stop()
        _active = None


# --- local processes -------------------------------------------------------------------------


def _broker_script(action: str) -> None:
    _run_script(REPO / "deploy" / "kafka" / f"{action}.sh")


def _run_script(script: Path) -> None:
    result = subprocess.run(
        ["bash", str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{result.stdout}\n{result.stderr}")


def start_processes(environ: MutableMapping[str, str]) -> Infra:
    """deploy/{kafka,redis,postgres}/start.sh (each reuses a server this checkout runs)."""
    for server in ("kafka", "redis", "postgres"):
        _run_script(REPO / "deploy" / server / "start.sh")
    kafka = environ.get("FX_KAFKA_PORT", "9092")
    redis = environ.get("FX_REDIS_PORT", "6379")
    postgres = environ.get("FX_PG_PORT", "5432")
    infra = Infra(
        "processes",
        f"127.0.0.1:{kafka}",
        f"redis://127.0.0.1:{redis}/0",
        f"postgresql+psycopg://fx:fx@127.0.0.1:{postgres}/fx_test",
    )
    infra.broker_stop = lambda: _broker_script("stop")
    infra.broker_start = lambda: _broker_script("start")
    return infra


# --- containers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def kafka_environment(advertised: str) -> dict[str, str]:
    """A single KRaft node, configured the way the apache/kafka image (and ours) reads it."""
    return {
        "CLUSTER_ID": "5L6g3nShT-eMCtK--X86sw",
        "KAFKA_NODE_ID": "1",
        "KAFKA_PROCESS_ROLES": "broker,controller",
        "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{advertised},CONTROLLER://localhost:9093",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "KAFKA_NUM_PARTITIONS": "3",
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS": "6",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "KAFKA_BROKER_SESSION_TIMEOUT_MS": "4000",
        "KAFKA_BROKER_HEARTBEAT_INTERVAL_MS": "1000",
        "KAFKA_LOG_DIRS": "/tmp/kraft-combined-logs",
        "KAFKA_HEAP_OPTS": "-Xmx512m -Xms256m",
    }


def wait_for_broker(bootstrap: str, timeout: float = 120.0) -> None:
    """Until the broker answers a metadata request with itself in it."""
    from aiokafka.admin import AIOKafkaAdminClient

    async def ready() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            cluster = await admin.describe_cluster()
            return bool(cluster.get("brokers"))
        except Exception:  # not up yet: refused, reset or no metadata
            return False
        finally:
            await admin.close()

    deadline = time.monotonic() + timeout
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "Unable connect to ..." until the broker listens
    try:
        while not asyncio.run(ready()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Kafka broker on {bootstrap} after {timeout:.0f}s")
            time.sleep(0.5)
    finally:
        quiet.setLevel(level)


def start_containers(environ: MutableMapping[str, str]) -> Infra:
    """Kafka, Redis and Postgres containers, started side by side; any failure stops them all."""
    from testcontainers.community.postgres import PostgresContainer
    from testcontainers.community.redis import RedisContainer
    from testcontainers.core.container import DockerContainer

    kafka_port = free_port()
    kafka = (
        DockerContainer(environ.get("FX_KAFKA_IMAGE", KAFKA_IMAGE))
        .with_bind_ports(9092, kafka_port)
        .with_envs(**kafka_environment(f"127.0.0.1:{kafka_port}"))
    )
    redis = RedisContainer(environ.get("FX_REDIS_IMAGE", REDIS_IMAGE))
    postgres = PostgresContainer(
        environ.get("FX_POSTGRES_IMAGE", POSTGRES_IMAGE),
        username="fx", password="fx", dbname="fx_test", driver="psycopg",
    )  # fmt: skip
    containers: list[Any] = [kafka, redis, postgres]
    bootstrap = f"127.0.0.1:{kafka_port}"

    def start_kafka() -> None:
        kafka.start()
        wait_for_broker(bootstrap)

    def stop_all() -> None:
        for container in containers:
            try:
                container.stop()
            except Exception:  # already gone: nothing left to stop
                continue

    try:
        with ThreadPoolExecutor(3) as pool:
            futures = [pool.submit(start) for start in (start_kafka, redis.start, postgres.start)]
            for future in futures:
                future.result()
    except BaseException:
        stop_all()
        raise
    host = redis.get_container_host_ip()
    infra = Infra(
        "containers",
        bootstrap,
        f"redis://{host}:{redis.get_exposed_port(6379)}/0",
        postgres.get_connection_url(),
        stop=stop_all,
    )
    broker = kafka.get_wrapped_container()
    infra.broker_stop = lambda: broker.stop(timeout=10)

    def broker_start() -> None:
        broker.start()
        wait_for_broker(bootstrap)

    infra.broker_start = broker_start
    infra.started = [str(c.get_wrapped_container().short_id) for c in containers]
    return infra
