#!/usr/bin/env bash
# Install what this project needs on a Debian machine: Redis, PostgreSQL, a JDK, Maven,
# Prometheus and wrk (apt), uv (PyPI), the Python workspace with its dev tools (uv sync), the
# Kafka jars (Maven Central) and ajv for the strict JSON Schema check of contracts/ (Node.js from
# apt, ajv from npm).
# Idempotent: whatever is already there is left alone. FX_DEPS=python installs only uv, the
# workspace, ajv and Prometheus (`make test-containers` on a machine with Docker needs no Java,
# Redis or Postgres; the alert-rule and dashboard tests need promtool and prometheus).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
export UV_PYTHON_DOWNLOADS=never

have_postgres() { compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; }

install_apt_packages() {
    local missing=()
    # promtool checks the alert rules; the observability test runs a real Prometheus server:
    # the test suite needs them in every mode (`install_apt_packages prometheus` for FX_DEPS=python).
    command -v promtool >/dev/null || missing+=(prometheus)
    # The console's browser tests (Playwright drives Debian's Chromium; CJK fonts for zh-CN).
    command -v chromium >/dev/null || missing+=(chromium)
    dpkg -s fonts-noto-cjk >/dev/null 2>&1 || missing+=(fonts-noto-cjk)
    if [[ "${1:-all}" == all ]]; then
        command -v redis-server >/dev/null || missing+=(redis-server)
        have_postgres || missing+=(postgresql)
        command -v java >/dev/null || missing+=(openjdk-17-jdk-headless)
        command -v mvn >/dev/null || missing+=(maven)
        command -v python3 >/dev/null || missing+=(python3)
        command -v make >/dev/null || missing+=(make)
        command -v curl >/dev/null || missing+=(curl)
        # Node.js + npm: tests/contract-js compiles contracts/ with ajv in strict mode.
        command -v node >/dev/null || missing+=(nodejs)
        command -v npm >/dev/null || missing+=(npm)
        # Only to validate docker-compose.yml (`docker-compose config`); no engine is needed.
        command -v docker-compose >/dev/null || missing+=(docker-compose)
        # Only for `make bench-http` (the HTTP load of benchmarks/http_bench.py).
        command -v wrk >/dev/null || missing+=(wrk)
    fi
    if ((${#missing[@]} == 0)); then
        echo "deps: system packages present (${1:-redis-server, postgresql, java, mvn, make, docker-compose, node, npm, prometheus, wrk})"
        return 0
    fi
    if ((EUID != 0)); then
        echo "deps: missing ${missing[*]}; install them with apt-get (as root) and run again" >&2
        exit 1
    fi
    # Packages must not start their own redis/postgres on the ports our scripts use.
    local policy=/usr/sbin/policy-rc.d
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
    local log
    log="$(mktemp)"
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        echo "deps: apt-get failed to install ${missing[*]}" >&2
        exit 1
    fi
    rm -f "$log"
    echo "deps: installed ${missing[*]} (apt)"
}

install_uv() {
    if command -v uv >/dev/null; then
        echo "deps: $(uv --version) present"
        return 0
    fi
    if ! python3 -m pip --version >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip \
            >/dev/null 2>&1
    fi
    # Debian marks its python as externally managed; uv is a standalone binary, so this is safe.
    python3 -m pip install -q --root-user-action=ignore --break-system-packages uv 2>/dev/null \
        || python3 -m pip install -q uv
    hash -r
    command -v uv >/dev/null || export PATH="$HOME/.local/bin:$PATH"
    echo "deps: installed $(uv --version) (pip)"
}

sync_python() {
    # uv syncs the `dev` dependency group by default; --all-packages installs every member.
    uv sync --all-packages --quiet
    echo "deps: python workspace synced into .venv ($(.venv/bin/python --version))"
}

install_contract_checker() {
    # ajv + ajv-formats at the versions of package-lock.json (npm ci), once per lockfile.
    local dir="$REPO_ROOT/tests/contract-js"
    if [[ -f "$dir/node_modules/.package-lock.json" && "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]]; then
        echo "deps: ajv present (tests/contract-js)"
        return 0
    fi
    npm ci --prefix "$dir" --no-audit --no-fund --silent
    echo "deps: installed ajv into tests/contract-js (npm ci)"
}

if [[ "${FX_DEPS:-all}" == python ]]; then
    install_apt_packages prometheus
    install_uv
    sync_python
    install_contract_checker
    exit 0
fi
install_apt_packages
install_uv
sync_python
install_contract_checker
"$REPO_ROOT/deploy/kafka/fetch.sh"
# The Strimzi CRD generator (tests/test_strimzi_manifests.py validates deploy/k8s/strimzi with it).
"$REPO_ROOT/deploy/k8s/strimzi/crds.sh" --fetch
