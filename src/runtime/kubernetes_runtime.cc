#include "runtime/kubernetes_runtime.h"

#include <openssl/evp.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "common/time_format.h"
#include "model/image_name.h"
#include "model/sshd_layout.h"

namespace sandman {
namespace {

using json = nlohmann::json;

constexpr const char* kManagedBy = "app.kubernetes.io/managed-by";
constexpr const char* kInstanceLabel = "sandman.io/instance";
constexpr const char* kSessionLabel = "sandman.io/session";
constexpr const char* kUserLabel = "sandman.io/user";
constexpr const char* kComponentLabel = "app.kubernetes.io/component";
// The files the Secret carries; sshd_files writes each of them.
const std::vector<std::string> kSecretFiles = {"sshd_config", "ssh_host_ed25519_key", "authorized_keys", "passwd",
                                               "group", "banner"};

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  out.resize(n < 0 ? 0 : static_cast<size_t>(n));
  return out;
}

json commonLabels(const std::string& instance, const std::string& component) {
  return {{"app.kubernetes.io/name", "sandman"}, {kManagedBy, "sandman"}, {kComponentLabel, component},
          {kInstanceLabel, instance}};
}

// "0/3 nodes are available: 3 Insufficient nvidia.com/mig-1g.10gb. preemption: ..." -> the resource.
// Resource names hold dots, so it ends at ". ", ", " or the end.
std::string insufficientResource(const std::string& message) {
  const std::string marker = "Insufficient ";
  auto at = message.find(marker);
  if (at == std::string::npos) return "";
  std::string r = message.substr(at + marker.size());
  for (const char* stop : {". ", ", "}) {
    if (auto end = r.find(stop); end != std::string::npos) r.resize(end);
  }
  while (!r.empty() && (r.back() == '.' || r.back() == ' ')) r.pop_back();
  return r;
}

}  // namespace

