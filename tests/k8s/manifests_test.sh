#!/usr/bin/env bash
# k8s: the shipped manifests (deploy/kubernetes) against a real API server. They apply with
# server-side strict field validation and no warning (Pod Security included), and a server
# dry-run of the same is clean; sandman-sessions enforces "restricted" (a privileged pod is
# refused, a compliant one admitted); with a bound token for ServiceAccount sandman, the shipped
# Roles allow exactly what the daemon needs and nothing of the rest (pods/exec, other
# namespaces' secrets, node writes but label patches, namespaces, PVC deletion, other leases).
# Usage: manifests_test.sh [path-to-sandman]   (the binary is not used here)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
k8s_test_init
DEPLOY=$K8S_REPO/deploy/kubernetes

k8s_up "$K8S_TMP/k8s" || fail "control plane did not start"
note "control plane up in ${K8S_UP_SECONDS}s"

note "kubectl apply --validate=strict -k deploy/kubernetes"
OUT=$(k8s_kubectl apply --validate=strict -k "$DEPLOY" 2>&1) || fail "apply failed: $OUT"
echo "$OUT" | sed 's/^/   | /'
[[ "$OUT" == *[Ww]arning* ]] && fail "apply printed a warning"
ok "applied, no warnings"
for obj in namespace/sandman namespace/sandman-sessions serviceaccount/sandman:sandman \
  serviceaccount/sandman-session:sandman-sessions role/sandman:sandman-sessions \
  role/sandman-leader-election:sandman clusterrole/sandman-nodes clusterrole/sandman-node-labels networkpolicy/sandman-sessions:sandman-sessions \
  deployment/sandman:sandman service/sandman-gateway:sandman service/sandman-api:sandman \
  namespace/sandman-agents daemonset/sandman-agent:sandman-agents \
  serviceaccount/sandman-agent:sandman-agents role/sandman-agents:sandman-agents \
  networkpolicy/sandman-agents:sandman-agents; do
  name=${obj%%:*} ns=${obj#*:}
  if [ "$ns" = "$obj" ]; then k8s_kubectl get "$name" >/dev/null 2>&1 || fail "$name missing"
  else k8s_kubectl get "$name" -n "$ns" >/dev/null 2>&1 || fail "$name missing in $ns"; fi
done
ok "every object exists"

note "kubectl apply --dry-run=server --validate=strict -k deploy/kubernetes (again, now unchanged)"
OUT=$(k8s_kubectl apply --dry-run=server --validate=strict -k "$DEPLOY" 2>&1) || fail "dry run failed: $OUT"
[[ "$OUT" == *[Ww]arning* ]] && fail "dry run printed a warning: $OUT"
assert_eq "$(grep -vc '(server dry run)$' <<<"$OUT")" 0 "lines not ending '(server dry run)'"
ok "$(wc -l <<<"$OUT") objects, clean"

assert_eq "$(k8s_kubectl get deployment sandman -n sandman -o jsonpath='{.spec.replicas}')" 2 "Deployment replicas (leader + follower)"
assert_contains "$(k8s_kubectl get deployment sandman -n sandman -o jsonpath='{.spec.template.spec.containers[0].args}')" \
  "--leader-elect=true" "the daemon's args"
note "the daemon's pod template passes restricted admission: its ReplicaSet made a pod"
has_pod() { [ -n "$(k8s_kubectl get pods -n sandman -l app.kubernetes.io/component=gateway -o name 2>/dev/null)" ]; }
k8s_wait "the sandman Deployment's pod" 60 has_pod
ok "$(k8s_kubectl get pods -n sandman -o name)"

note "the agent DaemonSet lands on GPU nodes only, admitted in sandman-agents (hostPID: Pod Security privileged)"
# What the GPU operator installs: the nvidia RuntimeClass the agent's pods name.
k8s_kubectl apply -f - >/dev/null <<EOY || fail "RuntimeClass nvidia"
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: nvidia}
handler: nvidia
EOY
k8s_fake_nodes --node name=gpu-a,fixture=a100-40gb-mig-empty.json >/dev/null || fail "fake_nodes.py"
k8s_kubectl create -f - >/dev/null <<EOY || fail "CPU node"
apiVersion: v1
kind: Node
metadata: {name: cpu-a, labels: {kubernetes.io/hostname: cpu-a}}
EOY
agent_nodes() { k8s_kubectl get pods -n sandman-agents -l app.kubernetes.io/component=agent \
  -o jsonpath='{.items[*].spec.nodeName}' 2>/dev/null; }
has_agent() { [ "$(agent_nodes)" = gpu-a ]; }
k8s_wait "an agent pod on gpu-a" 60 has_agent
sleep 2
assert_eq "$(agent_nodes)" gpu-a "nodes with an agent pod (none on cpu-a)"
assert_eq "$(k8s_kubectl get pods -n sandman-agents -o jsonpath='{.items[0].metadata.annotations.sandman\.io/agent-port}')" \
  9410 "the agent pod's port annotation"
k8s_kubectl delete node cpu-a >/dev/null

note "RBAC: a bound token for ServiceAccount sandman/sandman"
k8s_wait_default_sa sandman-sessions || fail "default SA"
TOKEN=$(k8s_token sandman sandman 10m) || fail "k8s_token"
SAKC=$K8S_TMP/sandman.kubeconfig
k8s_token_kubeconfig "$SAKC" "$TOKEN"
as_sandman() { "$K8S_BIN/kubectl" --kubeconfig "$SAKC" "$@"; }
assert_eq "$(as_sandman auth whoami -o jsonpath='{.status.userInfo.username}')" \
  system:serviceaccount:sandman:sandman "the token's user"
