#!/usr/bin/env bash
# k8s: the test cluster end to end, before any Sandman code: fake GPU nodes and the fake kubelet
# under the real scheduler, controller-manager and API server. A restricted session-shaped pod
# (secret created after it and owned by it, emptyDir, PVC, one nvidia.com/mig-1g.10gb) is placed
# by the scheduler, runs in Docker, turns Running+Ready with an IP the host reaches and
# NVIDIA_VISIBLE_DEVICES set; a pod beyond capacity stays Pending "Insufficient
# nvidia.com/mig-1g.10gb"; missing images, deadlines and exit codes are reported as a kubelet
# does; deleting a pod removes its container and object, and garbage collection its Secret;
# the workspace outlives the pod; the kubelet recovers from a provoked 410 and an API server restart.
# Usage: kubelet_test.sh [path-to-sandman]   (the binary is not used here)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
k8s_test_init
command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || fail "a reachable Docker engine is required"
IMAGE=${SANDMAN_K8S_IMAGE:-sandman-workspace:latest}
docker image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is missing: build it with images/workspace/build.sh"

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"
NS=sessions
PRODUCT=NVIDIA-H100-80GB-HBM3

note "fake nodes: an H100 (all-balanced: 2 x 1g.10gb, 2g.20gb, 3g.40gb) and an RTX 4090"
k8s_fake_nodes --node name=gpu-h100,fixture=mixed-host.json,gpus=2,mig=all-balanced \
  --node name=gpu-rtx,fixture=mixed-host.json,gpus=3 >/dev/null || fail "fake_nodes.py failed"
assert_eq "$(k8s_kubectl get node gpu-h100 -o jsonpath='{.status.allocatable.nvidia\.com/mig-1g\.10gb}')" 2 \
  "gpu-h100 allocatable nvidia.com/mig-1g.10gb"
assert_eq "$(k8s_kubectl get node gpu-h100 -o jsonpath='{.metadata.labels.nvidia\.com/gpu\.product}')" "$PRODUCT" \
  "gpu-h100 label nvidia.com/gpu.product"
assert_eq "$(k8s_kubectl get node gpu-rtx -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" 1 \
  "gpu-rtx allocatable nvidia.com/gpu"
assert_eq "$(k8s_kubectl get node gpu-h100 -o jsonpath='{.spec.taints[*].key}')" nvidia.com/gpu "gpu-h100 taints"

k8s_kubectl create namespace "$NS" >/dev/null || fail "namespace"
k8s_kubectl label namespace "$NS" pod-security.kubernetes.io/enforce=restricted >/dev/null || fail "label"
k8s_wait_default_sa "$NS" || fail "no default ServiceAccount in $NS"
k8s_start_kubelet gpu-h100,gpu-rtx
note "fake kubelet serves gpu-h100,gpu-rtx on Docker network $K8S_NETWORK"

# The workload: a TCP server on 2222 answering what the pod sees (a stand-in for sshd).
read -r -d '' SERVER <<'PY'
import json, os, socket
name = os.environ["POD_NAME"]
with open("/workspace/" + name, "w") as f:
    f.write("written by " + name)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 2222))
s.listen(8)
def root_ro():
    try:
        open("/probe", "w")
        return False
    except OSError:
        return True
while True:
    c, _ = s.accept()
    st = os.stat("/etc/sandman/authorized_keys")
    status = open("/proc/self/status").read()
    info = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()),
            "nvidia": os.environ.get("NVIDIA_VISIBLE_DEVICES", ""),
            "keys": open("/etc/sandman/authorized_keys").read(),
            "key_mode": oct(st.st_mode & 0o777), "key_gid": st.st_gid,
            "workspace": sorted(os.listdir("/workspace")), "root_ro": root_ro(),
            "tmp_writable": os.access("/tmp", os.W_OK),
            "cap_eff": status.split("CapEff:")[1].split()[0],
            "no_new_privs": "NoNewPrivs:\t1" in status}
    c.sendall(json.dumps(info).encode())
    c.close()
PY

