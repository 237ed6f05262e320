# Sourced by the deploy/postgres scripts.
# shellcheck shell=bash disable=SC2034  # the variables are for the scripts that source this

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FX_VAR="$(realpath -m "${FX_VAR:-$REPO_ROOT/var}")"
FX_PG_PORT="${FX_PG_PORT:-5432}"
FX_PG_DATABASES="fx_referral_binding fx_qualification fx_commission fx_payout fx_test"
PG_VAR="$FX_VAR/postgres"

# initdb and postgres refuse to run as root: as root, the cluster belongs to a system user.
if ((EUID == 0)); then
    FX_PG_USER="${FX_PG_USER:-fxpg}"
else
    FX_PG_USER="$(id -un)"
fi

as_pg_user() {
    if ((EUID == 0)); then
        # From /: the user may not be allowed into the current directory.
        (cd / && runuser -u "$FX_PG_USER" -- "$@")
    else
        "$@"
    fi
}

# The newest installed PostgreSQL (Debian keeps each major version in /usr/lib/postgresql/N/bin).
pg_find_bin() {
    local dir
    if [[ -n "${FX_PG_BIN:-}" ]]; then
        echo "$FX_PG_BIN"
        return 0
    fi
    for dir in $(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V -r); do
        if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# The cluster's data directory (var/postgres/data, possibly a symlink: see start.sh).
pg_data_dir() {
    readlink -f "$PG_VAR/data"
}

pg_running() {
    local data
    data="$(pg_data_dir)"
    [[ -f "$data/PG_VERSION" ]] && as_pg_user "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
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

PG_BIN="$(pg_find_bin || true)"
