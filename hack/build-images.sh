#!/usr/bin/env bash
# Builds the container images a real test-bed node runs, as OCI archives, from Debian packages and
# without any registry: umoci assembles the layout, Debian's busybox-static is the whole userland.
# The archives are cached by package version in the tool cache and linked into ./bin/images, from
# where each real node's containerd imports them (`ctr images import`).
#
#   fedgpu.local/busybox:<busybox version>  busybox applets, user 65532:65532, /tmp writable by all
#   fedgpu.local/pause:<busybox version>    the pod sandbox: a shell that waits and exits on SIGTERM
#
# The registry host `fedgpu.local` does not resolve on purpose: a pod that tries to pull fails at
# once instead of reaching out to the internet. Pods use the images with a tag (so the default pull
# policy is IfNotPresent) or `imagePullPolicy: Never`.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${FEDGPU_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedgpu/tools}
log() { printf '[images] %s\n' "$*" >&2; }

for t in umoci; do command -v "$t" >/dev/null || { echo "$t is missing: run 'make deps'" >&2; exit 1; }; done
[[ -x /bin/busybox ]] || { echo "/bin/busybox is missing: run 'make deps'" >&2; exit 1; }

# The tag follows Debian's busybox-static version (epoch and Debian revision dropped): 1.35.0.
version=$(dpkg-query -W -f '${Version}' busybox-static | sed 's/^[0-9]*://; s/[-+~].*$//')
# The script's own hash is part of the cache key, so changing how an image is built rebuilds it.
script_hash=$(sha256sum "$0" | cut -c1-12)
out="$cache/images-$version-$script_hash"
mkdir -p "$repo/bin"

build_image() {
  local name=$1 user=$2; shift 2
  local archive="$out/$name.tar"
  [[ -f $archive ]] && { log "$name $version cached"; return; }
  local work; work=$(mktemp -d "${TMPDIR:-/tmp}/fedgpu-image.XXXXXX")
  umoci init --layout "$work/layout"
  umoci new --image "$work/layout:$version"
  umoci unpack --image "$work/layout:$version" "$work/bundle" >/dev/null
  local rootfs=$work/bundle/rootfs
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/home/user"
  chmod 1777 "$rootfs/tmp"
  chown 65532:65532 "$rootfs/home/user"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$rootfs/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:65532:65532:user:/home/user:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nuser:x:65532:\n' >"$rootfs/etc/group"
  umoci repack --image "$work/layout:$version" "$work/bundle"
  umoci config --image "$work/layout:$version" --author fedgpu --config.user "$user" \
    --config.env PATH=/bin --config.env HOME=/home/user --config.workingdir /home/user "$@"
  umoci gc --layout "$work/layout"
  mkdir -p "$out"
  tar -C "$work/layout" -cf "$archive.tmp" .
  mv "$archive.tmp" "$archive"
  rm -rf "$work"
  log "built $name $version ($(du -h "$archive" | cut -f1))"
}

build_image busybox 65532:65532 --config.cmd /bin/sh
# The sandbox process holds the pod's namespaces; it only waits, and leaves at SIGTERM or SIGINT.
build_image pause 65535:65535 --config.entrypoint /bin/sh --config.entrypoint -c \
  --config.entrypoint 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'

ln -sfn "$out" "$repo/bin/images"
printf '%s\n' "$version" >"$out/VERSION"
log "images ready in $repo/bin/images (tag $version)"
