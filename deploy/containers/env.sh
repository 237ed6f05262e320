# shellcheck shell=bash
# Names shared by the container scripts. The image variables default to the locally built
# images; a machine with a registry may point them at the official ones instead.
CONTAINERS_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CONTAINERS_HOME/../.." && pwd)"
FX_VAR="$(realpath -m "${FX_VAR:-$REPO_ROOT/var}")"
FX_BASE_IMAGE="${FX_BASE_IMAGE:-localhost/fx-debian-base:bookworm}"
FX_KAFKA_IMAGE="${FX_KAFKA_IMAGE:-localhost/fx-kafka:4.1.1}"
FX_POSTGRES_IMAGE="${FX_POSTGRES_IMAGE:-localhost/fx-postgres:15}"
FX_REDIS_IMAGE="${FX_REDIS_IMAGE:-localhost/fx-redis:7}"
FX_IMAGE="${FX_IMAGE:-localhost/fenxiao:local}"
FX_PODMAN_SOCKET="${FX_PODMAN_SOCKET:-/run/podman/podman.sock}"
export FX_BASE_IMAGE FX_KAFKA_IMAGE FX_POSTGRES_IMAGE FX_REDIS_IMAGE FX_IMAGE FX_PODMAN_SOCKET
