#!/usr/bin/env bash
# Runs the KubeClient and PodCache integration tests against a real control
# plane: etcd and kube-apiserver (scripts/k8s-control-plane.sh builds them) on
# loopback, with openssl-made certificates, RBAC on, and a static bearer token.
# Everything lives in one temp dir and is stopped by pid on exit, even on failure.
#
#   tests/k8s/kube_client_test.sh [integration_tests binary] [gtest args...]
#
# The tests read the server from SANDMAN_TEST_KUBE_* (see kube_client_test.cc);
# `--shell` instead of a binary starts the control plane and opens a shell with
# those variables set (for benchmarks and poking around).
# SANDMAN_K8S_BIN names a bin dir with etcd and kube-apiserver (else the build script is asked).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=tests/k8s/control_plane.sh
source "$ROOT/tests/k8s/control_plane.sh"

BINARY=${1:-$ROOT/build/integration_tests}
shift || true

kc_up
if [ "$BINARY" = --shell ]; then
  echo "control plane up in $KC_DIR; exit the shell to stop it" >&2
  bash -i || true
  exit 0
fi
FILTER='--gtest_filter=KubeClient*:PodCache*'
for a in "$@"; do case $a in --gtest_filter=*) FILTER=;; esac; done
"$BINARY" ${FILTER:+"$FILTER"} "$@"
