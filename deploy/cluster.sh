#!/usr/bin/env bash
# The four services as background processes: up (wait until every /readyz answers 200),
# down (SIGTERM: each finishes its batch and flushes its outbox), reset (down, forget the
# namespace's stores, topics and cache, up again), logs, status.
# Environment: KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, FX_* pass through to every service;
# FX_VAR (default <repo>/var) holds pid files, logs and the SQLite stores, one directory per
# topic namespace: FX_VAR_DIR defaults to $FX_VAR/stores/<FX_TOPIC_NAMESPACE> (`default` for
# the empty namespace), and a store directory written under another namespace is refused.
# Stores are upgraded at start (FX_MIGRATE=auto, a local run); ports are FX_HTTP_PORT_BASE+1…4,
# and the console (fx-console, over the four) on FX_HTTP_PORT_BASE+5.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FX_VAR="$(realpath -m "${FX_VAR:-$PWD/var}")"
namespace="${FX_TOPIC_NAMESPACE:-}"
if [[ "$namespace" == */* || "$namespace" == . || "$namespace" == .. ]]; then
    echo "cluster: FX_TOPIC_NAMESPACE=$namespace cannot name a store directory" >&2; exit 2
fi
export FX_VAR_DIR="${FX_VAR_DIR:-$FX_VAR/stores/${namespace:-default}}"
export FX_MIGRATE="${FX_MIGRATE:-auto}"
# A local cluster: the built-in HS256 secret is accepted (production refuses it).
export FX_ENV="${FX_ENV:-dev}"
run="$FX_VAR/run"
logs="$FX_VAR/log"
marker="$FX_VAR_DIR/.namespace"
mkdir -p "$run" "$logs"

base="${FX_HTTP_PORT_BASE:-8100}"
declare -A PORTS=([referral-binding]=$((base + 1)) [qualification]=$((base + 2)) [commission]=$((base + 3)) [payout]=$((base + 4)))
SERVICES=(referral-binding qualification commission payout)

alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }
any_alive() { for s in "${SERVICES[@]}"; do alive "$s" && return 0; done; return 1; }
running_namespace() { cat "$run/namespace" 2>/dev/null || echo "(unknown)"; }

# The stores in FX_VAR_DIR must be this namespace's: refuse another's, or ones that say nothing.
check_stores() {
    if [[ -f "$marker" ]]; then
        local written; written="$(cat "$marker")"
        [[ "$written" == "$namespace" ]] && return 0
        echo "cluster: $FX_VAR_DIR holds the stores of namespace '${written}', not '${namespace}':" \
            "use FX_TOPIC_NAMESPACE='${written}', another FX_VAR_DIR, or reset it" >&2
        return 1
    fi
    if compgen -G "$FX_VAR_DIR/*.db" >/dev/null; then
        echo "cluster: $FX_VAR_DIR holds stores that record no namespace:" \
            "move them away or \`make reset\` (FX_VAR_DIR=$FX_VAR_DIR)" >&2
        return 1
    fi
}

up() {
    if any_alive && [[ "$(running_namespace)" != "$namespace" ]]; then
        echo "cluster: already running under namespace '$(running_namespace)': \`make down\` first" >&2
        exit 1
    fi
    check_stores || exit 1
    if compgen -G "$FX_VAR/stores/*.db" >/dev/null; then
        echo "cluster: note: $FX_VAR/stores/*.db predate per-namespace stores and are not used" \
            "(move them to $FX_VAR/stores/<namespace>/ to keep them)" >&2
    fi
    mkdir -p "$FX_VAR_DIR"
    printf '%s' "$namespace" >"$marker"
    printf '%s' "$namespace" >"$run/namespace"
    for s in "${SERVICES[@]}"; do
        if alive "$s"; then echo "cluster: $s already running (pid $(cat "$run/$s.pid"))"; continue; fi
        FX_HTTP_PORT="${PORTS[$s]}" nohup .venv/bin/"fx-$s" >>"$logs/$s.log" 2>&1 &
        echo $! >"$run/$s.pid"
        echo "cluster: started $s (pid $!, port ${PORTS[$s]}, log $logs/$s.log)"
    done
    local deadline=$((SECONDS + ${FX_UP_TIMEOUT:-90}))
    for s in "${SERVICES[@]}"; do
        until curl -fsS "http://127.0.0.1:${PORTS[$s]}/readyz" >/dev/null 2>&1; do
            if ! alive "$s"; then echo "cluster: $s exited; last log lines:" >&2; tail -20 "$logs/$s.log" >&2; exit 1; fi
            if ((SECONDS > deadline)); then echo "cluster: $s not ready in time" >&2; exit 1; fi
            sleep 0.3
        done
        echo "cluster: $s ready on :${PORTS[$s]}"
    done
    start_console
}

# The console (fx-console) on base+5 over the four services: no store, started once they answer.
start_console() {
    local port=$((base + 5))
    if alive console; then echo "cluster: console already running (pid $(cat "$run/console.pid"))"; return 0; fi
    FX_HTTP_PORT="$port" \
        FX_REFERRAL_BINDING_URL="http://127.0.0.1:${PORTS[referral-binding]}" \
        FX_QUALIFICATION_URL="http://127.0.0.1:${PORTS[qualification]}" \
        FX_COMMISSION_URL="http://127.0.0.1:${PORTS[commission]}" \
        FX_PAYOUT_URL="http://127.0.0.1:${PORTS[payout]}" \
        nohup .venv/bin/fx-console >>"$logs/console.log" 2>&1 &
    echo $! >"$run/console.pid"
    local deadline=$((SECONDS + 30))
    until curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
        if ! alive console; then echo "cluster: console exited; last log lines:" >&2; tail -20 "$logs/console.log" >&2; exit 1; fi
        if ((SECONDS > deadline)); then echo "cluster: console not up in time" >&2; exit 1; fi
        sleep 0.3
    done
    echo "cluster: console ready on http://127.0.0.1:$port (sign in on /signin)"
}

down() {
    for s in console "${SERVICES[@]}"; do
        alive "$s" || { rm -f "$run/$s.pid"; continue; }
        local pid; pid="$(cat "$run/$s.pid")"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { echo "cluster: $s did not stop; killing" >&2; kill -KILL "$pid"; }
        rm -f "$run/$s.pid"
        echo "cluster: stopped $s"
    done
}

# From nothing: stop the services (if they run this namespace), delete the namespace's
# topics and cached answers, remove its stores, then start again.
reset() {
    if [[ -f "$marker" && "$(cat "$marker")" != "$namespace" ]]; then
        check_stores || exit 1
    fi
    if any_alive; then
        if [[ "$(running_namespace)" == "$namespace" || ! -f "$run/namespace" ]]; then down
        else echo "cluster: the services run namespace '$(running_namespace)': \`make down\` first" >&2; exit 1; fi
    fi
    .venv/bin/python deploy/reset_namespace.py
    rm -rf "$FX_VAR_DIR"
    echo "cluster: removed the stores in $FX_VAR_DIR"
    up
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    reset) reset ;;
    logs) tail -n "${LINES:-50}" -F "$logs"/*.log ;;
    status) for s in "${SERVICES[@]}" console; do alive "$s" && echo "$s: running" || echo "$s: stopped"; done ;;
    *) echo "usage: $0 up|down|reset|logs|status" >&2; exit 2 ;;
esac
