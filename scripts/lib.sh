# Shared by the two set-up commands (scripts/run and scripts/test). Sourced.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The one list of Debian packages: everything a build, a test, a bench or CI
# calls on the host. A tool missing here passes only where it was there by
# accident, so add to this list, not to a test's own install hint.
PACKAGES=(
  # build: g++ tree, the clang sanitizer/libFuzzer tree, and the compiler cache
  build-essential cmake pkg-config git ca-certificates ccache
  clang libclang-rt-14-dev llvm  # libFuzzer + sanitizer runtimes; llvm-symbolizer for their stacks
  # C++ libraries
  libcurl4-openssl-dev libssh-dev libsqlite3-dev nlohmann-json3-dev libcpp-httplib-dev
  libboost1.81-dev libspdlog-dev libcli11-dev libssl-dev googletest libgtest-dev libgmock-dev
  # Docker engine and the session image (debootstrap), dropped when Docker's own packages are there
  docker.io debootstrap
  # what the e2e suites, integration tests and benches run on the host
  openssh-client openssh-server rsync curl jq python3 sqlite3 procps mawk iproute2 iptables
  openssl btrfs-progs e2fsprogs util-linux  # TLS test certificates; small file systems for the disk tests
  prometheus prometheus-alertmanager
  # SSH client/audit interoperability, HTTP benchmark floor
  ssh-audit putty-tools python3-paramiko python3-asyncssh wrk nginx-light
  # the API against its OpenAPI document: jsonschema for tests/e2e/openapi_check.py (every route's
  # answer) and tests/api (property-based, with hypothesis)
  python3-hypothesis python3-jsonschema
  # the web dashboard: bundled with Node.js at build time, tested in headless Chromium
  nodejs npm chromium
)

# Tests and benches run Debian's interpreter, never one earlier on PATH (pyenv, venvs):
# python3-paramiko and python3-asyncssh are installed for it only.
PY=/usr/bin/python3

# apt waits this long for another apt/dpkg run to let go of its lock instead of failing.
APT_LOCK_WAIT=600

need_root() {
  [ "$(id -u)" = 0 ] || { echo "run this as root (it installs packages and talks to dockerd)" >&2; exit 1; }
}

pkg_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# A Docker engine that did not come from Debian's docker.io: Docker's own packages
# (docker-ce, containerd.io conflicts with Debian's containerd), moby, or a dockerd
# installed some other way. docker.io must not be installed over any of them.
foreign_docker_engine() {
  local p
  for p in docker-ce docker-ee moby-engine containerd.io; do
    pkg_installed "$p" && { echo "$p"; return 0; }
  done
  pkg_installed docker.io && return 1
  if command -v dockerd >/dev/null 2>&1; then echo "$(command -v dockerd)"; return 0; fi
  return 1
}

# apt-get update takes the lists lock, which DPkg::Lock::Timeout does not cover: retry
# while another run holds it, up to APT_LOCK_WAIT seconds; any other failure is final.
apt_update() {
  local end=$((SECONDS + APT_LOCK_WAIT)) err
  err=$(mktemp)
  until apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" update -qq 2>"$err"; do
    if grep -qiE 'could not get lock|unable to lock' "$err" && [ "$SECONDS" -lt "$end" ]; then
      echo "== waiting for another apt run to release its lock"
      sleep 5
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return 1
  done
  rm -f "$err"
}

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout="$APT_LOCK_WAIT" \
    install -y -qq --no-install-recommends "$@" >/dev/null
}

nginx_running() { pgrep -x nginx >/dev/null 2>&1; }

# nginx-light is only a benchmark floor (bench/ runs its own nginx on a loopback port):
# its package must not leave a service running or bound to port 80. Its maintainer
# scripts ask policy-rc.d before starting a service, so one that refuses (101) is in
# place for this install only; should the service start anyway (an init that ignores
# policy-rc.d), it is stopped and disabled, but only when this install started it.
install_nginx_floor() {
  local policy=/usr/sbin/policy-rc.d own_policy=0 was_running=0
  nginx_running && was_running=1
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# sandman set-up: no service starts during this install\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=1
  fi
  local rc=0
  apt_install nginx-light || rc=$?
  [ "$own_policy" = 1 ] && rm -f "$policy"
  [ "$rc" = 0 ] || return "$rc"
  if [ "$was_running" = 0 ]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now nginx >/dev/null 2>&1 || true
    else
      update-rc.d nginx disable >/dev/null 2>&1 || true
      if nginx_running; then service nginx stop >/dev/null 2>&1 || true; fi
    fi
  fi
}

