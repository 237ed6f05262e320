#!/usr/bin/env bash
# Stop the local broker: SIGTERM (controlled shutdown), SIGKILL after 30s.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if ! pid="$(kafka_running_pid)"; then
    rm -f "$KAFKA_PID_FILE"
    echo "kafka: not running"
    exit 0
fi
kill -TERM "$pid"
for _ in $(seq 1 150); do
    pid_alive "$pid" || break
    sleep 0.2
done
if pid_alive "$pid"; then
    echo "kafka: broker pid $pid still running after 30s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
        pid_alive "$pid" || break
        sleep 0.2
    done
fi
rm -f "$KAFKA_PID_FILE"
echo "kafka: stopped (pid $pid)"
