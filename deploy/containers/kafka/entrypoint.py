"""Start the broker: server.properties from the image's defaults and the KAFKA_* environment
(as the apache/kafka image reads it), storage formatted once with CLUSTER_ID, then exec java."""

import base64
import os
import subprocess
import sys
import uuid
from pathlib import Path

CONFIG = Path("/opt/kafka/config")
JAVA = ["java", "-cp", "/opt/kafka/libs/*", f"-Dlog4j2.configurationFile={CONFIG / 'log4j2.xml'}"]
NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS", "KAFKA_OPTS"}


def property_name(variable: str) -> str:
    name = variable.removeprefix("KAFKA_").lower()
    return name.replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def main() -> None:
    props: dict[str, str] = {}
    for line in (CONFIG / "server.properties").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            props[key.strip()] = value.strip()
    for variable, value in os.environ.items():
        if variable.startswith("KAFKA_") and variable not in NOT_PROPERTIES:
            props[property_name(variable)] = value
    rendered = Path("/var/lib/kafka/server.properties")
    rendered.write_text("".join(f"{k}={v}\n" for k, v in props.items()))

    data = Path(props["log.dirs"].split(",")[0])
    if not (data / "meta.properties").exists():
        cluster_id = os.environ.get("CLUSTER_ID") or base64.urlsafe_b64encode(
            uuid.uuid4().bytes
        ).decode().rstrip("=").replace("-", "A")
        subprocess.run(
            [
                *JAVA,
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",
                f"--config={rendered}",
                "--ignore-formatted",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xmx512m -Xms256m").split()
    jvm = os.environ.get(
        "KAFKA_JVM_PERFORMANCE_OPTS",
        "-server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35",
    ).split()
    extra = os.environ.get("KAFKA_OPTS", "").split()
    command = [*JAVA[:1], *heap, *jvm, *extra, "-Djava.awt.headless=true", *JAVA[1:]]
    os.execvp("java", [*command, "kafka.Kafka", str(rendered), *sys.argv[1:]])


if __name__ == "__main__":
    main()
