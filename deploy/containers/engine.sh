#!/usr/bin/env bash
# A Docker API for compose and testcontainers.
#   engine.sh up            use $DOCKER_HOST or /var/run/docker.sock when one answers; otherwise
#                           start podman's Docker-compatible service on $FX_PODMAN_SOCKET
#                           (installing podman first when FX_CONTAINERS_INSTALL=1)
#   engine.sh env           the variables to export (eval "$(engine.sh env)")
#   engine.sh reachable     exit 0 when an engine answers, without starting anything
#   engine.sh down          stop the podman service this script started
#   engine.sh healthchecks  run healthchecks of starting containers every 2 s (podman runs
#                           none without systemd timers); for compose's service_healthy
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$HERE/env.sh"
PODMAN_VAR="$FX_VAR/podman"
PID_FILE="$PODMAN_VAR/service.pid"

answers() {  # a Docker API answers _ping on this unix socket
    local socket="$1"
    [[ -S "$socket" ]] && curl -sf --max-time 3 --unix-socket "$socket" http://d/_ping >/dev/null 2>&1
}

docker_socket() {  # the socket of a Docker engine that is not ours, if any
    if [[ -n "${DOCKER_HOST:-}" && "$DOCKER_HOST" != "unix://$FX_PODMAN_SOCKET" ]]; then
        [[ "$DOCKER_HOST" == unix://* ]] && answers "${DOCKER_HOST#unix://}" && { echo "${DOCKER_HOST#unix://}"; return 0; }
        [[ "$DOCKER_HOST" != unix://* ]] && { echo "$DOCKER_HOST"; return 0; }
    fi
    answers /var/run/docker.sock && { echo /var/run/docker.sock; return 0; }
    return 1
}

up() {
    docker_socket >/dev/null && return 0
    answers "$FX_PODMAN_SOCKET" && return 0
    if ! command -v podman >/dev/null; then
        if [[ "${FX_CONTAINERS_INSTALL:-0}" == 1 ]]; then
            "$HERE/install.sh"
        else
            echo "containers: no engine answers (DOCKER_HOST, /var/run/docker.sock) and podman is" \
                "not installed: run deploy/containers/install.sh" >&2
            exit 1
        fi
    fi
    mkdir -p "$PODMAN_VAR" "$(dirname "$FX_PODMAN_SOCKET")"
    rm -f "$FX_PODMAN_SOCKET"
    # From /: conmon fails ("Failed to get working directory") once the caller's directory is
    # gone, e.g. a worktree's deploy/ recreated by a git checkout.
    (
        cd /
        CONTAINERS_CONF="$HERE/containers.conf" setsid nohup podman system service --time=0 \
            "unix://$FX_PODMAN_SOCKET" >>"$PODMAN_VAR/service.log" 2>&1 </dev/null &
        echo $! >"$PID_FILE"
    )
    for _ in $(seq 100); do
        answers "$FX_PODMAN_SOCKET" && { echo "containers: podman service on $FX_PODMAN_SOCKET (pid $(cat "$PID_FILE"))" >&2; return 0; }
        sleep 0.1
    done
    echo "containers: podman service did not answer on $FX_PODMAN_SOCKET; see $PODMAN_VAR/service.log" >&2
    exit 1
}

env_lines() {
    local socket
    if socket="$(docker_socket)"; then
        [[ "$socket" == */* && "$socket" != *://* ]] && socket="unix://$socket"
        echo "export DOCKER_HOST=$socket FX_CONTAINER_ENGINE=docker"
        return 0
    fi
    # podman: no registry here, so the locally built images; no reaper (it cannot be pulled);
    # the host's published ports, not a gateway guessed from /.dockerenv.
    echo "export DOCKER_HOST=unix://$FX_PODMAN_SOCKET FX_CONTAINER_ENGINE=podman" \
        "FX_KAFKA_IMAGE=$FX_KAFKA_IMAGE FX_POSTGRES_IMAGE=$FX_POSTGRES_IMAGE" \
        "FX_REDIS_IMAGE=$FX_REDIS_IMAGE FX_IMAGE=$FX_IMAGE" \
        "TESTCONTAINERS_RYUK_DISABLED=true TESTCONTAINERS_CONNECTION_MODE=docker_host"
}

down() {
    [[ -f "$PID_FILE" ]] || return 0
    local pid
    pid="$(cat "$PID_FILE")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        echo "containers: stopped the podman service (pid $pid)" >&2
    fi
    rm -f "$PID_FILE"
}

healthchecks() {
    while true; do
        "$HERE/podman.sh" ps --filter health=starting --format '{{.ID}}' 2>/dev/null \
            | while read -r id; do "$HERE/podman.sh" healthcheck run "$id" >/dev/null 2>&1 || true; done
        sleep 2
    done
}

case "${1:-}" in
    up) up ;;
    env) env_lines ;;
    reachable) docker_socket >/dev/null || answers "$FX_PODMAN_SOCKET" ;;
    down) down ;;
    healthchecks) healthchecks ;;
    *) sed -n '2,10s/^# \{0,1\}//p' "$0" >&2; exit 2 ;;
esac
