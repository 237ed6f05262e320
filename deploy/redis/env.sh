# Sourced by the deploy/redis scripts.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FX_VAR="$(realpath -m "${FX_VAR:-$REPO_ROOT/var}")"
FX_REDIS_PORT="${FX_REDIS_PORT:-6379}"
REDIS_VAR="$FX_VAR/redis"
REDIS_PID_FILE="$REDIS_VAR/redis.pid"

# Pid from the pid file if that process is a live redis-server working in $REDIS_VAR.
redis_running_pid() {
    local pid
    [[ -f "$REDIS_PID_FILE" ]] || return 1
    pid="$(cat "$REDIS_PID_FILE" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    pid_alive "$pid" || return 1
    [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == *redis* ]] || return 1
    [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" == "$(cd "$REDIS_VAR" && pwd -P)" ]] || return 1
    echo "$pid"
}

redis_pong() {
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$FX_REDIS_PORT" || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || reply=""
    exec 3<&- 3>&-
    [[ "$reply" == "+PONG"* ]]
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