# can EXPECT VERB RESOURCE[/NAME][#SUBRESOURCE] [NS]
can() {
  local want=$1 verb=$2 res=$3 ns=${4:-} got args=()
  if [[ "$res" == *"#"* ]]; then args=("${res%%#*}" --subresource="${res#*#}"); else args=("$res"); fi
  [ -n "$ns" ] && args+=(-n "$ns")
  got=$(as_sandman auth can-i "$verb" "${args[@]}" 2>/dev/null)
  [ "$got" = "$want" ] || fail "can-i $verb $res${ns:+ -n $ns}: got '$got', expected '$want'"
  echo "   ok: $verb $res${ns:+ in $ns}: $got"
}
for v in get list watch create delete patch; do can yes "$v" pods sandman-sessions; done
for v in get list watch create delete; do can yes "$v" secrets sandman-sessions; done
for v in get list watch create; do can yes "$v" persistentvolumeclaims sandman-sessions; done
for v in list watch; do can yes "$v" events sandman-sessions; done
can yes create leases.coordination.k8s.io sandman
can yes get leases.coordination.k8s.io/sandman-leader sandman
can yes update leases.coordination.k8s.io/sandman-leader sandman
for v in get list watch; do can yes "$v" nodes; done
for v in get list watch; do can yes "$v" pods sandman-agents; done
can no create pods sandman-agents
can no delete pods sandman-agents
can no get secrets sandman-agents
can no create daemonsets.apps sandman-agents
can no create 'pods#exec' sandman-sessions
can no get 'pods#exec' sandman-sessions
can no create 'pods#attach' sandman-sessions
can no create 'pods#portforward' sandman-sessions
can no get 'pods#log' sandman-sessions
can no update 'pods#status' sandman-sessions
can no update pods sandman-sessions
can no update secrets sandman-sessions
can no delete persistentvolumeclaims sandman-sessions
can no get secrets kube-system
can no list secrets sandman
can no create pods sandman
can no create pods default
can yes patch nodes
can no update nodes
can no delete nodes
can no create nodes
can no patch 'nodes#status'
can no update 'nodes#status'
can no create 'pods#eviction' sandman-sessions
can no create namespaces
can no delete namespaces
can no create networkpolicies.networking.k8s.io sandman-sessions
can no update leases.coordination.k8s.io/other-lease sandman
can no get leases.coordination.k8s.io/sandman-leader sandman-sessions
can no create 'serviceaccounts#token' sandman

note "Pod Security 'restricted' in sandman-sessions, seen by the daemon's identity"
OUT=$(as_sandman run priv -n sandman-sessions --image=sandman-workspace:latest --privileged --restart=Never 2>&1) &&
  fail "a privileged pod was admitted: $OUT"
assert_contains "$OUT" 'violates PodSecurity "restricted:latest"' "privileged pod refused"
as_sandman apply -n sandman-sessions -f - >/dev/null <<EOY || fail "the restricted-compliant pod was refused"
apiVersion: v1
kind: Pod
metadata:
  name: compliant
  labels: {app.kubernetes.io/managed-by: sandman, app.kubernetes.io/component: session}
spec:
  serviceAccountName: sandman-session
  automountServiceAccountToken: false
  enableServiceLinks: false
  restartPolicy: Never
  securityContext:
    runAsNonRoot: true
    runAsUser: 1000
    runAsGroup: 1000
    fsGroup: 1000
    seccompProfile: {type: RuntimeDefault}
  containers:
  - name: workspace
    image: sandman-workspace:latest
    command: [sleep, infinity]
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      capabilities: {drop: [ALL]}
EOY
ok "compliant pod admitted (created with the sandman token)"

note "a Secret owned by the pod, made with the sandman token (OwnerReferencesPermissionEnforcement is on)"
UID_C=$(as_sandman get pod compliant -n sandman-sessions -o jsonpath='{.metadata.uid}')
owned_secret() { # NAME BLOCK
  as_sandman apply -n sandman-sessions -f - 2>&1 <<EOY
apiVersion: v1
kind: Secret
metadata:
  name: $1
  ownerReferences: [{apiVersion: v1, kind: Pod, name: compliant, uid: "$UID_C", blockOwnerDeletion: $2}]
immutable: true
stringData: {authorized_keys: "ssh-ed25519 AAAAtest"}
EOY
}
OUT=$(owned_secret compliant-ssh false) || fail "owned Secret (blockOwnerDeletion: false) refused: $OUT"
ok "blockOwnerDeletion: false needs no more than the Role"
OUT=$(owned_secret compliant-ssh2 true) && fail "blockOwnerDeletion: true was allowed: $OUT"
assert_contains "$OUT" "cannot set blockOwnerDeletion" "blockOwnerDeletion: true refused"
as_sandman delete pod compliant -n sandman-sessions --wait=false >/dev/null || fail "delete as sandman"
ok "and deleted with it"

note "k8s_apply_manifests and k8s_sandman_token_file (how daemon tests run sandman on the host)"
k8s_apply_manifests || fail "k8s_apply_manifests"
assert_eq "$(k8s_kubectl get deployment sandman -n sandman -o jsonpath='{.spec.replicas}')" 0 "Deployment replicas"
k8s_sandman_token_file "$K8S_TMP/sandman.token" 15m || fail "k8s_sandman_token_file"
assert_eq "$(stat -c %a "$K8S_TMP/sandman.token")" 600 "token file mode"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$K8S_CA" -H "Authorization: Bearer $(cat "$K8S_TMP/sandman.token")" \
  "$K8S_SERVER/api/v1/namespaces/sandman-sessions/pods?limit=1")
assert_eq "$CODE" 200 "list session pods with the token file"