std::string sessionPodName(const std::string& session_id) { return "sess-" + session_id; }
std::string sessionSecretName(const std::string& session_id) { return "sess-" + session_id + "-ssh"; }
std::string gatewaySecretName(const std::string& session_id) { return "sess-" + session_id + "-gateway"; }
// User ids are POSIX names ([a-z_][a-z0-9_-]*); object names may not hold '_'.
std::string workspaceClaimName(const std::string& user_id) {
  std::string name = "ws-" + user_id;
  for (auto& c : name) {
    if (c == '_') c = '-';
  }
  // Two users differing only in '_' vs '-' must not share a claim.
  if (user_id.find('_') != std::string::npos) {
    size_t h = std::hash<std::string>{}(user_id);
    std::ostringstream hex;
    hex << std::hex << (h & 0xffffff);
    name += "-u" + hex.str();
  }
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

std::string sessionPodSelector(const std::string& instance) {
  return std::string(kManagedBy) + "=sandman," + kComponentLabel + "=session," + kInstanceLabel + "=" + instance;
}

json sessionPodJson(const SessionWorkload& w, const KubernetesOptions& o) {
  json labels = commonLabels(o.instance, "session");
  labels[kSessionLabel] = w.session_id;
  labels[kUserLabel] = w.user_id;
  json annotations = {{"sandman.io/user-id", w.user_id}, {"sandman.io/expires-at", formatRfc3339(w.expires_at)}};
  if (!w.gpu_resource.empty()) annotations["sandman.io/gpu-resource"] = w.gpu_resource;
  // The session as the store holds it, so the other replica can adopt it
  // after a failover (recordedSessionFromPod reads these back).
  if (!w.gpu_product.empty()) annotations["sandman.io/gpu-product"] = w.gpu_product;
  annotations["sandman.io/created-at"] = formatRfc3339(w.created_at);
  annotations["sandman.io/image"] = w.image;
  annotations["sandman.io/uid"] = std::to_string(w.uid);
  annotations["sandman.io/gid"] = std::to_string(w.gid);
  if (!w.user_public_key.empty()) annotations["sandman.io/user-public-key"] = w.user_public_key;
  if (!w.host_public_key.empty()) annotations["sandman.io/host-public-key"] = w.host_public_key;

  json env = json::array();
  for (const auto& kv : w.env) {
    auto eq = kv.find('=');
    if (eq == std::string::npos) continue;
    env.push_back({{"name", kv.substr(0, eq)}, {"value", kv.substr(eq + 1)}});
  }
  json requests = json::object(), limits = json::object();
  if (!w.gpu_resource.empty()) {
    // Extended resources cannot be overcommitted: request = limit.
    requests[w.gpu_resource] = "1";
    limits[w.gpu_resource] = "1";
  }
  if (w.memory_bytes > 0) {
    requests["memory"] = std::to_string(w.memory_bytes);
    limits["memory"] = std::to_string(w.memory_bytes);
  }
  if (w.nano_cpus > 0) {
    const std::string milli = std::to_string(w.nano_cpus / 1000000) + "m";
    requests["cpu"] = milli;
    limits["cpu"] = milli;
  }
  const std::string dir = kSshdDirInContainer;
  json container = {
      {"name", "sshd"},
      {"image", w.image},
      {"imagePullPolicy", "IfNotPresent"},
      {"command", json::array({"/usr/sbin/sshd", "-D", "-e", "-f", dir + "/sshd_config"})},
      {"env", env},
      {"workingDir", "/workspace"},
      {"ports", json::array({{{"name", "ssh"}, {"containerPort", kSshdPortInContainer}, {"protocol", "TCP"}}})},
      {"readinessProbe", {{"tcpSocket", {{"port", kSshdPortInContainer}}}, {"periodSeconds", 1}}},
      {"resources", {{"requests", requests}, {"limits", limits}}},
      {"securityContext",
       {{"allowPrivilegeEscalation", false},
        {"capabilities", {{"drop", json::array({"ALL"})}}},
        {"readOnlyRootFilesystem", true},
        {"runAsNonRoot", true}}},
      {"volumeMounts",
       // Under fsGroup the kubelet makes the Secret's files root-owned, group
       // fsGroup, 0440: sshd (the user, not root) reads them and accepts the
       // host key, since it refuses only an open key file owned by itself.
       json::array({{{"name", "ssh-secret"}, {"mountPath", dir}, {"readOnly", true}},
                    {{"name", "ssh-secret"}, {"mountPath", "/etc/passwd"}, {"subPath", "passwd"}, {"readOnly", true}},
                    {{"name", "ssh-secret"}, {"mountPath", "/etc/group"}, {"subPath", "group"}, {"readOnly", true}},
                    {{"name", "run"}, {"mountPath", "/run"}},
                    {{"name", "tmp"}, {"mountPath", "/tmp"}},
                    {{"name", "workspace"}, {"mountPath", "/workspace"}}})},
  };
  json spec = {
      {"restartPolicy", "Never"},
      {"activeDeadlineSeconds", std::max<int64_t>(60, std::chrono::duration_cast<std::chrono::seconds>(
                                                          o.deadline_backstop).count())},
      {"enableServiceLinks", false},
      {"automountServiceAccountToken", false},
      {"serviceAccountName", o.service_account},
      {"terminationGracePeriodSeconds", 5},
      {"securityContext",
       {{"runAsNonRoot", true},
        {"runAsUser", w.uid},
        {"runAsGroup", w.gid},
        {"fsGroup", w.gid},
        {"seccompProfile", {{"type", "RuntimeDefault"}}}}},
      {"containers", json::array({container})},
      {"volumes",
       json::array({{{"name", "ssh-secret"}, {"secret", {{"secretName", sessionSecretName(w.session_id)},
                                                         {"defaultMode", 0440}}}},
                    {{"name", "run"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "16Mi"}}}},
                    {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", "1Gi"}}}},
                    {{"name", "workspace"},
                     {"persistentVolumeClaim", {{"claimName", workspaceClaimName(w.user_id)}}}}})},
  };
  if (!w.gpu_resource.empty()) {
    // GPU nodes carry the GPU operator's taint; only GPU sessions tolerate it.
    spec["tolerations"] = json::array({{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
    if (!w.gpu_product.empty()) spec["nodeSelector"] = {{"nvidia.com/gpu.product", w.gpu_product}};
  }
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", sessionPodName(w.session_id)}, {"namespace", o.ns}, {"labels", labels},
                        {"annotations", annotations}}},
          {"spec", spec}};
}

