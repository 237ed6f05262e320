#!/usr/bin/env bash
# Stop the local Kafka: every node, or the nodes named (`stop.sh 2`). SIGTERM (controlled
# shutdown), SIGKILL after 30s. The nodes of a cluster are stopped together.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

mapfile -t nodes < <(kafka_nodes_from_args "$@")

say() {
    if ((KAFKA_NODES == 1)); then echo "kafka: $*"; else echo "kafka node $KAFKA_NODE: $*"; fi
}

declare -A pids=()
for node in "${nodes[@]}"; do
    kafka_node "$node"
    if ! pid="$(kafka_running_pid)"; then
        rm -f "$KAFKA_PID_FILE"
        say "not running"
        continue
    fi
    pids[$node]="$pid"
    kill -CONT "$pid" 2>/dev/null || true # a frozen (SIGSTOPped) node cannot act on SIGTERM
    kill -TERM "$pid"
done
for node in "${!pids[@]}"; do
    kafka_node "$node"
    pid="${pids[$node]}"
    for _ in $(seq 1 150); do
        pid_alive "$pid" || break
        sleep 0.2
    done
    if pid_alive "$pid"; then
        say "broker pid $pid still running after 30s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            pid_alive "$pid" || break
            sleep 0.2
        done
    fi
    rm -f "$KAFKA_PID_FILE"
    say "stopped (pid $pid)"
done
