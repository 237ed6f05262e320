#!/usr/bin/env bash
# Start a local PostgreSQL cluster on 127.0.0.1:$FX_PG_PORT (trust auth), created on first use
# under var/postgres, with role fx (password fx) and one database per service plus fx_test.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

[[ -n "$PG_BIN" ]] || { echo "postgres: no /usr/lib/postgresql/*/bin found (deploy/install-deps.sh)" >&2; exit 1; }

psql_admin() {
    "$PG_BIN/psql" -h 127.0.0.1 -p "$FX_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

ensure_user() {
    ((EUID == 0)) || return 0
    id -u "$FX_PG_USER" >/dev/null 2>&1 && return 0
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin "$FX_PG_USER"
    echo "postgres: created system user $FX_PG_USER to own the cluster"
}

# var/postgres/data if $FX_PG_USER can reach it; otherwise (a checkout below /root, say) a
# directory under /var/tmp, linked from var/postgres/data.
create_data_dir() {
    mkdir -p "$PG_VAR"
    chown "$FX_PG_USER:" "$PG_VAR"
    if as_pg_user test -w "$PG_VAR" -a -x "$PG_VAR"; then
        as_pg_user mkdir -p "$PG_VAR/data"
    else
        local outside
        outside="/var/tmp/fenxiao-postgres-$(echo "$PG_VAR" | sha256sum | cut -c1-12)"
        mkdir -p "$outside/data"
        chown -R "$FX_PG_USER:" "$outside"
        ln -sfn "$outside/data" "$PG_VAR/data"
        echo "postgres: $FX_PG_USER cannot reach $PG_VAR; the cluster lives in $outside/data"
    fi
}

init_cluster() {
    local data="$1"
    as_pg_user "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$PG_VAR/initdb.log" 2>&1 || { cat "$PG_VAR/initdb.log" >&2; exit 1; }
    # A disposable development cluster: TCP on loopback only, no fsync (a crash of the machine,
    # not of a process, may lose recent commits), room for four services' pools and the tests.
    as_pg_user tee -a "$data/postgresql.conf" >/dev/null <<'CONF'

# --- fenxiao local development cluster (deploy/postgres/start.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
fsync = off
full_page_writes = off
CONF
    echo "postgres: initialised a cluster in $data ($("$PG_BIN/postgres" --version))"
}

ensure_databases() {
    psql_admin -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fx') THEN
            CREATE ROLE fx LOGIN SUPERUSER PASSWORD 'fx';
        END IF;
    END \$\$;"
    local db created=()
    for db in $FX_PG_DATABASES; do
        if [[ -z "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]]; then
            psql_admin -c "CREATE DATABASE $db OWNER fx"
            created+=("$db")
        fi
    done
    if ((${#created[@]})); then
        echo "postgres: created databases ${created[*]}"
    fi
}

ensure_user
[[ -e "$PG_VAR/data" ]] || create_data_dir
data="$(pg_data_dir)"
if [[ -f "$data/PG_VERSION" && "$(cat "$data/PG_VERSION")" != "$("$PG_BIN/pg_config" --version | grep -oE '[0-9]+' | head -n1)" ]]; then
    echo "postgres: $data was created by PostgreSQL $(cat "$data/PG_VERSION"), but $PG_BIN is another" \
        "major version; delete $PG_VAR to start over" >&2
    exit 1
fi

# A postmaster killed a moment ago may linger as a zombie, and postgres would take its lock file
# for a live server: wait for it to be reaped.
if [[ -f "$data/postmaster.pid" ]]; then
    stale="$(head -n1 "$data/postmaster.pid")"
    for _ in $(seq 1 100); do
        if pid_alive "$stale" || ! kill -0 "$stale" 2>/dev/null; then break; fi
        sleep 0.1
    done
fi

if pg_running; then
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$FX_PG_PORT"; then
        echo "postgres: reusing the cluster already running (pid $(head -n1 "$data/postmaster.pid")) on 127.0.0.1:$FX_PG_PORT"
        ensure_databases
        exit 0
    fi
    echo "postgres: this checkout's cluster is running but not on port $FX_PG_PORT; run deploy/postgres/stop.sh first" >&2
    exit 1
fi
if port_answers "$FX_PG_PORT"; then
    echo "postgres: port $FX_PG_PORT is already in use by a process that is not this checkout's cluster" \
        "$(ss -ltnpH "sport = :$FX_PG_PORT" 2>/dev/null | grep -o 'users:.*' | head -n1)" >&2
    echo "postgres: stop that process, or choose another port with FX_PG_PORT" >&2
    exit 1
fi

[[ -f "$data/PG_VERSION" ]] || init_cluster "$data"
log="$(dirname "$data")/postgres.log"
if ! as_pg_user "$PG_BIN/pg_ctl" -D "$data" -l "$log" -w -t 60 -s -o "-p $FX_PG_PORT" start; then
    echo "postgres: failed to start; tail of $log:" >&2
    tail -n 20 "$log" >&2 || true
    exit 1
fi
ensure_databases
echo "postgres: ready on 127.0.0.1:$FX_PG_PORT (pid $(head -n1 "$data/postmaster.pid"))"