json sessionSecretJson(const SessionWorkload& w, const KubernetesOptions& o,
                       const std::vector<std::pair<std::string, std::string>>& files, const std::string& owner_uid) {
  json data = json::object();
  for (const auto& [name, content] : files) data[name] = base64(content);
  json labels = commonLabels(o.instance, "session");
  labels[kSessionLabel] = w.session_id;
  labels[kUserLabel] = w.user_id;
  // Owned by the pod, so deleting the pod deletes it (garbage collection);
  // blockOwnerDeletion false needs no finalizer rights.
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", sessionSecretName(w.session_id)},
            {"namespace", o.ns},
            {"labels", labels},
            {"ownerReferences", json::array({{{"apiVersion", "v1"},
                                              {"kind", "Pod"},
                                              {"name", sessionPodName(w.session_id)},
                                              {"uid", owner_uid},
                                              {"blockOwnerDeletion", false}}})}}},
          {"type", "Opaque"},
          {"immutable", true},
          {"data", data}};
}

json gatewaySecretJson(const SessionWorkload& w, const KubernetesOptions& o, const std::string& owner_uid) {
  json labels = commonLabels(o.instance, "session");
  labels[kSessionLabel] = w.session_id;
  labels[kUserLabel] = w.user_id;
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata",
           {{"name", gatewaySecretName(w.session_id)},
            {"namespace", o.ns},
            {"labels", labels},
            {"ownerReferences", json::array({{{"apiVersion", "v1"},
                                              {"kind", "Pod"},
                                              {"name", sessionPodName(w.session_id)},
                                              {"uid", owner_uid},
                                              {"blockOwnerDeletion", false}}})}}},
          {"type", "Opaque"},
          {"immutable", true},
          {"data", {{"gateway_ed25519_key", base64(w.gateway_private_key)}}}};
}

std::optional<RecordedSession> recordedSessionFromPod(const PodView& pod) {
  auto label = [&](const char* k) {
    auto it = pod.labels.find(k);
    return it == pod.labels.end() ? std::string() : it->second;
  };
  auto note = [&](const char* k) {
    auto it = pod.annotations.find(k);
    return it == pod.annotations.end() ? std::string() : it->second;
  };
  RecordedSession r;
  r.session_id = label(kSessionLabel);
  r.user_id = label(kUserLabel);
  r.workload_id = pod.name;
  r.image = note("sandman.io/image");
  r.user_public_key = note("sandman.io/user-public-key");
  r.host_public_key = note("sandman.io/host-public-key");
  r.gpu_resource = note("sandman.io/gpu-resource");
  r.gpu_product = note("sandman.io/gpu-product");
  auto created = parseRfc3339(note("sandman.io/created-at"));
  auto expires = parseRfc3339(note("sandman.io/expires-at"));
  try {
    r.uid = std::stoi(note("sandman.io/uid"));
    r.gid = std::stoi(note("sandman.io/gid"));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (r.session_id.empty() || r.user_id.empty() || r.user_public_key.empty() || r.host_public_key.empty() ||
      !created || !expires) {
    return std::nullopt;
  }
  r.created_at = *created;
  r.expires_at = *expires;
  if (std::string uuid = note("sandman.io/gpu-uuid"); !uuid.empty()) r.gpu_uuid = uuid;
  r.running = workloadFromPod(pod).running;
  return r;
}

json workspaceClaimJson(const std::string& user_id, const KubernetesOptions& o) {
  json labels = commonLabels(o.instance, "workspace");
  labels[kUserLabel] = user_id;
  json spec = {{"accessModes", json::array({"ReadWriteOnce"})},
               {"resources", {{"requests", {{"storage", o.workspace_size}}}}}};
  if (!o.storage_class.empty()) spec["storageClassName"] = o.storage_class;
  return {{"apiVersion", "v1"},
          {"kind", "PersistentVolumeClaim"},
          {"metadata", {{"name", workspaceClaimName(user_id)}, {"namespace", o.ns}, {"labels", labels},
                        {"annotations", {{"sandman.io/user-id", user_id}}}}},
          {"spec", spec}};
}

void excludeNodes(json& pod, const std::vector<std::string>& nodes, const std::string& why) {
  if (nodes.empty()) return;
  // matchFields on the name, not a label: nothing on the node has to change,
  // so no right to write nodes is needed to keep sessions off one.
  json term = {{"matchFields", json::array({{{"key", "metadata.name"}, {"operator", "NotIn"}, {"values", nodes}}})}};
  pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] =
      json::array({term});
  std::string list;
  for (const auto& n : nodes) list += (list.empty() ? "" : ",") + n;
  pod["metadata"]["annotations"]["sandman.io/refused-nodes"] = list;
  if (!why.empty()) pod["metadata"]["annotations"]["sandman.io/refused-why"] = why;
}

