#include "runtime/docker_runtime.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <utility>

#include "model/sshd_layout.h"

namespace sandman {
namespace {

using json = nlohmann::json;

constexpr const char* kBuildHint = "build it with images/workspace/build.sh";

// Percent-encodes everything but RFC 3986 unreserved characters and `keep`.
std::string urlEncode(const std::string& s, const std::string& keep = "") {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string::npos) {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

bool is2xx(const HttpResponse& r) { return r.status >= 200 && r.status < 300; }

// Docker's error bodies are {"message": "..."}; fall back to the raw body.
std::string dockerMessage(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  auto it = j.is_object() ? j.find("message") : j.end();
  if (it != j.end() && it->is_string()) return it->get<std::string>();
  return r.body.empty() ? "(empty response)" : r.body;
}

Error dockerError(const HttpResponse& r, const std::string& what) {
  return internal("Docker " + what + " failed (HTTP " + std::to_string(r.status) +
                  "): " + dockerMessage(r));
}

std::map<std::string, std::string> labelsOf(const json& j) {
  std::map<std::string, std::string> labels;
  if (!j.is_object()) return labels;
  for (const auto& [k, v] : j.items()) {
    if (v.is_string()) labels[k] = v.get<std::string>();
  }
  return labels;
}

std::string stripSlash(std::string name) {
  if (!name.empty() && name.front() == '/') name.erase(0, 1);
  return name;
}

// nlohmann's accessors throw on a wrong type, so shapes are checked here once.
Result<json> parseJson(const HttpResponse& r, const std::string& what, bool want_array = false) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  bool shape_ok = want_array ? j.is_array() : j.is_object();
  if (!shape_ok) {
    return internal("Docker " + what + ": unexpected response: " + r.body.substr(0, 200));
  }
  return j;
}

// obj[key] if obj is an object holding key, else a JSON null.
json member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? json() : *it;
}

std::string stringMember(const json& obj, const char* key) {
  json v = member(obj, key);
  return v.is_string() ? v.get<std::string>() : "";
}

Result<json> bindsJson(const std::vector<BindMount>& binds) {
  json out = json::array();
  for (const auto& b : binds) {
    if (b.host_path.find(':') != std::string::npos ||
        b.container_path.find(':') != std::string::npos) {
      return invalid("bind mount paths must not contain ':': " + b.host_path + " -> " +
                     b.container_path);
    }
    out.push_back(b.host_path + ":" + b.container_path + (b.read_only ? ":ro" : ""));
  }
  return out;
}

void addPortJson(const ContainerSpec& spec, json& body, json& host) {
  if (spec.container_port <= 0) return;
  std::string port = std::to_string(spec.container_port) + "/tcp";
  body["ExposedPorts"] = {{port, json::object()}};
  // HostPort "" lets Docker pick one.
  std::string host_port = spec.publish_host_port > 0 ? std::to_string(spec.publish_host_port) : "";
  host["PortBindings"] = {{port, json::array({{{"HostIp", spec.publish_host_ip},
                                               {"HostPort", host_port}}})}};
}

json hostConfigJson(const ContainerSpec& spec, const DockerOptions& options, json binds) {
  if (!options.init_path.empty()) {
    binds.push_back(options.init_path + ":" + kInitPathInContainer + ":ro");
  }
  json host = {
      {"Binds", std::move(binds)},
      {"CapDrop", json::array({"ALL"})},
      {"SecurityOpt", json::array({"no-new-privileges"})},
      {"Init", false},
      {"RestartPolicy", {{"Name", "no"}}},
  };
  if (!spec.network.empty()) host["NetworkMode"] = spec.network;
  if (spec.memory_bytes > 0) host["Memory"] = spec.memory_bytes;
  if (spec.nano_cpus > 0) host["NanoCpus"] = spec.nano_cpus;
  if (spec.pids_limit > 0) host["PidsLimit"] = spec.pids_limit;
  if (!options.log_max_size.empty()) {
    // A session's output must not fill the disk that Docker keeps logs on.
    host["LogConfig"] = {{"Type", "json-file"},
                         {"Config", {{"max-size", options.log_max_size},
                                     {"max-file", std::to_string(std::max(1, options.log_max_files))}}}};
  }
  if (options.writable_layer_bytes > 0) {
    host["StorageOpt"] = {{"size", std::to_string(options.writable_layer_bytes)}};
  }
  if (!spec.gpu_device_ids.empty()) {
    // Count must stay 0 when DeviceIDs are given (moby refuses both).
    host["DeviceRequests"] = json::array({{{"Driver", "nvidia"}, {"Count", 0},
                                           {"DeviceIDs", spec.gpu_device_ids},
                                           {"Capabilities", json::array({json::array({"gpu"})})},
                                           {"Options", json::object()}}});
  }
  return host;
}

// The list endpoint gives no exit code of its own, only "Exited (143) 2 minutes ago".
int exitCodeFromStatus(const std::string& status) {
  const std::string prefix = "Exited (";
  if (status.rfind(prefix, 0) != 0) return -1;
  int code = 0;
  size_t i = prefix.size();
  if (i >= status.size() || !std::isdigit(static_cast<unsigned char>(status[i]))) return -1;
  for (; i < status.size() && std::isdigit(static_cast<unsigned char>(status[i])) && code < 100000; ++i) {
    code = code * 10 + (status[i] - '0');
  }
  return i < status.size() && status[i] == ')' ? code : -1;
}

bool isPortConflict(const std::string& message) {
  return message.find("port is already allocated") != std::string::npos ||
         message.find("address already in use") != std::string::npos ||
         message.find("Bind for") != std::string::npos;
}

}  // namespace

