#!/usr/bin/env bash
# Install a container engine when none is reachable: podman from Debian (rootful) plus
# mmdebstrap (the base image) and docker-compose 1.29 (Debian). Idempotent. A machine that
# already has Docker (Docker Desktop, DOCKER_HOST) needs none of this: engine.sh uses it.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

packages=(podman uidmap slirp4netns fuse-overlayfs mmdebstrap containernetworking-plugins
    netavark aardvark-dns conmon crun catatonit iptables runc docker-compose)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]} == 0)); then
    echo "containers: podman $(podman --version | awk '{print $3}'), mmdebstrap and docker-compose present"
    exit 0
fi
if ((EUID != 0)); then
    echo "containers: missing ${missing[*]}; install them with apt-get (as root) and run again" >&2
    exit 1
fi
started=$EPOCHREALTIME
export DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq -o DPkg::Lock::Timeout=600 && apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "containers: apt-get failed to install ${missing[*]}" >&2
    exit 1
fi
echo "containers: installed ${missing[*]} (apt) in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0fs", b - a }')"
"$HERE/podman.sh" --version >/dev/null