WorkloadInfo workloadFromPod(const PodView& pod) {
  WorkloadInfo w;
  w.id = pod.name;
  if (auto it = pod.labels.find(kSessionLabel); it != pod.labels.end()) w.session_id = it->second;
  w.state = pod.phase.empty() ? "Unknown" : pod.phase;
  if (!pod.reason.empty()) w.state += " (" + pod.reason + ")";
  if (pod.deleting) w.state += ", deleting";
  w.exit_code = pod.exit_code;
  w.running = !pod.deleting && (pod.phase == "Pending" || pod.phase == "Running");
  if (pod.ready && !pod.pod_ip.empty() && w.running) w.endpoint = WorkloadEndpoint{pod.pod_ip, kSshdPortInContainer};

  if (pod.deleting) {
    w.problem = "the session pod is being deleted";
  } else if (pod.phase == "Failed" || pod.phase == "Succeeded") {
    std::string why = pod.reason.empty() ? pod.terminated_reason : pod.reason;
    std::string detail = pod.message.empty() ? pod.terminated_message : pod.message;
    w.problem = "the session pod ended (" + pod.phase + (why.empty() ? "" : ": " + why) +
                (pod.exit_code >= 0 ? ", exit code " + std::to_string(pod.exit_code) : "") + ")" +
                (detail.empty() ? "" : ": " + detail);
  } else if (!pod.unschedulable_message.empty()) {
    // Only what the cluster lacks is final: a claim still being bound, or a
    // node not ready yet, passes on its own and is waited for.
    const std::string& why = pod.unschedulable_message;
    const std::string resource = insufficientResource(why);
    if (!resource.empty()) {
      w.problem = "no node has a free " + resource + " (scheduler: " + why + ")";
      w.problem_kind = ErrorKind::kConflict;
    } else if (why.find("node affinity/selector") != std::string::npos) {
      auto refused = pod.annotations.find("sandman.io/refused-nodes");
      auto refused_why = pod.annotations.find("sandman.io/refused-why");
      std::string held;
      if (refused_why != pod.annotations.end()) held = refused_why->second;
      else if (refused != pod.annotations.end()) held = refused->second;
      w.problem = "no node has the GPU model asked for" +
                  (held.empty() ? std::string() : " outside the nodes Sandman holds (" + held + ")") +
                  " (scheduler: " + why + ")";
      w.problem_kind = ErrorKind::kConflict;
    } else if (why.find("untolerated taint") != std::string::npos) {
      // E.g. a CPU session on a cluster of GPU nodes, all tainted nvidia.com/gpu.
      w.problem = "no node will take this session (scheduler: " + why + ")";
      w.problem_kind = ErrorKind::kConflict;
    } else {
      w.waiting_for = "not scheduled yet: " + why;
    }
  } else if (pod.waiting_reason == "ErrImagePull" || pod.waiting_reason == "ImagePullBackOff" ||
             pod.waiting_reason == "InvalidImageName") {
    w.problem = "the session image cannot be pulled (" + pod.waiting_reason + ")" +
                (pod.waiting_message.empty() ? "" : ": " + pod.waiting_message);
    w.problem_kind = ErrorKind::kInvalid;
  } else if (!pod.waiting_reason.empty() && pod.waiting_reason != "ContainerCreating") {
    if (pod.waiting_reason == "CreateContainerConfigError" || pod.waiting_reason == "CreateContainerError" ||
             pod.waiting_reason == "RunContainerError") {
      w.problem = "the session container cannot start (" + pod.waiting_reason + ")" +
                  (pod.waiting_message.empty() ? "" : ": " + pod.waiting_message);
    } else {
      w.waiting_for = pod.waiting_reason + (pod.waiting_message.empty() ? "" : ": " + pod.waiting_message);
    }
  } else if (pod.phase == "Pending" && pod.node_name.empty()) {
    w.waiting_for = "not scheduled yet";
  } else if (!pod.ready) {
    w.waiting_for = "its sshd is not ready yet (" + w.state + ")";
  }
  if (auto it = pod.annotations.find("sandman.io/gpu-uuid"); it != pod.annotations.end()) w.gpu_uuid = it->second;
  return w;
}