ContainerSpec sessionContainerSpec(const SessionWorkload& w, const DockerOptions& options) {
  ContainerSpec spec;
  spec.name = "sandman-" + w.user_id + "-" + w.session_id.substr(2, 8);
  spec.image = w.image;
  spec.user = std::to_string(w.uid) + ":" + std::to_string(w.gid);
  spec.hostname = "sandman-" + w.user_id;
  spec.working_dir = "/workspace";
  spec.cmd = {"/usr/sbin/sshd", "-D", "-e", "-f", std::string(kSshdDirInContainer) + "/sshd_config"};
  spec.env = w.env;
  spec.labels = {{kDockerSessionLabel, w.session_id}, {"sandman.user", w.user_id},
                 {kDockerInstanceLabel, options.instance}};
  spec.binds = {{w.sshd_files_dir, kSshdDirInContainer, true},
                {w.sshd_files_dir + "/passwd", "/etc/passwd", true},
                {w.sshd_files_dir + "/group", "/etc/group", true},
                {w.workspace_dir, "/workspace", false}};
  spec.network = options.network;
  spec.publish_host_ip = options.publish_ip;
  spec.publish_host_port = w.direct_port;
  spec.container_port = kSshdPortInContainer;
  spec.memory_bytes = w.memory_bytes;
  spec.nano_cpus = w.nano_cpus;
  spec.pids_limit = w.pids_limit;
  if (w.gpu_uuid) {
    // Always in the environment, so an operator can see the slice even where
    // the nvidia runtime is absent (then only the variable is set: "env-only").
    spec.env.push_back("NVIDIA_VISIBLE_DEVICES=" + *w.gpu_uuid);
    spec.env.push_back("NVIDIA_DRIVER_CAPABILITIES=compute,utility");
    spec.labels["sandman.gpu"] = *w.gpu_uuid;
    if (options.gpu_device_requests) spec.gpu_device_ids.push_back(*w.gpu_uuid);
  }
  return spec;
}

Result<std::string> dockerCreateBody(const ContainerSpec& spec, const DockerOptions& options) {
  auto binds = bindsJson(spec.binds);
  if (!binds.ok()) return binds.error();
  if (options.init_path.find(':') != std::string::npos) {
    return invalid("the sandman-init path must not contain ':': " + options.init_path);
  }
  json body = {{"Image", spec.image}, {"Labels", spec.labels}};
  if (!spec.user.empty()) body["User"] = spec.user;
  if (!spec.hostname.empty()) body["Hostname"] = spec.hostname;
  if (!spec.working_dir.empty()) body["WorkingDir"] = spec.working_dir;
  // Never the image's ENTRYPOINT: what runs in a session is ours to say.
  // An empty list (not an absent key) is what makes Docker drop the image's.
  body["Entrypoint"] = options.init_path.empty() ? json::array()
                                                  : json::array({kInitPathInContainer, "--"});
  if (!spec.cmd.empty()) body["Cmd"] = spec.cmd;
  if (!spec.env.empty()) body["Env"] = spec.env;
  json host = hostConfigJson(spec, options, std::move(binds).value());
  addPortJson(spec, body, host);
  body["HostConfig"] = std::move(host);
  return body.dump();
}