# session_pod NAME RESOURCE [IMAGE] [EXTRA SPEC YAML] [COMMAND JSON]: a restricted, session-shaped pod.
session_pod() {
  local name=$1 res=$2 image=${3:-$IMAGE} extra=${4:-} cmd=${5:-}
  [ -n "$cmd" ] || cmd=$(jq -cn --arg s "$SERVER" '["python3","-c",$s]')
  k8s_kubectl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels: {app.kubernetes.io/managed-by: sandman, app.kubernetes.io/component: session}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  enableServiceLinks: false
  nodeSelector: {nvidia.com/gpu.product: $PRODUCT}
  tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
$extra
  containers:
  - name: workspace
    image: $image
    command: $cmd
    env: [{name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}]
    ports: [{name: ssh, containerPort: 2222}]
    readinessProbe: {tcpSocket: {port: ssh}, periodSeconds: 1}
    resources:
      requests: {cpu: 100m, memory: 128Mi, $res: 1}
      limits: {memory: 512Mi, $res: 1}
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
    volumeMounts:
    - {name: ssh, mountPath: /etc/sandman, readOnly: true}
    - {name: tmp, mountPath: /tmp}
    - {name: workspace, mountPath: /workspace}
  volumes:
  - name: ssh
    secret: {secretName: $name-ssh, defaultMode: 0400}
  - name: tmp
    emptyDir: {}
  - name: workspace
    persistentVolumeClaim: {claimName: ws-alice}
EOF
}

# session_secret POD: the pod's immutable Secret, owned by the pod (made after it, as Sandman does).
session_secret() {
  local uid
  uid=$(k8s_kubectl get pod "$1" -n "$NS" -o jsonpath='{.metadata.uid}')
  k8s_kubectl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: $1-ssh
  ownerReferences: [{apiVersion: v1, kind: Pod, name: $1, uid: "$uid", blockOwnerDeletion: false}]
immutable: true
stringData:
  authorized_keys: "ssh-ed25519 AAAAtest $1"
  sshd_config: "Port 2222"
EOF
}

pod_field() { k8s_kubectl get pod "$2" -n "$NS" -o jsonpath="$1" 2>/dev/null; }
pod_ready() { [ "$(pod_field '{.status.conditions[?(@.type=="Ready")].status}' "$1")" = True ]; }
pod_phase_is() { [ "$(pod_field '{.status.phase}' "$2")" = "$1" ]; }
pod_gone() { ! k8s_kubectl get pod "$1" -n "$NS" >/dev/null 2>&1; }
ask() { "$K8S_PY" -c 'import socket,sys; s=socket.create_connection((sys.argv[1],2222),5); print(s.recv(65536).decode())' "$1"; }

note "PVC ws-alice is provisioned by the fake kubelet's StorageClass and bound by the PV controller"
k8s_kubectl apply -n "$NS" -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: ws-alice}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
EOF
k8s_wait "PVC ws-alice Bound" 30 bash -c "[ \"\$($K8S_BIN/kubectl --kubeconfig $K8S_KUBECONFIG get pvc ws-alice -n $NS -o jsonpath='{.status.phase}')\" = Bound ]"
ok "ws-alice Bound to $(k8s_kubectl get pvc ws-alice -n "$NS" -o jsonpath='{.spec.volumeName}')"

note "a restricted pod with a secret (made after it), an emptyDir, a PVC and nvidia.com/mig-1g.10gb"
T0=$(date +%s.%N)
session_pod s1 nvidia.com/mig-1g.10gb
sleep 1
assert_eq "$(pod_field '{.status.containerStatuses[0].state.waiting.reason}' s1)" ContainerCreating \
  "s1 waits for its Secret"
session_secret s1
k8s_wait "s1 Ready" 60 pod_ready s1
T1=$(date +%s.%N)
ok "s1 Ready $(awk -v a="$T0" -v b="$T1" 'BEGIN{printf "%.1f", b-a}')s after create"
assert_eq "$(pod_field '{.spec.nodeName}' s1)" gpu-h100 "s1 placed by the scheduler on"
assert_eq "$(pod_field '{.status.phase}' s1)" Running "s1 phase"
IP1=$(pod_field '{.status.podIP}' s1)
assert_match "$IP1" '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' "s1 podIP"
INFO=$(ask "$IP1") || fail "s1's port 2222 at $IP1 does not answer from the host"
ok "s1 answers at $IP1:2222"
NV1=$(jq -r .nvidia <<<"$INFO")
assert_match "$NV1" '^MIG-[0-9a-f-]{36}$' "NVIDIA_VISIBLE_DEVICES in s1"
assert_contains "$(k8s_kubectl get node gpu-h100 -o jsonpath='{.metadata.annotations.sandman\.test/devices}')" "$NV1" \
  "gpu-h100's device pool"
