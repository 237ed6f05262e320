"""A three-node KRaft cluster on 127.0.0.1, driven through deploy/kafka's scripts.

Nodes are combined broker+controller processes; node N serves clients on `port + N - 1` and
the quorum on `port + 100 + N - 1`. Its data lives under `var/kafka-3/node-N` of its own var
directory, so it never touches the shared single broker.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from types import ModuleType

from aiokafka import AIOKafkaConsumer, TopicPartition

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "deploy" / "kafka"


def _alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@dataclass
class KafkaCluster:
    var: Path
    port: int = 19092
    nodes: int = 3

    @property
    def controller_port(self) -> int:
        return self.port + 100

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{self.port + i}" for i in range(self.nodes))

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self.port + node - 1}"

    def _env(self) -> dict[str, str]:
        return {
            **os.environ,
            "FX_VAR": str(self.var),
            "KAFKA_NODES": str(self.nodes),
            "FX_KAFKA_PORT": str(self.port),
            "FX_KAFKA_CONTROLLER_PORT": str(self.controller_port),
        }

    def script(self, name: str, *args: str, timeout: float = 240) -> str:
        result = subprocess.run(
            ["bash", str(SCRIPTS / f"{name}.sh"), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self._env(),
        )
        if result.returncode != 0:
            raise RuntimeError(f"kafka {name} {args} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    # --- the whole cluster ---------------------------------------------------------------

    def start(self, *nodes: int) -> None:
        """Start the given nodes (all by default) and wait until they serve metadata."""
        self.script("start", *map(str, nodes))

    def stop(self, *nodes: int) -> None:
        """Controlled shutdown (SIGTERM) of the given nodes (all by default)."""
        self.script("stop", *map(str, nodes))

    def reset(self) -> None:
        self.script("reset")

    # --- one node --------------------------------------------------------------------------

    def pid(self, node: int) -> int | None:
        path = self.var / f"kafka-{self.nodes}" / f"node-{node}" / "kafka.pid"
        try:
            pid = int(path.read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def running(self, node: int) -> bool:
        return self.pid(node) is not None

    def kill9(self, *nodes: int) -> None:
        """SIGKILL: no controlled shutdown, no flush; the node's session expires later."""
        pids = [p for p in (self.pid(n) for n in nodes) if p is not None]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes {nodes} survived SIGKILL")
            time.sleep(0.05)

    def freeze(self, node: int) -> None:
        pid = self.pid(node)
        assert pid is not None, f"node {node} is not running"
        os.kill(pid, signal.SIGSTOP)

    def resume(self, node: int) -> None:
        pid = self.pid(node)
        assert pid is not None, f"node {node} is not running"
        os.kill(pid, signal.SIGCONT)

    # --- who does what ---------------------------------------------------------------------

    def active_controller(self) -> int:
        """The KRaft leader (active controller), as Kafka's metadata-quorum tool reports it."""
        controllers = ",".join(
            f"127.0.0.1:{self.controller_port + n - 1}"
            for n in range(1, self.nodes + 1)
            if self.running(n)
        )
        out = self.script(
            "kafka", "metadata-quorum", "--bootstrap-controller", controllers, "describe",
            "--status", timeout=60,
        )  # fmt: skip
        found = re.search(r"^LeaderId:\s+(\d+)", out, re.MULTILINE)
        assert found, f"no LeaderId in:\n{out}"
        return int(found.group(1))

    def recorded_controller(self) -> int | None:
        """The KRaft leader as the running nodes last recorded it (`quorum-state`, highest
        epoch): cheap, for checking that `active_controller` still holds."""
        best: tuple[int, int] | None = None
        for node in range(1, self.nodes + 1):
            if not self.running(node):
                continue
            path = (
                self.var / f"kafka-{self.nodes}" / f"node-{node}" / "data"
                / "__cluster_metadata-0" / "quorum-state"
            )  # fmt: skip
            try:
                state = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if state.get("leaderId", -1) >= 0 and (best is None or state["leaderEpoch"] > best[0]):
                best = (int(state["leaderEpoch"]), int(state["leaderId"]))
        return best[1] if best else None

    async def leaders(self, topics: Iterable[str]) -> Counter[int]:
        """How many partitions of `topics` each node leads now."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            wanted = set(topics)
            await consumer._client.force_metadata_update()
            cluster = consumer._client.cluster
            counts: Counter[int] = Counter()
            for topic in wanted:
                for partition in cluster.partitions_for_topic(topic) or ():
                    leader = cluster.leader_for_partition(TopicPartition(topic, partition))
                    if leader is not None and leader >= 0:
                        counts[leader] += 1
            return counts
        finally:
            await consumer.stop()

    async def under_replicated(self, topics: Iterable[str]) -> int:
        """Partitions of `topics` (and of the group offsets) whose ISR lacks a replica."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            await consumer._client.force_metadata_update()
            partitions = consumer._client.cluster._partitions
            return sum(
                len(meta.isr) < len(meta.replicas)
                for topic in {*topics, "__consumer_offsets"}
                for meta in partitions.get(topic, {}).values()
            )
        finally:
            await consumer.stop()

    async def wait_in_sync(self, topics: Iterable[str], timeout: float = 180) -> float:
        """Until every replica of `topics` is back in its ISR; returns the seconds it took."""
        names = list(topics)
        started = asyncio.get_running_loop().time()
        while True:
            try:
                if await self.under_replicated(names) == 0:
                    return asyncio.get_running_loop().time() - started
            except Exception:  # a node still starting: metadata not served yet
                pass
            if asyncio.get_running_loop().time() - started > timeout:
                raise TimeoutError(f"partitions of {names} still under-replicated")
            await asyncio.sleep(0.5)

    async def wait_brokers(self, count: int, timeout: float = 120) -> None:
        """Until the cluster's metadata lists `count` live brokers."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            live = await asyncio.to_thread(self._live_brokers)
            if live >= count:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{live} live brokers, wanted {count}")
            await asyncio.sleep(0.5)

    def _live_brokers(self) -> int:
        """Live brokers in the metadata of the first running node that answers (0: none)."""
        for node in range(1, self.nodes + 1):
            if not self.running(node):
                continue
            host, _, port = self.address(node).rpartition(":")
            try:
                return int(_PROBE.live_brokers(host, int(port)))
            except (OSError, struct.error):
                continue
        return 0


def _load_probe() -> ModuleType:
    """deploy/kafka/probe.py (standard library only), which start.sh uses for readiness."""
    spec = spec_from_file_location("fx_kafka_probe", SCRIPTS / "probe.py")
    assert spec is not None and spec.loader is not None
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_PROBE = _load_probe()
