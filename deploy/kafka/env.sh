# Sourced by the deploy/kafka scripts: locations, ports and the classpath of the local broker.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

KAFKA_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$KAFKA_HOME/../.." && pwd)"

FX_VAR="$(realpath -m "${FX_VAR:-$REPO_ROOT/var}")"
FX_KAFKA_PORT="${FX_KAFKA_PORT:-9092}"
FX_KAFKA_CONTROLLER_PORT="${FX_KAFKA_CONTROLLER_PORT:-9093}"
FX_KAFKA_START_TIMEOUT="${FX_KAFKA_START_TIMEOUT:-90}"
FX_KAFKA_HEAP_OPTS="${FX_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"

KAFKA_VAR="$FX_VAR/kafka"
KAFKA_DATA="$KAFKA_VAR/data"
KAFKA_LOGS="$KAFKA_VAR/logs"
KAFKA_PID_FILE="$KAFKA_VAR/kafka.pid"
KAFKA_PROPERTIES="$KAFKA_VAR/server.properties"
KAFKA_LIB="$KAFKA_HOME/lib"
KAFKA_CLASSPATH="$KAFKA_LIB/*"

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
