# shellcheck shell=bash
# Names shared by the container scripts: the locally built images (podman, no registry).
CONTAINERS_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CONTAINERS_HOME/../.." && pwd)"
FX_VAR="${FX_VAR:-$REPO_ROOT/var}"  # no realpath -m: engine.sh also runs on macOS
FX_BASE_IMAGE="${FX_BASE_IMAGE:-localhost/fx-debian-base:bookworm}"
FX_KAFKA_IMAGE="${FX_KAFKA_IMAGE:-localhost/fx-kafka:4.1.1}"
FX_POSTGRES_IMAGE="${FX_POSTGRES_IMAGE:-localhost/fx-postgres:15}"
FX_REDIS_IMAGE="${FX_REDIS_IMAGE:-localhost/fx-redis:7}"
FX_IMAGE="${FX_IMAGE:-localhost/fenxiao:local}"
FX_PODMAN_SOCKET="${FX_PODMAN_SOCKET:-/run/podman/podman.sock}"
# Not exported: on Docker, compose and the tests keep the official images unless the caller
# set these; on podman `engine.sh env` exports them.
