#!/usr/bin/env bash
# Build the images on podman FROM the locally made base (base.sh): Kafka (the Maven jars),
# PostgreSQL and Redis (Debian packages) and the services' image. Layers are cached, so a
# rebuild only redoes what changed; `build.sh kafka postgres` builds some of them.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$HERE/env.sh"

"$HERE/base.sh"
targets=("$@")
((${#targets[@]})) || targets=(kafka postgres redis fenxiao)

timed_build() {
    local name="$1" image="$2" started=$EPOCHREALTIME log
    shift 2
    log="$(mktemp)"
    if ! "$HERE/podman.sh" build --format docker --layers --build-arg "BASE_IMAGE=$FX_BASE_IMAGE" \
        -t "$image" "$@" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        rm -f "$log"
        echo "containers: building $image failed" >&2
        exit 1
    fi
    rm -f "$log"
    local size
    size="$("$HERE/podman.sh" image inspect --format '{{.Size}}' "$image")"
    echo "containers: $name image $image ready in $(awk -v a="$started" -v b="$EPOCHREALTIME" \
        'BEGIN { printf "%.0fs", b - a }'), $((size / 1000000)) MB"
}

for target in "${targets[@]}"; do
    case "$target" in
        kafka)
            "$REPO_ROOT/deploy/kafka/fetch.sh" >/dev/null
            timed_build kafka "$FX_KAFKA_IMAGE" -f "$HERE/kafka/Containerfile" "$REPO_ROOT/deploy" ;;
        postgres) timed_build postgres "$FX_POSTGRES_IMAGE" "$HERE/postgres" ;;
        redis) timed_build redis "$FX_REDIS_IMAGE" "$HERE/redis" ;;
        fenxiao)
            timed_build services "$FX_IMAGE" --build-arg "PYTHON_IMAGE=${FX_PYTHON_IMAGE:-$FX_BASE_IMAGE}" \
                -f "$REPO_ROOT/Dockerfile" "$REPO_ROOT" ;;
        *) echo "containers: unknown image $target (kafka postgres redis fenxiao)" >&2; exit 2 ;;
    esac
done
