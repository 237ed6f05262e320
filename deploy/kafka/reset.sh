#!/usr/bin/env bash
# Stop the local broker and delete its data: the next start.sh formats a fresh cluster.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

"$KAFKA_HOME/stop.sh"
rm -rf "$KAFKA_DATA" "$KAFKA_PROPERTIES"
echo "kafka: deleted ${KAFKA_DATA#"$REPO_ROOT"/}"
