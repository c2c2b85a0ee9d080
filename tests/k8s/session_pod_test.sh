#!/usr/bin/env bash
# k8s: a session-shaped pod running the real OpenSSH sshd of the session image, under Pod Security
# "restricted", through the fake kubelet: the Secret (created after the pod, owned by it) holds
# sshd_config, the host key, authorized_keys, passwd and group; passwd/group are mounted with
# subPath; /run and /tmp are emptyDirs; the workspace is a PVC. The host logs in with the user's
# key, checks the host key strictly against the Secret's, and finds uid, groups, a read-only root
# and a writable workspace. With fsGroup the kubelet makes the key root:<fsGroup> 0440, which
# sshd accepts: it only refuses an open key file owned by its own uid.
# Usage: session_pod_test.sh [path-to-sandman]   (the binary is not used here)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
k8s_test_init
for t in docker ssh ssh-keygen; do command -v "$t" >/dev/null 2>&1 || fail "required tool '$t' is not installed"; done
docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
NS=sandman-sessions
k8s_fake_nodes --node name=gpu-h100,fixture=mixed-host.json,gpus=2,mig=all-1g.10gb >/dev/null || fail "fake_nodes.py"
k8s_kubectl create namespace "$NS" >/dev/null
k8s_kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null
k8s_wait_default_sa "$NS" || fail "default SA"
k8s_start_kubelet gpu-h100

KEYS=$K8S_TMP/keys
mkdir -p "$KEYS" && chmod 700 "$KEYS"
ssh-keygen -q -t ed25519 -N '' -C host -f "$KEYS/host" && ssh-keygen -q -t ed25519 -N '' -C alice -f "$KEYS/alice" ||
  fail "ssh-keygen"

note "pod sess-1 (restricted, sshd as uid 1000, 1 x nvidia.com/mig-1g.10gb), then its Secret"
k8s_kubectl apply -n "$NS" -f - >/dev/null <<EOF2 || fail "PVC"
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ws-alice}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
EOF2
k8s_kubectl apply -n "$NS" -f - >/dev/null <<EOF2 || fail "pod refused"
apiVersion: v1
kind: Pod
metadata:
  name: sess-1
  labels: {app.kubernetes.io/managed-by: sandman, app.kubernetes.io/component: session}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  activeDeadlineSeconds: 3600
  nodeSelector: {nvidia.com/gpu.product: NVIDIA-H100-80GB-HBM3}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: sshd
    image: $IMAGE
    command: [/usr/sbin/sshd, -D, -e, -f, /etc/sandman/sshd_config]
    ports: [{name: ssh, containerPort: 2222}]
    readinessProbe: {tcpSocket: {port: ssh}, periodSeconds: 1}
    resources:
      requests: {nvidia.com/mig-1g.10gb: 1}
      limits: {nvidia.com/mig-1g.10gb: 1}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
    - {name: ssh, mountPath: /etc/sandman, readOnly: true}
    - {name: ssh, mountPath: /etc/passwd, subPath: passwd, readOnly: true}
    - {name: ssh, mountPath: /etc/group, subPath: group, readOnly: true}
    - {name: run, mountPath: /run}
    - {name: tmp, mountPath: /tmp}
    - {name: workspace, mountPath: /workspace}
  volumes:
  - name: ssh
    secret: {secretName: sess-1-ssh, defaultMode: 0400}
  - {name: run, emptyDir: {medium: Memory}}
  - {name: tmp, emptyDir: {}}
  - {name: workspace, persistentVolumeClaim: {claimName: ws-alice}}
EOF2
POD_UID=$(k8s_kubectl get pod sess-1 -n "$NS" -o jsonpath='{.metadata.uid}')
SSHD_CONFIG='Port 2222
HostKey /etc/sandman/ssh_host_ed25519_key
AuthorizedKeysFile /etc/sandman/authorized_keys
AllowUsers alice
PidFile none
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
PrintMotd no'
k8s_kubectl create secret generic sess-1-ssh -n "$NS" --dry-run=client -o json \
  --from-literal=sshd_config="$SSHD_CONFIG" \
  --from-file=ssh_host_ed25519_key="$KEYS/host" \
  --from-file=authorized_keys="$KEYS/alice.pub" \
  --from-literal=passwd=$'root:x:0:0:root:/root:/usr/sbin/nologin\nalice:x:1000:1000:alice:/workspace:/bin/bash\n' \
  --from-literal=group=$'root:x:0:\nalice:x:1000:\n' |
  jq --arg uid "$POD_UID" '.immutable = true | .metadata.ownerReferences =
    [{apiVersion: "v1", kind: "Pod", name: "sess-1", uid: $uid, blockOwnerDeletion: false}]' |
  k8s_kubectl apply -n "$NS" -f - >/dev/null || fail "secret"

pod_ready() { [ "$(k8s_kubectl get pod sess-1 -n "$NS" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ]; }
k8s_wait "sess-1 Ready" 60 pod_ready
IP=$(k8s_kubectl get pod sess-1 -n "$NS" -o jsonpath='{.status.podIP}')
ok "sess-1 Ready at $IP"

note "ssh alice@$IP:2222, host key checked against the Secret's"
echo "[$IP]:2222 $(cut -d' ' -f1,2 "$KEYS/host.pub")" >"$KEYS/known_hosts"
sshp() {
  ssh -i "$KEYS/alice" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes \
    -o UserKnownHostsFile="$KEYS/known_hosts" -o ConnectTimeout=5 -p 2222 "alice@$IP" "$@"
}
OUT=$(sshp 'id -un; id -u; id -G; stat -c "%a %U:%G" /etc/sandman/..data/ssh_host_ed25519_key; touch / 2>/dev/null && echo rootrw || echo rootro; echo hi >/workspace/hello && cat /workspace/hello') ||
  fail "ssh into the pod failed: $OUT"
mapfile -t L <<<"$OUT"
assert_eq "${L[0]}" alice "user"
assert_eq "${L[1]}" 1000 "uid"
assert_eq "${L[2]}" 1000 "groups"
assert_eq "${L[3]}" "440 root:alice" "host key file as the kubelet made it (fsGroup)"
assert_eq "${L[4]}" rootro "root filesystem"
assert_eq "${L[5]}" hi "workspace written and read"
WS=$(find "$K8S_TMP/kubelet/pvc/$NS/ws-alice" -name hello)
[ -n "$WS" ] || fail "the file is not in the PVC's directory on the host"
ok "the file is in the PVC's directory on the host"

note "deleting sess-1: pod, container and (by garbage collection) Secret go; the workspace stays"
k8s_kubectl delete pod sess-1 -n "$NS" --grace-period=1 --wait=false >/dev/null
gone() { ! k8s_kubectl get "$1" -n "$NS" >/dev/null 2>&1; }
k8s_wait "pod gone" 30 gone pod/sess-1
k8s_wait "secret gone" 60 gone secret/sess-1-ssh
[ -f "$WS" ] || fail "the workspace file went with the pod"
ok "pod and Secret gone, workspace kept"
