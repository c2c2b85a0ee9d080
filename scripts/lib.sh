# Shared by the two set-up commands (scripts/run and scripts/test). Sourced.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

PACKAGES=(
  build-essential cmake pkg-config git ca-certificates
  libcurl4-openssl-dev libssh-dev libsqlite3-dev nlohmann-json3-dev libcpp-httplib-dev
  libspdlog-dev libcli11-dev libssl-dev googletest libgtest-dev libgmock-dev
  docker.io debootstrap openssh-client openssh-server curl jq python3 sqlite3 procps
  prometheus prometheus-alertmanager
)

need_root() {
  [ "$(id -u)" = 0 ] || { echo "run this as root (it installs packages and talks to dockerd)" >&2; exit 1; }
}

install_packages() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build DIR [extra cmake args...]
build() {
  local dir=$1; shift
  echo "== building into $dir"
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
  cmake --build "$dir" -j"$(nproc)"
}

# Starts dockerd when nothing answers; sets STARTED_DOCKERD_PID if we did.
STARTED_DOCKERD_PID=
ensure_dockerd() {
  if docker info >/dev/null 2>&1; then return 0; fi
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