Result<std::unique_ptr<DockerRuntime>> DockerRuntime::open(const std::string& docker_host,
                                                          DockerOptions options) {
  const std::string scheme = "unix://";
  if (docker_host.rfind(scheme, 0) != 0) {
    return invalid("unsupported Docker host '" + docker_host +
                   "': only unix sockets are supported, e.g. unix:///var/run/docker.sock");
  }
  std::string path = docker_host.substr(scheme.size());
  if (path.empty() || path.front() != '/') {
    return invalid("Docker host '" + docker_host +
                   "' must name an absolute socket path, e.g. unix:///var/run/docker.sock");
  }
  return std::unique_ptr<DockerRuntime>(new DockerRuntime(docker_host, path, std::move(options)));
}

DockerRuntime::DockerRuntime(std::string docker_host, std::string socket_path, DockerOptions options)
    : docker_host_(std::move(docker_host)), http_(std::move(socket_path)), options_(std::move(options)) {}

Result<HttpResponse> DockerRuntime::call(const std::string& method, const std::string& path,
                                         const std::string& json_body) const {
  HttpRequest req;
  req.method = method;
  req.url = "http://docker" + path;
  req.body = json_body;
  if (!json_body.empty()) req.headers.push_back("Content-Type: application/json");
  auto resp = http_.send(req);
  if (!resp.ok()) {
    return unavailable("cannot reach Docker at " + docker_host_ +
                       ": is dockerd running? (" + resp.error().message + ")");
  }
  return resp;
}

Status DockerRuntime::ping() {
  auto r = call("GET", "/_ping");
  if (!r.ok()) return r.error();
  if (r->status != 200) return dockerError(*r, "ping");
  return {};
}

Result<bool> DockerRuntime::imageExists(const std::string& image) {
  auto r = call("GET", "/images/" + urlEncode(image, "/:@") + "/json");
  if (!r.ok()) return r.error();
  if (r->status == 200) return true;
  if (r->status == 404) return false;
  return dockerError(*r, "image inspect of " + image);
}

Result<bool> DockerRuntime::hasNvidiaRuntime() {
  auto r = call("GET", "/info");
  if (!r.ok()) return r.error();
  if (r->status != 200) return dockerError(*r, "info");
  auto j = parseJson(*r, "info");
  if (!j.ok()) return j.error();
  json runtimes = member(*j, "Runtimes");
  return runtimes.is_object() && runtimes.contains("nvidia");
}

Status DockerRuntime::checkNetworkIsolated(const HttpResponse& inspect,
                                           const std::string& name) const {
  auto j = parseJson(inspect, "network inspect");
  if (!j.ok()) return j.error();
  json opts = member(*j, "Options");
  bool isolated = opts.is_object() &&
                  stringMember(opts, "com.docker.network.bridge.enable_icc") == "false";
  if (isolated) return {};
  // Sessions must not reach each other; never reuse a network that allows it.
  return conflict("Docker network '" + name +
                  "' exists but allows inter-container traffic; remove it (docker network rm " +
                  name + ") and Sandman will recreate it");
}

Status DockerRuntime::ensureNetwork(const std::string& name) {
  auto r = call("GET", "/networks/" + urlEncode(name));
  if (!r.ok()) return r.error();
  if (r->status == 200) return checkNetworkIsolated(*r, name);
  if (r->status != 404) return dockerError(*r, "network inspect of " + name);

  json body = {{"Name", name},
               {"Driver", "bridge"},
               {"CheckDuplicate", true},
               {"Options", {{"com.docker.network.bridge.enable_icc", "false"}}}};
  r = call("POST", "/networks/create", body.dump());
  if (!r.ok()) return r.error();
  if (is2xx(*r) || r->status == 409) return {};  // 409: created concurrently
  return dockerError(*r, "network create of " + name);
}

