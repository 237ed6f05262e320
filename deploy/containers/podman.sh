#!/usr/bin/env bash
# podman with this project's containers.conf (runc, cgroupfs, file events, nofile limit).
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$HERE/containers.conf}"
exec podman "$@"
