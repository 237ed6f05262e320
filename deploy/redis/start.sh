#!/usr/bin/env bash
# Start a throwaway redis-server (no persistence) on 127.0.0.1:$FX_REDIS_PORT, or reuse ours.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if pid="$(redis_running_pid)" && redis_pong 2>/dev/null; then
    echo "redis: reusing the server already running (pid $pid) on 127.0.0.1:$FX_REDIS_PORT"
    exit 0
fi
if [[ -f "$REDIS_PID_FILE" ]] && ! redis_running_pid >/dev/null; then
    echo "redis: removing stale pid file"
    rm -f "$REDIS_PID_FILE"
fi
if port_answers "$FX_REDIS_PORT"; then
    echo "redis: port $FX_REDIS_PORT is already in use by a process that is not this checkout's redis" \
        "$(ss -ltnpH "sport = :$FX_REDIS_PORT" 2>/dev/null | grep -o 'users:.*' | head -n1)" >&2
    echo "redis: stop that process, or choose another port with FX_REDIS_PORT" >&2
    exit 1
fi
command -v redis-server >/dev/null || { echo "redis: redis-server not found (deploy/install-deps.sh)" >&2; exit 1; }

mkdir -p "$REDIS_VAR"
redis-server --bind 127.0.0.1 --port "$FX_REDIS_PORT" --protected-mode yes \
    --daemonize yes --pidfile "$REDIS_PID_FILE" --dir "$REDIS_VAR" \
    --logfile "$REDIS_VAR/redis.log" --save "" --appendonly no
for _ in $(seq 1 100); do
    if redis_pong 2>/dev/null; then
        echo "redis: ready on 127.0.0.1:$FX_REDIS_PORT (pid $(cat "$REDIS_PID_FILE"))"
        exit 0
    fi
    sleep 0.1
done
echo "redis: not answering PING after 10s; tail of $REDIS_VAR/redis.log:" >&2
tail -n 20 "$REDIS_VAR/redis.log" >&2 || true
exit 1