Result<std::string> DockerRuntime::networkInterface(const std::string& name) {
  auto r = call("GET", "/networks/" + urlEncode(name));
  if (!r.ok()) return r.error();
  if (r->status == 404) return notFound("no Docker network " + name);
  if (r->status != 200) return dockerError(*r, "network inspect of " + name);
  auto j = parseJson(*r, "network inspect");
  if (!j.ok()) return j.error();
  std::string named = stringMember(member(*j, "Options"), "com.docker.network.bridge.name");
  if (!named.empty()) return named;
  std::string id = stringMember(*j, "Id");
  if (id.size() < 12) return internal("network " + name + " has no usable id");
  return "br-" + id.substr(0, 12);  // Docker's own naming for user-defined bridges
}

Status DockerRuntime::removeNetwork(const std::string& name) {
  auto r = call("DELETE", "/networks/" + urlEncode(name));
  if (!r.ok()) return r.error();
  if (is2xx(*r) || r->status == 404) return {};
  if (r->status == 403 || r->status == 409) {
    return conflict("cannot remove Docker network " + name + ": " + dockerMessage(*r));
  }
  return dockerError(*r, "network remove of " + name);
}

Result<std::string> DockerRuntime::createContainer(const ContainerSpec& spec) {
  if (auto st = checkImageAllowed(spec.image, options_.allowed_images); !st.ok()) return st.error();
  auto body = dockerCreateBody(spec, options_);
  if (!body.ok()) return body.error();
  std::string path = "/containers/create";
  if (!spec.name.empty()) path += "?name=" + urlEncode(spec.name);
  auto r = call("POST", path, *body);
  if (!r.ok()) return r.error();
  if (r->status == 404 && dockerMessage(*r).find("image") != std::string::npos) {
    return invalid("image " + spec.image + " not found in Docker; " + kBuildHint);
  }
  if (r->status == 409) return conflict(dockerMessage(*r));
  if (r->status == 400 || r->status == 404) {
    return invalid("Docker rejected container " + spec.name + ": " + dockerMessage(*r));
  }
  if (!is2xx(*r)) return dockerError(*r, "container create of " + spec.name);
  auto j = parseJson(*r, "container create");
  if (!j.ok()) return j.error();
  std::string id = stringMember(*j, "Id");
  if (id.empty()) return internal("Docker container create: no Id in response: " + r->body);
  return id;
}

Status DockerRuntime::probeWritableLayerLimit(const std::string& image) {
  if (options_.writable_layer_bytes <= 0) return invalid("no writable layer limit is configured");
  ContainerSpec probe;
  probe.image = image;
  probe.cmd = {"/bin/true"};
  auto body = dockerCreateBody(probe, options_);
  if (!body.ok()) return body.error();
  auto r = call("POST", "/containers/create", *body);
  if (!r.ok()) return r.error();
  if (is2xx(*r)) {
    auto j = parseJson(*r, "container create");
    if (j.ok()) (void)removeContainer(stringMember(*j, "Id"));
    return {};
  }
  std::string message = dockerMessage(*r);
  // Docker says so when the driver cannot: "--storage-opt is supported only for overlay over xfs ...".
  if (message.find("storage-opt") != std::string::npos || message.find("StorageOpt") != std::string::npos ||
      message.find("quota") != std::string::npos || message.find("size") != std::string::npos) {
    return invalid(message);
  }
  return dockerError(*r, "container create (writable layer probe)");
}

Status DockerRuntime::startContainer(const std::string& id) {
  auto r = call("POST", "/containers/" + urlEncode(id) + "/start");
  if (!r.ok()) return r.error();
  if (is2xx(*r) || r->status == 304) return {};  // 304: already running
  std::string message = dockerMessage(*r);
  if (r->status == 404) return notFound("container " + id + " not found: " + message);
  if (isPortConflict(message)) return conflict("cannot start container " + id + ": " + message);
  return dockerError(*r, "container start of " + id);
}

Status DockerRuntime::removeContainer(const std::string& id) {
  auto r = call("DELETE", "/containers/" + urlEncode(id) + "?force=true&v=true");
  if (!r.ok()) return r.error();
  if (is2xx(*r) || r->status == 404) return {};
  // Another caller is already removing it; the outcome is the same.
  if (r->status == 409 && dockerMessage(*r).find("already in progress") != std::string::npos) {
    return {};
  }
  return dockerError(*r, "container remove of " + id);
}

