#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of our kind (Debian, root, Node 20, Go):
# Debian's protoc, Prometheus' binaries unpacked into the tool cache (so no system service is
# started), and the npm packages from the lock file. Safe to run again: it skips what is present.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${FEDGPU_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedgpu/tools}
mkdir -p "$cache" "$repo/bin"
log() { printf '[deps] %s\n' "$*" >&2; }

apt_updated=
apt_update_once() {
  [[ -n $apt_updated ]] && return
  log "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  apt_updated=1
}

if ! command -v protoc >/dev/null; then
  apt_update_once
  log "installing Debian's protobuf-compiler"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends protobuf-compiler >/dev/null
fi

# A real test-bed node (operator/src/testbed/real-node) runs containers with Debian's containerd,
# runc and CNI plugins; hack/build-images.sh builds its images with umoci from busybox-static.
# Each node starts its own containerd on a socket under the run directory; the system's is not used.
real_node_pkgs=(containerd runc umoci busybox-static containernetworking-plugins)
missing=()
for p in "${real_node_pkgs[@]}"; do
  dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  apt_update_once
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Prometheus from Debian, unpacked rather than installed: the package would start a server
# listening on all interfaces, and we only ever start one ourselves, on loopback.
prom_dir="$cache/prometheus-debian"
if [[ ! -x "$prom_dir/usr/bin/promtool" ]]; then
  apt_update_once
  log "unpacking Debian's prometheus into $prom_dir"
  tmp=$(mktemp -d) && chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq prometheus >/dev/null)
  rm -rf "$prom_dir.tmp" && mkdir -p "$prom_dir.tmp"
  dpkg -x "$tmp"/prometheus_*.deb "$prom_dir.tmp"
  rm -rf "$prom_dir" && mv "$prom_dir.tmp" "$prom_dir" && rm -rf "$tmp"
fi
ln -sfn "$prom_dir/usr/bin/promtool" "$repo/bin/promtool"
ln -sfn "$prom_dir/usr/bin/prometheus" "$repo/bin/prometheus"

# npm ci only when the lock file changed since the last install.
stamp="$repo/node_modules/.fedgpu-lock.sha"
want=$(sha256sum "$repo/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  log "npm ci"
  (cd "$repo" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
fi
bash "$here/build-images.sh"
log "dependencies ready"