assert_eq "$(jq -r .uid <<<"$INFO"):$(jq -r .gid <<<"$INFO")" 1000:1000 "s1 uid:gid"
assert_eq "$(jq -r .keys <<<"$INFO")" "ssh-ed25519 AAAAtest s1" "authorized_keys from the Secret"
assert_eq "$(jq -r '.key_mode + " gid " + (.key_gid|tostring)' <<<"$INFO")" "0o440 gid 1000" \
  "secret file mode 0400 with fsGroup (the kubelet adds group read)"
assert_eq "$(jq -r .root_ro <<<"$INFO")" true "root filesystem read-only"
assert_eq "$(jq -r .tmp_writable <<<"$INFO")" true "emptyDir /tmp writable"
assert_eq "$(jq -c .workspace <<<"$INFO")" '["s1"]' "s1 wrote into the PVC"
assert_eq "$(jq -r .cap_eff <<<"$INFO")" 0000000000000000 "effective capabilities"
assert_eq "$(jq -r .no_new_privs <<<"$INFO")" true "no_new_privs"

note "a second 1g.10gb pod gets the other slice; a third stays Pending: Insufficient"
session_pod s2 nvidia.com/mig-1g.10gb
session_secret s2
k8s_wait "s2 Ready" 60 pod_ready s2
NV2=$(jq -r .nvidia <<<"$(ask "$(pod_field '{.status.podIP}' s2)")")
[ "$NV2" != "$NV1" ] && [[ "$NV2" == MIG-* ]] || fail "s2 got '$NV2' (s1 has $NV1)"
ok "s2 has its own slice $NV2"
session_pod s3 nvidia.com/mig-1g.10gb
session_secret s3
unschedulable() { [ "$(pod_field '{.status.conditions[?(@.type=="PodScheduled")].reason}' s3)" = Unschedulable ]; }
k8s_wait "s3 Unschedulable" 30 unschedulable
assert_eq "$(pod_field '{.status.phase}' s3)" Pending "s3 phase"
assert_eq "$(pod_field '{.status.conditions[?(@.type=="PodScheduled")].status}' s3)" False "s3 PodScheduled"
assert_contains "$(pod_field '{.status.conditions[?(@.type=="PodScheduled")].message}' s3)" \
  "Insufficient nvidia.com/mig-1g.10gb" "s3's scheduling message"

note "an image that is not present: ErrImagePull, then ImagePullBackOff (nothing is pulled)"
session_pod noimage nvidia.com/mig-2g.20gb sandman-no-such-image:latest
session_secret noimage
waiting_is() { [ "$(pod_field '{.status.containerStatuses[0].state.waiting.reason}' "$2")" = "$1" ]; }
k8s_wait "ErrImagePull" 30 waiting_is ErrImagePull noimage
assert_contains "$(pod_field '{.status.containerStatuses[0].state.waiting.message}' noimage)" \
  'Failed to pull image "sandman-no-such-image:latest"' "ErrImagePull message"
k8s_wait "ImagePullBackOff" 30 waiting_is ImagePullBackOff noimage
assert_eq "$(pod_field '{.status.containerStatuses[0].state.waiting.message}' noimage)" \
  'Back-off pulling image "sandman-no-such-image:latest"' "ImagePullBackOff message"
assert_contains "$(k8s_kubectl get events -n "$NS" --field-selector involvedObject.name=noimage -o jsonpath='{.items[*].reason}')" \
  BackOff "the pod's events"
k8s_kubectl delete pod noimage -n "$NS" --wait=false >/dev/null

