#!/usr/bin/env bash
# Builds the Kubernetes control plane the Kubernetes-backend tests run against:
# kube-apiserver, kube-scheduler, kube-controller-manager and kubectl from the
# k8s.io/kubernetes Go module, and etcd from go.etcd.io/etcd/server/v3, at the
# pinned versions below. Nothing is faked: these are the upstream programs.
#
# The binaries are cached outside the clone, keyed by version, so only the first
# run on a machine pays for the build (about 20 minutes on 2 cores):
#   ${SANDMAN_CACHE:-~/.cache/sandman}/k8s/<KUBE_VERSION>-etcd<ETCD_VERSION>/bin
# Prints that bin directory on stdout when done; progress goes to stderr.
#
# Go: the one on PATH if it is new enough, else the Go toolchain module of
# GO_VERSION fetched from the Go module proxy (the same archive `GOTOOLCHAIN` uses).
set -euo pipefail

KUBE_VERSION=v1.35.4        # k8s.io/kubernetes; staging modules are v0.35.4
ETCD_VERSION=v3.6.5         # what k8s.io/kubernetes v1.35.4 requires of etcd's client
GO_VERSION=1.25.5           # k8s.io/kubernetes v1.35 asks for go >= 1.25.0
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller)
PROGRAMS=(kube-apiserver kube-scheduler kube-controller-manager kubectl)

CACHE=${SANDMAN_CACHE:-$HOME/.cache/sandman}
KEY="$KUBE_VERSION-etcd$ETCD_VERSION"
DIR="$CACHE/k8s/$KEY"
BIN="$DIR/bin"

log() { echo "k8s-control-plane: $*" >&2; }

have_all() {
  local p
  for p in "${PROGRAMS[@]}" etcd; do [ -x "$BIN/$p" ] || return 1; done
}

if have_all; then echo "$BIN"; exit 0; fi

# --- a Go toolchain that can build this release -------------------------------------
go_new_enough() {
  local v
  v=$("$1" env GOVERSION 2>/dev/null) || return 1   # go1.26.8
  v=${v#go}
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 25 ]; }
}

GO=$(command -v go || true)
if [ -z "$GO" ] || ! go_new_enough "$GO"; then
  GOROOT_DIR="$CACHE/go/$GO_VERSION"
  if [ ! -x "$GOROOT_DIR/go/bin/go" ]; then
    proxy=${GOPROXY:-https://proxy.golang.org}
    proxy=${proxy%%,*}
    zip="golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-amd64.zip"
    log "fetching the Go $GO_VERSION toolchain from the module proxy"
    tmp=$(mktemp -d)
    curl -fsSL --retry 3 -o "$tmp/go.zip" "$proxy/$zip"
    mkdir -p "$GOROOT_DIR"
    (cd "$tmp" && python3 -c 'import zipfile,sys; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' go.zip x)
    # The module zip holds golang.org/toolchain@.../ with the Go tree inside it.
    mv "$tmp/x/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" "$GOROOT_DIR/go"
    chmod -R u+x "$GOROOT_DIR/go/bin" "$GOROOT_DIR/go/pkg/tool"
    rm -rf "$tmp"
  fi
  GO="$GOROOT_DIR/go/bin/go"
fi
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
log "building with $("$GO" version)"

mkdir -p "$BIN"

# --- kube-apiserver, kube-scheduler, kube-controller-manager, kubectl --------------
# k8s.io/kubernetes points each staging module at ./staging/... and requires v0.0.0,
# so a consumer replaces every one with the release's v0.<minor>.<patch> tag.
build_kubernetes() {
  local src="$DIR/src-kubernetes" staging_version="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$src"
  {
    echo "module sandman.test/k8s-control-plane"
    echo
    echo "go 1.25.0"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    local m
    for m in "${STAGING[@]}"; do echo "	k8s.io/$m => k8s.io/$m $staging_version"; done
    echo ")"
  } >"$src/go.mod"
  {
    echo "//go:build tools"
    echo
    echo "package tools"
    echo
    echo "import ("
    local p
    for p in "${PROGRAMS[@]}"; do echo "	_ \"k8s.io/kubernetes/cmd/$p\""; done
    echo ")"
  } >"$src/tools.go"
  log "resolving k8s.io/kubernetes $KUBE_VERSION"
  (cd "$src" && "$GO" mod tidy >&2)
  local p
  for p in "${PROGRAMS[@]}"; do
    log "building $p"
    (cd "$src" && "$GO" build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
      -o "$BIN/$p.tmp" "k8s.io/kubernetes/cmd/$p" >&2)
    mv "$BIN/$p.tmp" "$BIN/$p"
  done
}

# --- etcd ---------------------------------------------------------------------------
# go.etcd.io/etcd/server/v3 is the etcd program; its go.mod has replace directives, so
# it is built from a module that requires it rather than with `go install @version`.
build_etcd() {
  local src="$DIR/src-etcd"
  mkdir -p "$src"
  printf 'module sandman.test/etcd\n\ngo 1.25.0\n\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$src/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >"$src/tools.go"
  log "resolving etcd $ETCD_VERSION"
  (cd "$src" && "$GO" mod tidy >&2)
  log "building etcd"
  (cd "$src" && "$GO" build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 >&2)
  mv "$BIN/etcd.tmp" "$BIN/etcd"
}

[ -x "$BIN/etcd" ] || build_etcd
have_all || build_kubernetes
have_all || { log "the build finished without every program in $BIN"; exit 1; }
printf '%s %s\n' "$KUBE_VERSION" "$ETCD_VERSION" >"$DIR/VERSIONS"
echo "$BIN"
