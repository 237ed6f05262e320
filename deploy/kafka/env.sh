# Sourced by the deploy/kafka scripts: locations, ports and the classpath of the local broker.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

KAFKA_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KAFKA_HOME/../.." && pwd)"

FX_VAR="$(realpath -m "${FX_VAR:-$REPO_ROOT/var}")"
# KAFKA_NODES=1: one combined broker+controller (FX_KAFKA_PORT, FX_KAFKA_CONTROLLER_PORT).
# KAFKA_NODES=3: three combined nodes on one machine; node N listens on FX_KAFKA_PORT+N-1 and its
# controller on FX_KAFKA_CONTROLLER_PORT+N-1 (default FX_KAFKA_PORT+100, e.g. 19092-19094 and
# 19192-19194 for FX_KAFKA_PORT=19092), with its data under $FX_VAR/kafka-3/node-N.
KAFKA_NODES="${KAFKA_NODES:-1}"
if [[ ! "$KAFKA_NODES" =~ ^[1-5]$ ]]; then
    echo "kafka: KAFKA_NODES must be 1 to 5 (got '$KAFKA_NODES')" >&2
    exit 2
fi
FX_KAFKA_PORT="${FX_KAFKA_PORT:-9092}"
if ((KAFKA_NODES == 1)); then
    FX_KAFKA_CONTROLLER_PORT="${FX_KAFKA_CONTROLLER_PORT:-$((FX_KAFKA_PORT + 1))}"
    FX_KAFKA_HEAP_OPTS="${FX_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
    KAFKA_ROOT="$FX_VAR/kafka"
else
    FX_KAFKA_CONTROLLER_PORT="${FX_KAFKA_CONTROLLER_PORT:-$((FX_KAFKA_PORT + 100))}"
    FX_KAFKA_HEAP_OPTS="${FX_KAFKA_HEAP_OPTS:--Xmx320m -Xms192m}"
    KAFKA_ROOT="$FX_VAR/kafka-$KAFKA_NODES"
fi
FX_KAFKA_START_TIMEOUT="${FX_KAFKA_START_TIMEOUT:-90}"
# Three copies of everything (two of which must acknowledge) as soon as there are three nodes.
KAFKA_REPLICATION=$((KAFKA_NODES < 3 ? KAFKA_NODES : 3))
KAFKA_MIN_ISR=$((KAFKA_REPLICATION > 1 ? KAFKA_REPLICATION - 1 : 1))
KAFKA_CLUSTER_ID_FILE="$KAFKA_ROOT/cluster.id"

KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_CLASSPATH="$KAFKA_LIB/*"

# The files and ports of node $1 (1..KAFKA_NODES) in KAFKA_VAR, KAFKA_DATA, KAFKA_LOGS,
# KAFKA_PID_FILE, KAFKA_PROPERTIES, KAFKA_NODE_PORT, KAFKA_NODE_CONTROLLER_PORT.
kafka_node() {
    KAFKA_NODE="$1"
    if ((KAFKA_NODES == 1)); then KAFKA_VAR="$KAFKA_ROOT"; else KAFKA_VAR="$KAFKA_ROOT/node-$1"; fi
    KAFKA_DATA="$KAFKA_VAR/data"
    KAFKA_LOGS="$KAFKA_VAR/logs"
    KAFKA_PID_FILE="$KAFKA_VAR/kafka.pid"
    KAFKA_PROPERTIES="$KAFKA_VAR/server.properties"
    KAFKA_NODE_PORT=$((FX_KAFKA_PORT + $1 - 1))
    KAFKA_NODE_CONTROLLER_PORT=$((FX_KAFKA_CONTROLLER_PORT + $1 - 1))
}
kafka_node 1

# The nodes named on a script's command line (numbers), or all of them.
kafka_nodes_from_args() {
    local node
    if (($# == 0)); then
        seq 1 "$KAFKA_NODES"
        return
    fi
    for node in "$@"; do
        if [[ ! "$node" =~ ^[0-9]+$ ]] || ((node < 1 || node > KAFKA_NODES)); then
            echo "kafka: no node '$node' (KAFKA_NODES=$KAFKA_NODES)" >&2
            exit 2
        fi
        echo "$node"
    done
}

# 127.0.0.1:P1,127.0.0.1:P2,… — what clients bootstrap from.
kafka_bootstrap() {
    local node out=""
    for node in $(seq 1 "$KAFKA_NODES"); do
        out+="${out:+,}127.0.0.1:$((FX_KAFKA_PORT + node - 1))"
    done
    echo "$out"
}

# 1@127.0.0.1:C1,2@127.0.0.1:C2,… — the KRaft voters (every node is a controller).
kafka_voters() {
    local node out=""
    for node in $(seq 1 "$KAFKA_NODES"); do
        out+="${out:+,}$node@127.0.0.1:$((FX_KAFKA_CONTROLLER_PORT + node - 1))"
    done
    echo "$out"
}

# Any python3 will do: probe.py uses the standard library only.
FX_PYTHON="${FX_PYTHON:-python3}"

# java with the jar classpath and our log4j2 config; INFO goes to $1 (a file under logs/).
kafka_java() {
    local log_file="$1"
    shift
    mkdir -p "$KAFKA_LOGS"
    java -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_HOME/log4j2.xml" \
        -Dfx.kafka.log.file="$log_file" \
        -cp "$KAFKA_CLASSPATH" "$@"
}

# Pid from the pid file if that process is alive and is this checkout's broker, else nothing.
kafka_running_pid() {
    local pid
    [[ -f "$KAFKA_PID_FILE" ]] || return 1
    pid="$(cat "$KAFKA_PID_FILE" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $KAFKA_PROPERTIES" || return 1
    echo "$pid"
}

# True while the process exists and is not a zombie (a killed daemon stays a zombie until
# whoever inherited it reaps it, and kill -0 still succeeds on it).
pid_alive() {
    local state
    state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
    [[ -n "$state" && "$state" != Z ]]
}

port_answers() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

port_owner() {
    ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'users:.*' | head -n1
}