install_packages() {
  local want=("${PACKAGES[@]}") engine
  if engine=$(foreign_docker_engine); then
    echo "== Docker engine found ($engine): using it, not installing docker.io"
    local p kept=()
    for p in "${want[@]}"; do [ "$p" = docker.io ] || kept+=("$p"); done
    want=("${kept[@]}")
  fi
  local missing=() p nginx=0 missing_note=
  for p in "${want[@]}"; do
    pkg_installed "$p" && continue
    # A Node.js from another source (its nodejs package bundles npm and conflicts with Debian's).
    [ "$p" = npm ] && command -v npm >/dev/null 2>&1 && continue
    if [ "$p" = nginx-light ]; then nginx=1; else missing+=("$p"); fi
  done
  [ ${#missing[@]} -eq 0 ] && [ "$nginx" = 0 ] && return 0
  [ "$nginx" = 0 ] || missing_note=" nginx-light"
  echo "== installing: ${missing[*]}${missing_note:-}"
  apt_update
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  [ "$nginx" = 0 ] || install_nginx_floor
}

# The dashboard's npm packages (web/node_modules), exactly as web/package-lock.json
# pins them. A copy is kept outside the clone keyed by the lock file's hash, so a
# fresh checkout (CI) copies it instead of asking the registry again.
web_deps() {
  local key cache stamp=$ROOT/web/node_modules/.sandman-lock
  key=$(sha256sum "$ROOT/web/package-lock.json" | cut -c1-16)
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && return 0
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/sandman/web-node_modules-$key
  rm -rf "$ROOT/web/node_modules"
  if [ -d "$cache" ]; then
    echo "== web/node_modules from the cache ($key)"
    cp -a "$cache" "$ROOT/web/node_modules"
  else
    echo "== npm ci in web/"
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error)
    mkdir -p "$(dirname "$cache")"
    rm -rf "$cache.tmp"
    cp -a "$ROOT/web/node_modules" "$cache.tmp" && mv "$cache.tmp" "$cache"
  fi
  echo "$key" >"$stamp"
}

# Compiles go through ccache (its cache stays in ~/.cache/ccache, outside the clone).
# Paths under the clone are hashed relative to it, so a fresh clone elsewhere on the
# same machine (a CI checkout) hits the cache too.
CCACHE_LAUNCHER=()
if command -v ccache >/dev/null 2>&1; then
  CCACHE_LAUNCHER=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  export CCACHE_BASEDIR=$ROOT
fi

# build DIR [extra cmake args...] [-- targets...]
build() {
  local dir=$1; shift
  local args=() targets=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then shift; targets=("$@"); break; fi
    args+=("$1"); shift
  done
  echo "== building into $dir${targets[*]:+ (${targets[*]})}"
  local t0=$SECONDS
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "${CCACHE_LAUNCHER[@]}" "${args[@]}" >/dev/null
  if [ ${#targets[@]} -gt 0 ]; then
    cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"
  else
    cmake --build "$dir" -j"$(nproc)"
  fi
  echo "== built $dir in $((SECONDS - t0)) s"
}

# Starts dockerd when nothing answers; sets STARTED_DOCKERD_PID if we did.
STARTED_DOCKERD_PID=
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
  # Under systemd the engine's own unit starts it (docker.io or docker-ce alike).
  if [ -d /run/systemd/system ] && systemctl start docker >/dev/null 2>&1; then
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  fi
  echo "== starting dockerd"
  setsid dockerd >/var/log/sandman-dockerd.log 2>&1 </dev/null &
  STARTED_DOCKERD_PID=$!
  for _ in $(seq 120); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || break
    sleep 0.5
  done
  echo "dockerd did not start; its log:" >&2
  tail -20 /var/log/sandman-dockerd.log >&2
  exit 1
}

stop_dockerd_if_started() {
  [ -n "$STARTED_DOCKERD_PID" ] || return 0
  kill "$STARTED_DOCKERD_PID" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || return 0; sleep 0.5; done
}