KubernetesRuntime::KubernetesRuntime(std::unique_ptr<KubeClient> client, KubernetesOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  cache_ = std::make_unique<PodCache>(*client_, options_.ns, sessionPodSelector(options_.instance));
}

KubernetesRuntime::~KubernetesRuntime() {
  if (cache_) cache_->stop();
}

Status KubernetesRuntime::start(Millis sync_timeout) {
  cache_->start();
  if (cache_->waitSynced(sync_timeout)) return {};
  auto stats = cache_->stats();
  return unavailable("cannot list session pods in namespace " + options_.ns + " within " +
                     std::to_string(sync_timeout.count() / 1000) + " s" +
                     (stats.last_error.empty() ? "" : ": " + stats.last_error));
}

std::string KubernetesRuntime::nsPath(const std::string& resource) const {
  return "/api/v1/namespaces/" + options_.ns + "/" + resource;
}

Status KubernetesRuntime::ping() {
  auto r = client_->get(nsPath("pods") + "?limit=1&labelSelector=" + urlEncode(sessionPodSelector(options_.instance)));
  if (!r.ok()) return r.error();
  if (r->status == 200) return {};
  if (r->status == 401 || r->status == 403) {
    return unavailable("the Kubernetes API refuses Sandman's identity (" + r->message() +
                       "); check the ServiceAccount and the Role from deploy/kubernetes");
  }
  return unavailable("Kubernetes API: " + r->message());
}

Status KubernetesRuntime::ensureWorkspaceClaim(const std::string& user_id) {
  const std::string path = nsPath("persistentvolumeclaims");
  auto got = client_->get(path + "/" + workspaceClaimName(user_id));
  if (!got.ok()) return got.error();
  if (got->status == 200) return {};
  if (got->status != 404) return unavailable("cannot read workspace claim: " + got->message());
  auto made = client_->create(path, workspaceClaimJson(user_id, options_));
  if (!made.ok()) return made.error();
  if (made->status == 201 || made->status == 200 || made->status == 409) return {};
  return unavailable("cannot create workspace claim " + workspaceClaimName(user_id) + ": " + made->message());
}

