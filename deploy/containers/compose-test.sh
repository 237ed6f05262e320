#!/usr/bin/env bash
# `make compose-test`: docker-compose.yml for real. Installs podman when no engine answers,
# builds the images that are missing or out of date, starts the cluster with Postgres stores,
# then demo/compose_check.py (readiness, the demo scenario and its checks, two commission
# replicas that both consume, a replica restarted without losing anything), then `down -v`
# and a check that no container, network or volume of the project is left.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$HERE/env.sh"
cd "$REPO_ROOT"
export UV_PYTHON_DOWNLOADS=never
t0=$EPOCHREALTIME
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0fs", b - a }'; }

FX_CONTAINERS_INSTALL=1 "$HERE/engine.sh" up
eval "$("$HERE/engine.sh" env)"
project="${FX_COMPOSE_PROJECT:-fxcompose}"
compose=(docker-compose -p "$project" -f docker-compose.yml -f "$HERE/compose-test.yml")
export FX_CLOCK=simulated FX_TOPIC_NAMESPACE="" \
    FX_JWT_SECRET="${FX_JWT_SECRET:-compose-test-only-secret-0123456789abcdef}" \
    FX_COMPOSE_KAFKA_PORT="${FX_COMPOSE_KAFKA_PORT:-29092}" \
    FX_COMPOSE_PORT_PREFIX="${FX_COMPOSE_PORT_PREFIX:-28}"
if [[ "$FX_CONTAINER_ENGINE" == podman ]]; then
    "$HERE/build.sh"
else
    "${compose[@]}" build
fi
echo "compose-test: engine and images ready after $(since "$t0")"

health_pid=""
leftovers() {
    local kind
    for kind in container network volume; do
        docker_api_list "$kind"
    done
}
docker_api_list() {  # names of the project's containers / networks / volumes, via the API
    local path
    case "$1" in
        container) path="containers/json?all=1" ;;
        network) path="networks" ;;
        volume) path="volumes" ;;
    esac
    curl -sf --unix-socket "${DOCKER_HOST#unix://}" -G "http://d/$path" \
        --data-urlencode "filters={\"label\":[\"com.docker.compose.project=$project\"]}" \
        | .venv/bin/python -c 'import json, sys
data = json.load(sys.stdin)
items = data.get("Volumes") or [] if isinstance(data, dict) else data
for item in items:
    names = item.get("Names") or [item.get("Name")]
    print(sys.argv[1], names[0])' "$1"
}
finish() {
    local status=$?
    [[ -n "$health_pid" ]] && kill "$health_pid" 2>/dev/null
    if ((status != 0)); then
        "${compose[@]}" ps || true
        "${compose[@]}" logs --tail=60 || true
    fi
    "${compose[@]}" down -v --remove-orphans -t 30 >/dev/null 2>&1 || true
    exit "$status"
}
trap finish EXIT

"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
if [[ "$FX_CONTAINER_ENGINE" == podman ]]; then
    "$HERE/engine.sh" healthchecks &
    health_pid=$!
fi
up_at="$(date +%s.%N)"
"${compose[@]}" up -d --no-build
.venv/bin/python -m demo.compose_check --project "$project" --compose "${compose[*]}" \
    --bootstrap "127.0.0.1:$FX_COMPOSE_KAFKA_PORT" --up-at "$up_at" \
    --port "referral-binding=${FX_COMPOSE_PORT_PREFIX}101" \
    --port "qualification=${FX_COMPOSE_PORT_PREFIX}102" \
    --port "payout=${FX_COMPOSE_PORT_PREFIX}104"

"${compose[@]}" down -v --remove-orphans -t 30
left="$(leftovers)"
if [[ -n "$left" ]]; then
    echo "compose-test: left behind after down:" >&2
    echo "$left" >&2
    exit 1
fi
echo "compose-test: down left no container, network or volume of $project; total $(since "$t0")"