note "activeDeadlineSeconds: killed, Failed/DeadlineExceeded; a container exiting 3: Failed, exit code 3"
session_pod deadline nvidia.com/mig-3g.40gb "$IMAGE" "  activeDeadlineSeconds: 4"
session_secret deadline
k8s_wait "deadline Failed" 30 pod_phase_is Failed deadline
assert_eq "$(pod_field '{.status.reason}' deadline)" DeadlineExceeded "deadline pod reason"
k8s_kubectl delete pod deadline -n "$NS" --wait=false >/dev/null
session_pod exit3 nvidia.com/mig-3g.40gb "$IMAGE" "" '["sh","-c","exit 3"]'
session_secret exit3
k8s_wait "exit3 Failed" 60 pod_phase_is Failed exit3
assert_eq "$(pod_field '{.status.containerStatuses[0].state.terminated.exitCode}' exit3)" 3 "exit3 exit code"

note "deleting s1: its container and object go, GC deletes its Secret, s3 takes the freed slice"
CID1=$(pod_field '{.status.containerStatuses[0].containerID}' s1)
CID1=${CID1#docker://}
k8s_kubectl get secret s1-ssh -n "$NS" >/dev/null || fail "s1-ssh missing before the delete"
k8s_kubectl delete pod s1 -n "$NS" --grace-period=1 --wait=false >/dev/null
k8s_wait "s1 gone" 30 pod_gone s1
ok "pod s1 deleted (the kubelet finished the deletion)"
docker container inspect "$CID1" >/dev/null 2>&1 && fail "s1's container $CID1 still exists"
ok "s1's container removed"
secret_gone() { ! k8s_kubectl get secret "$1" -n "$NS" >/dev/null 2>&1; }
k8s_wait "GC of s1-ssh" 60 secret_gone s1-ssh
ok "garbage collector deleted s1-ssh"
k8s_wait "s3 Ready" 60 pod_ready s3
INFO3=$(ask "$(pod_field '{.status.podIP}' s3)")
assert_eq "$(jq -r .nvidia <<<"$INFO3")" "$NV1" "s3 got s1's freed slice"
assert_contains "$(jq -c .workspace <<<"$INFO3")" '"s1"' "the workspace (s1's file outlived s1)"

note "410 Gone: etcd compacted under a stopped API server; an old watch gets 410, the kubelet relists"
RV=$(k8s_curl "/api/v1/namespaces/$NS/pods" | jq -r .metadata.resourceVersion)
RELISTS0=$(grep -c 'expired (410\|answered 410' "$K8S_KUBELET_LOG")
k8s_provoke_gone || fail "k8s_provoke_gone"
OUT=$(k8s_curl "/api/v1/namespaces/$NS/pods?watch=1&resourceVersion=$RV&timeoutSeconds=2")
assert_eq "$(head -n1 <<<"$OUT" | jq -r '.type + " " + (.object.code|tostring)')" "ERROR 410" \
  "a watch from resourceVersion $RV"
relisted() { [ "$(grep -c 'expired (410\|answered 410' "$K8S_KUBELET_LOG")" -gt "$RELISTS0" ]; }
k8s_wait "kubelet relist after 410" 60 relisted
ok "the fake kubelet saw 410 and relisted"
session_pod s4 nvidia.com/mig-3g.40gb
session_secret s4
k8s_wait "s4 Ready (after the relist)" 60 pod_ready s4

note "API server restart: s2 and s4 keep running, the kubelet's watch resumes (a deletion is seen)"
k8s_restart_apiserver || fail "kube-apiserver did not come back"
ask "$(pod_field '{.status.podIP}' s2)" >/dev/null || fail "s2 stopped answering across the restart"
ok "s2 still answers"
k8s_kubectl delete pod s4 -n "$NS" --grace-period=1 --wait=false >/dev/null
k8s_wait "s4 gone" 60 pod_gone s4
ok "s4's deletion finished after the restart"

note "SIGTERM to the kubelet removes its containers and network"
k8s_stop_kubelet
assert_eq "$(docker ps -aq --filter "label=sandman.test.kubelet=$K8S_NETWORK" | wc -l)" 0 "containers left"
docker network inspect "$K8S_NETWORK" >/dev/null 2>&1 && fail "network $K8S_NETWORK left"
ok "network $K8S_NETWORK removed"
