#!/usr/bin/env bash
# The four services as background processes: up (wait until every /readyz answers 200),
# down (SIGTERM: each finishes its batch and flushes its outbox), logs, status.
# Environment: KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, FX_* pass through to every service;
# FX_VAR (default <repo>/var) holds pid files, logs and the SQLite stores.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
FX_VAR="$(realpath -m "${FX_VAR:-$PWD/var}")"
export FX_VAR_DIR="${FX_VAR_DIR:-$FX_VAR/stores}"
run="$FX_VAR/run"
logs="$FX_VAR/log"
mkdir -p "$run" "$logs" "$FX_VAR_DIR"

declare -A PORTS=([referral-binding]=8101 [qualification]=8102 [commission]=8103 [payout]=8104)
SERVICES=(referral-binding qualification commission payout)

alive() { [[ -f "$run/$1.pid" ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

up() {
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
}

down() {
    for s in "${SERVICES[@]}"; do
        alive "$s" || { rm -f "$run/$s.pid"; continue; }
        local pid; pid="$(cat "$run/$s.pid")"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && { echo "cluster: $s did not stop; killing" >&2; kill -KILL "$pid"; }
        rm -f "$run/$s.pid"
        echo "cluster: stopped $s"
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    logs) tail -n "${LINES:-50}" -F "$logs"/*.log ;;
    status) for s in "${SERVICES[@]}"; do alive "$s" && echo "$s: running" || echo "$s: stopped"; done ;;
    *) echo "usage: $0 up|down|logs|status" >&2; exit 2 ;;
esac
