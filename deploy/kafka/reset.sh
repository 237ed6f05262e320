#!/usr/bin/env bash
# Stop the local Kafka (every node) and delete its data: the next start.sh formats a fresh one.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

"$KAFKA_HOME/stop.sh"
for node in $(seq 1 "$KAFKA_NODES"); do
    kafka_node "$node"
    rm -rf "$KAFKA_DATA" "$KAFKA_PROPERTIES"
    echo "kafka: deleted ${KAFKA_DATA#"$REPO_ROOT"/}"
done
rm -f "$KAFKA_CLUSTER_ID_FILE"