Result<std::string> KubernetesRuntime::createPod(const SessionWorkload& w) {
  json body = sessionPodJson(w, options_);
  if (node_refusals_) {
    std::vector<std::string> names;
    std::string why;
    for (const auto& [node, reason] : node_refusals_()) {
      names.push_back(node);
      why += (why.empty() ? "" : "; ") + node + ": " + reason;
    }
    excludeNodes(body, names, why);
  }
  auto made = client_->create(nsPath("pods"), body);
  if (!made.ok()) return made.error();
  const json* pod = &made->body;
  KubeResponse existing;
  if (made->status == 409) {
    // A retry: the pod of this session exists already; use it.
    auto got = client_->get(nsPath("pods") + "/" + sessionPodName(w.session_id));
    if (!got.ok()) return got.error();
    if (got->status != 200) return unavailable("cannot read session pod: " + got->message());
    existing = std::move(got).value();
    pod = &existing.body;
  } else if (made->status == 403 || made->status == 422 || made->status == 400) {
    // Admission (Pod Security, quota) or validation said no: the request, not the cluster, must change.
    return invalid("Kubernetes refused the session pod: " + made->message());
  } else if (made->status != 201 && made->status != 200) {
    return unavailable("cannot create session pod: " + made->message());
  }
  std::string uid = pod->is_object() ? pod->value("/metadata/uid"_json_pointer, std::string()) : "";
  if (uid.empty()) return internal("Kubernetes returned a pod without a uid");
  return uid;
}

Status KubernetesRuntime::createSecret(const SessionWorkload& w, const std::string& pod_uid) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& name : kSecretFiles) {
    std::ifstream in(w.sshd_files_dir + "/" + name, std::ios::binary);
    if (!in) {
      if (name == "banner") continue;  // only when there is one
      return internal("session file " + name + " missing in " + w.sshd_files_dir);
    }
    std::ostringstream text;
    text << in.rdbuf();
    files.emplace_back(name, text.str());
  }
  auto made = client_->create(nsPath("secrets"), sessionSecretJson(w, options_, files, pod_uid));
  if (!made.ok()) return made.error();
  if (made->status == 201 || made->status == 200 || made->status == 409) return {};
  return unavailable("cannot create the session's ssh secret: " + made->message());
}

Status KubernetesRuntime::createGatewaySecret(const SessionWorkload& w, const std::string& pod_uid) {
  if (w.gateway_private_key.empty()) return {};
  auto made = client_->create(nsPath("secrets"), gatewaySecretJson(w, options_, pod_uid));
  if (!made.ok()) return made.error();
  if (made->status == 201 || made->status == 200 || made->status == 409) return {};
  return unavailable("cannot create the session's gateway secret: " + made->message());
}

Result<std::string> KubernetesRuntime::launch(const SessionWorkload& w) {
  if (auto st = checkImageAllowed(w.image, options_.allowed_images); !st.ok()) return st.error();
  if (auto st = ensureWorkspaceClaim(w.user_id); !st.ok()) return st.error();
  auto uid = createPod(w);
  if (!uid.ok()) return uid.error();
  // After the pod, owned by it (the kubelet retries the mount until it exists).
  // The gateway's key first: a pod with its sshd Secret but no gateway key
  // could not be adopted by the other replica, and would be removed by it.
  for (auto make : {&KubernetesRuntime::createGatewaySecret, &KubernetesRuntime::createSecret}) {
    if (auto st = (this->*make)(w, uid.value()); !st.ok()) {
      (void)stop(sessionPodName(w.session_id));
      return st.error();
    }
  }
  logInfo("session pod created", {{"session", w.session_id}, {"pod", sessionPodName(w.session_id)},
                                  {"gpu", w.gpu_resource.empty() ? "none" : w.gpu_resource}});
  return sessionPodName(w.session_id);
}

