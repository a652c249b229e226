#!/usr/bin/env bash
# Builds the real control-plane tools (kube-apiserver, kube-scheduler, kube-controller-manager,
# kubectl, kubelet, etcd, kwok, helm) from the Go module proxy into a cache outside the clone, keyed by
# version, then links them into ./bin. A second clone on the same machine (CI included) reuses the
# cache, so only the first build is slow.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${FEDGPU_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/fedgpu/tools}
bin="$repo/bin"
mkdir -p "$cache" "$bin"

export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
# A fixed build date keeps the binaries reproducible for a given version.
build_date=1970-01-01T00:00:00Z

log() { printf '[tools] %s\n' "$*" >&2; }

# Runs a long command, printing a heartbeat every 30 s so a cold build never looks hung.
with_progress() {
  local what=$1; shift
  local start=$SECONDS
  "$@" &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && log "still building $what ($((SECONDS - start))s)"
  done
  wait "$pid"
  log "built $what in $((SECONDS - start))s"
}

# Creates a throwaway Go module that requires $module@$version with the given go.mod body.
scratch_module() {
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/fedgpu-build.XXXXXX")
  printf '%s\n' "$1" >"$dir/go.mod"
  echo "$dir"
}

gomod_of() { go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p'; }

# A throwaway module that builds commands of k8s.io/kubernetes at $KUBE_VERSION; prints its folder.
kube_module() {
  local staging="v0.${KUBE_VERSION#v1.}"
  local upstream; upstream=$(gomod_of "k8s.io/kubernetes@$KUBE_VERSION")
  # k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local paths;
  # we replace each with the published staging version instead (go install @v refuses replaces).
  local replaces
  replaces=$(sed -n 's/^[[:space:]]*\(k8s\.io\/[a-z0-9-]*\) v0\.0\.0$/\1/p' "$upstream" | sort -u |
    while read -r m; do echo "replace $m => $m $staging"; done)
  # Keep upstream's require blocks so every dependency resolves to the version kubernetes tested.
  local requires
  requires=$(awk '/^require \(/{inb=1; print; next} inb && /^\)/{inb=0; print; next} inb{print}' "$upstream")
  scratch_module "module fedgpu.local/kubebuild

go 1.24.0

require k8s.io/kubernetes $KUBE_VERSION
$requires
$replaces"
}

# Builds the given k8s.io/kubernetes commands into $1 (version stamped like a release build).
build_kube_commands() {
  local out=$1; shift
  local pkgs=("$@")
  local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
  local dir; dir=$(kube_module)
  local ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=$build_date"
  done
  log "building kubernetes $KUBE_VERSION (${pkgs[*]}); a cold build takes 10-25 min on 2 cores"
  mkdir -p "$out.tmp"
  (cd "$dir" && with_progress "kubernetes $KUBE_VERSION (${pkgs[*]})" \
    go build -mod=mod -trimpath -ldflags "$ld" -o "$out.tmp/" "${pkgs[@]/#/k8s.io/kubernetes/}")
  rm -rf "$out" && mv "$out.tmp" "$out" && rm -rf "$dir"
}

build_kube() {
  local out="$cache/kubernetes-$KUBE_VERSION"
  if [[ -x "$out/kube-apiserver" && -x "$out/kubectl" && -x "$out/kube-scheduler" && -x "$out/kube-controller-manager" ]]; then
    log "kubernetes $KUBE_VERSION cached in $out"; return
  fi
  build_kube_commands "$out" cmd/kube-apiserver cmd/kube-scheduler cmd/kube-controller-manager cmd/kubectl
}

# The kubelet of a real test-bed node, from the same module and version, cached on its own so that
# adding it never rebuilds the control plane.
build_kubelet() {
  local out="$cache/kubelet-$KUBE_VERSION"
  [[ -x "$out/kubelet" ]] && { log "kubelet $KUBE_VERSION cached"; return; }
  build_kube_commands "$out" cmd/kubelet
}

build_etcd() {
  local out="$cache/etcd-$ETCD_VERSION"
  [[ -x "$out/etcd" ]] && { log "etcd $ETCD_VERSION cached"; return; }
  local dir; dir=$(scratch_module "module fedgpu.local/etcdbuild

go 1.26.0

require go.etcd.io/etcd/server/v3 $ETCD_VERSION")
  cat >"$dir/main.go" <<'GO'
// A one-line main over etcd's own entry point, so etcd builds from the module proxy.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  mkdir -p "$out.tmp"
  (cd "$dir" && go mod tidy >/dev/null 2>&1 && with_progress "etcd $ETCD_VERSION" \
    go build -trimpath -ldflags "-s -w" -o "$out.tmp/etcd" .)
  rm -rf "$out" && mv "$out.tmp" "$out" && rm -rf "$dir"
}

# kwok and helm have no replace directives, so plain `go install module/cmd@version` works.
build_installable() {
  local name=$1 pkg=$2 version=$3 ld=$4
  local out="$cache/$name-$version"
  [[ -x "$out/$name" ]] && { log "$name $version cached"; return; }
  mkdir -p "$out.tmp"
  GOBIN="$out.tmp" with_progress "$name $version" go install -trimpath -ldflags "-s -w $ld" "$pkg@$version"
  rm -rf "$out" && mv "$out.tmp" "$out"
}

link() { ln -sfn "$1" "$bin/$(basename "$1")"; }

want=${*:-kubernetes kubelet etcd kwok helm}
for t in $want; do
  case $t in
    kubernetes) build_kube ;;
    kubelet) build_kubelet ;;
    etcd) build_etcd ;;
    kwok) build_installable kwok sigs.k8s.io/kwok/cmd/kwok "$KWOK_VERSION" \
      "-X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" ;;
    helm) build_installable helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" \
      "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" ;;
    *) echo "unknown tool $t" >&2; exit 2 ;;
  esac
done

for f in "$cache/kubernetes-$KUBE_VERSION"/* "$cache/kubelet-$KUBE_VERSION/kubelet" "$cache/etcd-$ETCD_VERSION/etcd" \
  "$cache/kwok-$KWOK_VERSION/kwok" "$cache/helm-$HELM_VERSION/helm"; do
  [[ -x $f ]] && link "$f"
done
# The CLI as a kubectl plugin: with bin/ on PATH, `kubectl fedgpu …` finds it.
ln -sfn ../operator/bin/fedgpu.js "$bin/kubectl-fedgpu"
log "tools ready in $bin"
