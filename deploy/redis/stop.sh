#!/usr/bin/env bash
# Stop the redis-server started by start.sh.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! pid="$(redis_running_pid)"; then
    rm -f "$REDIS_PID_FILE"
    echo "redis: not running"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 100); do
    pid_alive "$pid" || break
    sleep 0.1
done
if pid_alive "$pid"; then
    echo "redis: pid $pid still running after 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
fi
rm -f "$REDIS_PID_FILE"
echo "redis: stopped (pid $pid)"
