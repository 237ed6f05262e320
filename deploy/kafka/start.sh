#!/usr/bin/env bash
# Start the local Kafka (KRaft) in the background and wait until it serves metadata:
#   start.sh             every node (KAFKA_NODES=1: the single node; KAFKA_NODES=3: a cluster)
#   start.sh 2           only node 2 of the cluster (e.g. after a test killed it)
# Reuses a node this checkout already runs; fails if a port belongs to something else. With
# every node named (or none), waits until the cluster lists all KAFKA_NODES brokers.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

started_at=$EPOCHREALTIME
elapsed() { awk -v a="$started_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
mapfile -t nodes < <(kafka_nodes_from_args "$@")

say() {
    if ((KAFKA_NODES == 1)); then echo "kafka: $*"; else echo "kafka node $KAFKA_NODE: $*"; fi
}

# Wait until node $KAFKA_NODE (pid $1) lists at least $2 live brokers.
wait_ready() {
    local pid="$1" brokers="$2" rc=0
    "$FX_PYTHON" "$KAFKA_HOME/probe.py" "127.0.0.1:$KAFKA_NODE_PORT" --wait "$FX_KAFKA_START_TIMEOUT" \
        --pid "$pid" --brokers "$brokers" || rc=$?
    if ((rc != 0)); then
        if ((rc == 2)); then
            say "pid $pid exited during start-up" >&2
            rm -f "$KAFKA_PID_FILE"
        else
            say "pid $pid does not list $brokers live broker(s) after ${FX_KAFKA_START_TIMEOUT}s" >&2
        fi
        echo "--- tail of $KAFKA_LOGS/kafka.out" >&2
        tail -n 30 "$KAFKA_LOGS/kafka.out" >&2 || true
        echo "--- tail of $KAFKA_LOGS/server.log" >&2
        tail -n 30 "$KAFKA_LOGS/server.log" >&2 || true
        exit 1
    fi
}

cluster_id() {
    # What `StorageTool random-uuid` prints (base64url of a random UUID, never starting with
    # "-"), without starting a JVM for it; one id shared by every node of the cluster.
    if [[ ! -s "$KAFKA_CLUSTER_ID_FILE" ]]; then
        mkdir -p "$KAFKA_ROOT"
        "$FX_PYTHON" -c '
import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(cid)' >"$KAFKA_CLUSTER_ID_FILE"
    fi
    cat "$KAFKA_CLUSTER_ID_FILE"
}

# Launch node $KAFKA_NODE unless it already runs; prints the pid to wait for.
launch_node() {
    local pid port id
    if pid="$(kafka_running_pid)"; then
        say "reusing the broker already running (pid $pid) on 127.0.0.1:$KAFKA_NODE_PORT" >&2
        echo "$pid"
        return
    fi
    if [[ -f "$KAFKA_PID_FILE" ]]; then
        say "removing stale pid file (pid $(cat "$KAFKA_PID_FILE") is not running)" >&2
        rm -f "$KAFKA_PID_FILE"
    fi
    for port in "$KAFKA_NODE_PORT" "$KAFKA_NODE_CONTROLLER_PORT"; do
        if port_answers "$port"; then
            say "port $port is already in use by a process that is not this checkout's broker" \
                "(${KAFKA_PID_FILE} has no live pid) $(port_owner "$port")" >&2
            say "stop that process, or choose other ports with FX_KAFKA_PORT / FX_KAFKA_CONTROLLER_PORT" >&2
            exit 1
        fi
    done

    mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
    sed -e "s|@NODE_ID@|$KAFKA_NODE|g" \
        -e "s|@VOTERS@|$(kafka_voters)|g" \
        -e "s|@KAFKA_PORT@|$KAFKA_NODE_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_NODE_CONTROLLER_PORT|g" \
        -e "s|@REPLICATION@|$KAFKA_REPLICATION|g" \
        -e "s|@MIN_ISR@|$KAFKA_MIN_ISR|g" \
        -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
        "$KAFKA_HOME/server.properties.template" >"$KAFKA_PROPERTIES"

    if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
        id="$(cluster_id)"
        kafka_java "$KAFKA_LOGS/tools.log" kafka.tools.StorageTool format \
            --cluster-id="$id" --config="$KAFKA_PROPERTIES" --ignore-formatted >/dev/null
        say "formatted KRaft storage in ${KAFKA_DATA#"$REPO_ROOT"/} (cluster $id)" >&2
    fi

    # setsid: the broker outlives the shell (and the process group) that started it.
    # shellcheck disable=SC2086  # heap options are a list
    nohup setsid java -server $FX_KAFKA_HEAP_OPTS \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.xml" \
        -Dfx.kafka.log.file="$KAFKA_LOGS/server.log" \
        -cp "$KAFKA_CLASSPATH" kafka.Kafka "$KAFKA_PROPERTIES" \
        >>"$KAFKA_LOGS/kafka.out" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$KAFKA_PID_FILE"
    say "starting broker pid $pid on 127.0.0.1:$KAFKA_NODE_PORT (logs in ${KAFKA_LOGS#"$REPO_ROOT"/})" >&2
    echo "$pid"
}

"$KAFKA_HOME/fetch.sh" >/dev/null
command -v java >/dev/null || { echo "kafka: java not found (a JDK 17+ is needed)" >&2; exit 1; }

# Launch every node first: a node of a cluster is ready only once a quorum of controllers runs.
declare -A pids=()
for node in "${nodes[@]}"; do
    kafka_node "$node"
    pids[$node]="$(launch_node)"
done
# Every node asked for: wait for the whole cluster; one node: for that node to be back.
want=1
((${#nodes[@]} == KAFKA_NODES)) && want=$KAFKA_NODES
for node in "${nodes[@]}"; do
    kafka_node "$node"
    wait_ready "${pids[$node]}" "$want"
    say "ready on 127.0.0.1:$KAFKA_NODE_PORT (pid ${pids[$node]}) after $(elapsed)"
done
if ((KAFKA_NODES > 1)); then
    echo "kafka: bootstrap servers $(kafka_bootstrap)"
fi