Result<WorkloadInfo> KubernetesRuntime::inspect(const std::string& id) {
  auto withModel = [this](const PodView& pod) {
    WorkloadInfo w = workloadFromPod(pod);
    if (node_model_ && !pod.node_name.empty()) w.gpu_model = node_model_(pod.node_name);
    return w;
  };
  if (auto pod = cache_->get(id)) return withModel(*pod);
  // Not in the cache yet (just created) or gone: ask the API server.
  auto got = client_->get(nsPath("pods") + "/" + id);
  if (!got.ok()) return got.error();
  if (got->status == 404) return notFound("pod " + id + " not found");
  if (got->status != 200) return unavailable("cannot read pod " + id + ": " + got->message());
  return withModel(podViewFromJson(got->body));
}

Result<WorkloadEndpoint> KubernetesRuntime::endpoint(const std::string& id, int) {
  auto pod = cache_->get(id);
  if (!pod) return notFound("no session pod " + id + " in the watch cache");
  WorkloadInfo w = workloadFromPod(*pod);
  if (!w.endpoint) return unavailable("session pod " + id + " is not ready (" + w.state + ")");
  return *w.endpoint;
}

Status KubernetesRuntime::stop(const std::string& id) {
  auto r = client_->remove(nsPath("pods") + "/" + id, 1);
  if (!r.ok()) return r.error();
  if (r->status != 200 && r->status != 202 && r->status != 404) {
    return unavailable("cannot delete pod " + id + ": " + r->message());
  }
  // Garbage collection would delete the Secret with the pod; deleting it
  // here does not wait for the collector, and works where none runs.
  for (const std::string& secret : {id + "-ssh", id + "-gateway"}) {
    auto s = client_->remove(nsPath("secrets") + "/" + secret);
    if (s.ok() && s->status != 200 && s->status != 202 && s->status != 404) {
      logWarn("cannot delete session secret; garbage collection will", {{"secret", secret}, {"error", s->message()}});
    }
  }
  return {};
}

Result<std::vector<RecordedSession>> KubernetesRuntime::recordedSessions() {
  if (!cache_->stats().synced) return unavailable("the session pod cache has not listed pods yet");
  std::vector<RecordedSession> out;
  for (const auto& pod : cache_->list()) {
    if (pod.deleting) continue;
    if (auto r = recordedSessionFromPod(pod)) out.push_back(std::move(*r));
  }
  return out;
}

Result<std::string> KubernetesRuntime::gatewayKey(const std::string& session_id) {
  const std::string name = gatewaySecretName(session_id);
  auto got = client_->get(nsPath("secrets") + "/" + name);
  if (!got.ok()) return got.error();
  if (got->status == 404) return notFound("secret " + name + " not found");
  if (got->status != 200) return unavailable("cannot read secret " + name + ": " + got->message());
  const std::string b64 = got->body.value("/data/gateway_ed25519_key"_json_pointer, std::string());
  std::string key(3 * b64.size() / 4 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                          reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (b64.empty() || n < 0) return unavailable("secret " + name + " holds no gateway key");
  key.resize(static_cast<size_t>(n));
  // EVP_DecodeBlock counts the padding's bytes as zeros.
  for (size_t pad = b64.size(); pad > 0 && b64[pad - 1] == '='; --pad) key.pop_back();
  return key;
}

Status KubernetesRuntime::recordExpiry(const std::string& workload_id, TimePoint expires_at) {
  auto r = client_->patchMerge(nsPath("pods") + "/" + workload_id,
                               {{"metadata", {{"annotations", {{"sandman.io/expires-at", formatRfc3339(expires_at)}}}}}});
  if (!r.ok()) return r.error();
  if (r->status == 404) return notFound("pod " + workload_id + " not found");
  if (r->status != 200) return unavailable("cannot record the expiry on pod " + workload_id + ": " + r->message());
  return {};
}

Result<std::vector<WorkloadInfo>> KubernetesRuntime::listOurs() {
  if (!cache_->stats().synced) return unavailable("the session pod cache has not listed pods yet");
  std::vector<WorkloadInfo> out;
  for (const auto& pod : cache_->list()) out.push_back(workloadFromPod(pod));
  return out;
}

}  // namespace sandman
