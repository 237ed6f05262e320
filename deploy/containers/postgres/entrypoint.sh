#!/bin/bash
# First start of an empty PGDATA: initdb with POSTGRES_USER (superuser) and POSTGRES_PASSWORD,
# create POSTGRES_DB, run /docker-entrypoint-initdb.d/*; then postgres on every interface.
set -euo pipefail
if [[ "${1:-postgres}" != postgres ]]; then
    exec "$@"
fi
shift || true
if ((EUID == 0)); then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" postgres "$@"
fi

user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"
if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    if [[ -z "${POSTGRES_PASSWORD:-}" ]]; then
        echo "postgres: POSTGRES_PASSWORD is required" >&2
        exit 1
    fi
    initdb -D "$PGDATA" --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    if [[ "$db" != postgres ]]; then
        psql -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres -q \
            -c "CREATE DATABASE \"$db\""
    fi
    for init in /docker-entrypoint-initdb.d/*; do
        case "$init" in
            *.sql) echo "postgres: running $init"
                psql -v ON_ERROR_STOP=1 --username="$user" --dbname="$db" -q -f "$init" ;;
            *.sh) echo "postgres: running $init"; bash "$init" ;;
        esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    echo "postgres: initialised $PGDATA (user $user, database $db)"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
