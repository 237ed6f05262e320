"""`make reset` (deploy/cluster.sh reset): forget a local namespace's broker state.

Deletes the namespace's topics (the services recreate them empty when they start; the
consumer groups' offsets on them go with them), referral-binding's cached answers and the
leaderboards in Redis.
The stores are removed by cluster.sh. Reads KAFKA_BOOTSTRAP_SERVERS, REDIS_URL and
FX_TOPIC_NAMESPACE, like the services.
"""

from __future__ import annotations

import asyncio
import os
import sys

import redis
from aiokafka.admin import AIOKafkaAdminClient

from fx_common.runtime import all_topics


async def delete_topics(bootstrap: str, namespace: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        doomed = sorted(t for t in (namespace + name for name in all_topics()) if t in existing)
        if doomed:
            await admin.delete_topics(doomed)
        for _ in range(100):  # deletion is asynchronous: wait until the broker forgot them
            if not set(doomed) & set(await admin.list_topics()):
                break
            await asyncio.sleep(0.2)
        return doomed
    finally:
        await admin.close()


def delete_cache(url: str, namespace: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        keys = [
            key
            for pattern in (f"{namespace}rb:binding:*", f"{namespace}lb:*")
            for key in client.scan_iter(match=pattern, count=1000)
        ]
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def main() -> None:
    namespace = os.environ.get("FX_TOPIC_NAMESPACE", "")
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    topics = asyncio.run(delete_topics(bootstrap, namespace))
    cached = delete_cache(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), namespace)
    label = namespace or "(none)"
    print(f"cluster: namespace {label}: deleted {len(topics)} topic(s), {cached} cache key(s)")


if __name__ == "__main__":
    sys.exit(main())
