#!/usr/bin/env bash
# Start the local single-node Kafka (KRaft) in the background and wait until it serves metadata.
# Reuses a broker this checkout already runs; fails if the ports belong to something else.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

started_at=$EPOCHREALTIME
elapsed() { awk -v a="$started_at" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
address="127.0.0.1:$FX_KAFKA_PORT"

wait_ready() {
    local pid="$1" rc=0
    "$FX_PYTHON" "$KAFKA_HOME/probe.py" "$address" --wait "$FX_KAFKA_START_TIMEOUT" --pid "$pid" || rc=$?
    if ((rc != 0)); then
        if ((rc == 2)); then
            echo "kafka: broker pid $pid exited during start-up" >&2
            rm -f "$KAFKA_PID_FILE"
        else
            echo "kafka: broker pid $pid not ready after ${FX_KAFKA_START_TIMEOUT}s" >&2
        fi
        echo "--- tail of $KAFKA_LOGS/kafka.out" >&2
        tail -n 30 "$KAFKA_LOGS/kafka.out" >&2 || true
        echo "--- tail of $KAFKA_LOGS/server.log" >&2
        tail -n 30 "$KAFKA_LOGS/server.log" >&2 || true
        exit 1
    fi
}

if pid="$(kafka_running_pid)"; then
    if "$FX_PYTHON" "$KAFKA_HOME/probe.py" "$address"; then
        echo "kafka: reusing the broker already running (pid $pid) on $address"
        exit 0
    fi
    echo "kafka: broker pid $pid is running but not ready yet; waiting"
    wait_ready "$pid"
    echo "kafka: ready on $address (pid $pid) after $(elapsed)"
    exit 0
fi
if [[ -f "$KAFKA_PID_FILE" ]]; then
    echo "kafka: removing stale pid file (pid $(cat "$KAFKA_PID_FILE") is not running)"
    rm -f "$KAFKA_PID_FILE"
fi

for port in "$FX_KAFKA_PORT" "$FX_KAFKA_CONTROLLER_PORT"; do
    if port_answers "$port"; then
        echo "kafka: port $port is already in use by a process that is not this checkout's broker" \
            "(${KAFKA_PID_FILE} has no live pid) $(port_owner "$port")" >&2
        echo "kafka: stop that process, or choose other ports with FX_KAFKA_PORT / FX_KAFKA_CONTROLLER_PORT" >&2
        exit 1
    fi
done

"$KAFKA_HOME/fetch.sh" >/dev/null
command -v java >/dev/null || { echo "kafka: java not found (a JDK 17+ is needed)" >&2; exit 1; }

mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
sed -e "s|@KAFKA_PORT@|$FX_KAFKA_PORT|g" \
    -e "s|@CONTROLLER_PORT@|$FX_KAFKA_CONTROLLER_PORT|g" \
    -e "s|@DATA_DIR@|$KAFKA_DATA|g" \
    "$KAFKA_HOME/server.properties.template" >"$KAFKA_PROPERTIES"

if [[ ! -f "$KAFKA_DATA/meta.properties" ]]; then
    # What `StorageTool random-uuid` prints (base64url of a random UUID, never starting with
    # "-"), without starting a JVM for it.
    cluster_id="$("$FX_PYTHON" -c '
import base64, uuid
while (cid := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"):
    pass
print(cid)')"
    kafka_java "$KAFKA_LOGS/tools.log" kafka.tools.StorageTool format \
        --cluster-id="$cluster_id" --config="$KAFKA_PROPERTIES" --ignore-formatted >/dev/null
    echo "kafka: formatted KRaft storage in ${KAFKA_DATA#"$REPO_ROOT"/} (cluster $cluster_id)"
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
echo "kafka: starting broker pid $pid on $address (logs in ${KAFKA_LOGS#"$REPO_ROOT"/})"
wait_ready "$pid"
echo "kafka: ready on $address (pid $pid) after $(elapsed)"
