#!/usr/bin/env bash
# Stop the local PostgreSQL cluster started by start.sh (fast shutdown, immediate after 30s).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

if [[ -z "$PG_BIN" ]] || ! pg_running; then
    echo "postgres: not running"
    exit 0
fi
data="$(pg_data_dir)"
pid="$(head -n1 "$data/postmaster.pid")"
if ! as_pg_user "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 30 -s stop; then
    echo "postgres: fast shutdown timed out; shutting down immediately"
    as_pg_user "$PG_BIN/pg_ctl" -D "$data" -m immediate -w -t 30 -s stop
fi
echo "postgres: stopped (pid $pid)"
