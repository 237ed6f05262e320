"""`make up` / `make reset` (deploy/cluster.sh): a local cluster's stores follow its topic
namespace, a store directory written under another namespace is refused, and a reset starts
the namespace from nothing (no stores, no topics' records, no cached answers)."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import create_engine, text

from fx_common.contracts.samples import SAMPLES
from fx_common.contracts.topics import MALL_SHARES
from fx_common.envelope import make_event
from fx_common.runtime import all_topics
from tests.kafka_helpers import publish

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("referral-binding", "qualification", "commission", "payout")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def free_base() -> int:
    """A port base whose four service ports (base+1…4) are free now."""
    for _ in range(200):
        base = random.randrange(20_000, 29_000, 10)
        try:
            for port in range(base + 1, base + 5):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no four free ports")


def cluster(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "deploy" / "cluster.sh"), command],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=400,
    )


def inbox(store: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT ce_id FROM fx_inbox"))]
    finally:
        engine.dispose()


def wait_inbox(store: Path, event_id: str) -> None:
    deadline = time.monotonic() + 60
    while event_id not in inbox(store):
        assert time.monotonic() < deadline, f"{event_id} never reached {store}"
        time.sleep(0.5)


async def end_offset(bootstrap: str, topic: str) -> int:
    kafka = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await kafka.start()
    try:
        await kafka._client.force_metadata_update()
        partitions = [TopicPartition(topic, p) for p in kafka.partitions_for_topic(topic) or ()]
        assert partitions, f"{topic} does not exist"
        return sum((await kafka.end_offsets(partitions)).values())
    finally:
        await kafka.stop()


def page(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())


async def test_stores_follow_the_namespace_and_reset_starts_from_nothing(
    bootstrap: str, unique: str, tmp_path: Path
) -> None:
    first, second = f"local-a-{unique}.", f"local-b-{unique}."
    common = {
        "FX_VAR": str(tmp_path),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REDIS_URL": REDIS_URL,
        "FX_HTTP_PORT_BASE": str(free_base()),
        "FX_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "FX_UP_TIMEOUT": "240",
    }
    console = f"http://127.0.0.1:{int(common['FX_HTTP_PORT_BASE']) + 5}"
    env_a = {**common, "FX_TOPIC_NAMESPACE": first}
    env_b = {**common, "FX_TOPIC_NAMESPACE": second}
    stores_a, stores_b = tmp_path / "stores" / first, tmp_path / "stores" / second
    share = make_event("mall.share.created", SAMPLES["mall.share.created"], time=datetime.now(UTC))
    cache = redis.Redis.from_url(REDIS_URL)
    try:
        started = cluster("up", env_a)
        assert started.returncode == 0, started.stdout + started.stderr
        assert (stores_a / ".namespace").read_text() == first
        assert {p.name for p in stores_a.glob("*.db")} == {
            s.replace("-", "_") + ".db" for s in SERVICES
        }
        # The console runs beside the services (base + 5), over them.
        assert f"console ready on {console}" in started.stdout
        assert "Local sign-in" in page(f"{console}/signin")
        assert "console: running" in cluster("status", env_a).stdout
        await publish(bootstrap, first + MALL_SHARES, [share])
        wait_inbox(stores_a / "referral_binding.db", share.id)
        cache.set(f"{first}rb:binding:u-cached", b"{}")
        assert cluster("down", env_a).returncode == 0
        assert "console: stopped" in cluster("status", env_a).stdout

        # Another namespace on the first one's stores is refused, and nothing starts.
        borrowed = cluster("up", {**env_b, "FX_VAR_DIR": str(stores_a)})
        assert borrowed.returncode == 1
        assert f"holds the stores of namespace '{first}', not '{second}'" in borrowed.stderr
        assert "stopped" in cluster("status", env_b).stdout

        started = cluster("up", env_b)
        assert started.returncode == 0, started.stdout + started.stderr
        assert (stores_b / ".namespace").read_text() == second
        assert inbox(stores_b / "referral_binding.db") == [], "B starts on its own stores"
        running = cluster("up", env_a)
        assert running.returncode == 1 and f"running under namespace '{second}'" in running.stderr
        assert cluster("down", env_b).returncode == 0

        assert await end_offset(bootstrap, first + MALL_SHARES) == 1
        # The namespace's Redis keys: the cached binding and the leaderboards' keys.
        keys = [k for p in ("rb:binding:*", "lb:*") for k in cache.scan_iter(match=first + p)]
        assert f"{first}rb:binding:u-cached".encode() in keys and len(keys) >= 2, keys
        reset = cluster("reset", env_a)
        assert reset.returncode == 0, reset.stdout + reset.stderr
        # Every topic of the namespace (the contract's and the dead-letter topics), every key.
        deleted = f"deleted {len(all_topics())} topic(s), {len(keys)} cache key(s)"
        assert deleted in reset.stdout, reset.stdout
        assert inbox(stores_a / "referral_binding.db") == [], "the old store is gone"
        assert await end_offset(bootstrap, first + MALL_SHARES) == 0, "topics start empty"
        assert cache.get(f"{first}rb:binding:u-cached") is None
        assert inbox(stores_b / "referral_binding.db") == [], "B's stores are left alone"
        assert (stores_b / ".namespace").read_text() == second
    finally:
        cluster("down", env_a)
        cluster("down", env_b)
        cache.close()