Result<std::vector<ContainerInfo>> DockerRuntime::listContainers(const std::string& label_key) {
  json filters = {{"label", json::array({label_key})}};
  auto r = call("GET", "/containers/json?all=true&filters=" + urlEncode(filters.dump()));
  if (!r.ok()) return r.error();
  if (r->status != 200) return dockerError(*r, "container list");
  auto j = parseJson(*r, "container list", /*want_array=*/true);
  if (!j.ok()) return j.error();
  std::vector<ContainerInfo> out;
  for (const auto& c : *j) {
    if (!c.is_object()) continue;
    ContainerInfo info;
    info.id = stringMember(c, "Id");
    json names = member(c, "Names");
    if (names.is_array() && !names.empty() && names[0].is_string()) {
      info.name = stripSlash(names[0].get<std::string>());
    }
    info.state = stringMember(c, "State");
    info.running = info.state == "running";
    info.exit_code = exitCodeFromStatus(stringMember(c, "Status"));
    info.labels = labelsOf(member(c, "Labels"));
    out.push_back(std::move(info));
  }
  return out;
}

Result<ContainerInfo> DockerRuntime::inspectContainer(const std::string& id) {
  auto r = call("GET", "/containers/" + urlEncode(id) + "/json");
  if (!r.ok()) return r.error();
  if (r->status == 404) return notFound("container " + id + " not found");
  if (r->status != 200) return dockerError(*r, "container inspect of " + id);
  auto j = parseJson(*r, "container inspect");
  if (!j.ok()) return j.error();
  ContainerInfo info;
  info.id = stringMember(*j, "Id");
  info.name = stripSlash(stringMember(*j, "Name"));
  json state = member(*j, "State");
  info.running = state.is_object() && member(state, "Running") == true;
  info.state = stringMember(state, "Status");
  json code = member(state, "ExitCode");
  if (!info.running && code.is_number_integer()) info.exit_code = code.get<int>();
  json config = member(*j, "Config");
  if (config.is_object()) info.labels = labelsOf(member(config, "Labels"));
  return info;
}

namespace {

WorkloadInfo workloadOf(const ContainerInfo& c) {
  WorkloadInfo w;
  w.id = c.id;
  if (auto it = c.labels.find(kDockerSessionLabel); it != c.labels.end()) w.session_id = it->second;
  if (auto it = c.labels.find("sandman.gpu"); it != c.labels.end()) w.gpu_uuid = it->second;
  w.running = c.running;
  w.state = c.state;
  w.exit_code = c.exit_code;
  return w;
}

}  // namespace

Result<std::string> DockerRuntime::launch(const SessionWorkload& w) {
  ContainerSpec spec = sessionContainerSpec(w, options_);
  auto id = createContainer(spec);
  if (!id.ok()) return id.error();
  if (auto st = startContainer(id.value()); !st.ok()) {
    // Nobody else knows this container yet: it must not outlive the failure.
    (void)removeContainer(id.value());
    return st.error();
  }
  return id;
}

Result<WorkloadInfo> DockerRuntime::inspect(const std::string& id) {
  auto c = inspectContainer(id);
  if (!c.ok()) return c.error();
  WorkloadInfo w = workloadOf(c.value());
  if (!w.running && (w.state == "exited" || w.state == "dead")) {
    w.problem = "the session container exited (exit code " + std::to_string(w.exit_code) + ")";
  }
  return w;
}

Result<WorkloadEndpoint> DockerRuntime::endpoint(const std::string&, int direct_port) {
  // The published port on this host; a wildcard bind answers on loopback.
  const std::string& ip = options_.publish_ip;
  return WorkloadEndpoint{(ip == "0.0.0.0" || ip.empty()) ? std::string("127.0.0.1") : ip, direct_port};
}

Result<std::vector<WorkloadInfo>> DockerRuntime::listOurs() {
  // Only this daemon's containers: several daemons (tests, staging) may share one dockerd.
  auto listed = listContainers(std::string(kDockerInstanceLabel) + "=" + options_.instance);
  if (!listed.ok()) return listed.error();
  std::vector<WorkloadInfo> out;
  out.reserve(listed->size());
  for (const auto& c : listed.value()) out.push_back(workloadOf(c));
  return out;
}

}  // namespace sandman
