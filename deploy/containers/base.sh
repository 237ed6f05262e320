#!/usr/bin/env bash
# The local base image, made without any registry: a minimal Debian bookworm (mmdebstrap, from
# the Debian mirror this machine uses) with python3 and ca-certificates, imported into podman as
# $FX_BASE_IMAGE. Skipped when the image exists.
#
# The host's locally added CA certificates (/usr/local/share/ca-certificates/*.crt, the Debian
# place for site CAs) are trusted in the image too, so builds reach PyPI behind a TLS-inspecting
# proxy exactly as the host does.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=env.sh
source "$HERE/env.sh"

if "$HERE/podman.sh" image exists "$FX_BASE_IMAGE"; then
    echo "containers: base image $FX_BASE_IMAGE present"
    exit 0
fi
command -v mmdebstrap >/dev/null || { echo "containers: mmdebstrap missing (deploy/containers/install.sh)" >&2; exit 1; }

# The Debian mirror of this machine (deb822 or one-line sources), else deb.debian.org.
mirror="$(sed -n 's/^URIs:[[:space:]]*\(http[^[:space:]]*\/debian\)[[:space:]]*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
[[ -n "$mirror" ]] || mirror="$(awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)"
mirror="${mirror:-http://deb.debian.org/debian}"
security="${mirror%/debian}/debian-security"

hooks=()
for cert in /usr/local/share/ca-certificates/*.crt; do
    [[ -f "$cert" ]] || continue
    hooks+=(--customize-hook="copy-in $cert /usr/local/share/ca-certificates/")
done
if ((${#hooks[@]})); then
    hooks+=(--customize-hook='chroot "$1" update-ca-certificates >/dev/null')
fi

started=$EPOCHREALTIME
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log="$work/mmdebstrap.log"
if ! mmdebstrap --variant=minbase --include=ca-certificates,python3 "${hooks[@]}" \
    --customize-hook='rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* "$1"/usr/share/locale/*' \
    bookworm "$work/base.tar" \
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
    "deb $security bookworm-security main" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "containers: mmdebstrap failed" >&2
    exit 1
fi
"$HERE/podman.sh" import -q --change 'CMD ["/bin/bash"]' "$work/base.tar" "$FX_BASE_IMAGE" >/dev/null
echo "containers: base image $FX_BASE_IMAGE made in $(awk -v a="$started" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0fs", b - a }') from $mirror"
