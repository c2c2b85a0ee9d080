// `sandman serve`: wires the modules together and runs until SIGINT/SIGTERM.
// Session containers outlive the daemon; the next start reconciles them.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include "alerts/alert_engine.h"
#include "alerts/alert_notifier.h"
#include "alerts/rule_file.h"
#include "api/alert_routes.h"
#include "api/gpu_node_routes.h"
#include "api/advice_routes.h"
#include "api/cost_routes.h"
#include "api/demand_routes.h"
#include "api/event_routes.h"
#include "common/time_format.h"
#include "api/dashboard_routes.h"
#include "api/gpu_device_routes.h"
#include "api/local_node_routes.h"
#include "api/http_server.h"
#include "api/metrics_routes.h"
#include "api/telemetry_routes.h"
#include "api/token_auth.h"
#include "api/workspace_routes.h"
#include "cli/commands.h"
#include "cli/web_mount.h"
#include "common/log.h"
#include "common/net.h"
#include "config/serve_config.h"
#include "core/history_retention.h"
#include "core/mig_layouts.h"
#include "cost/budgets.h"
#include "cost/cost_ledger.h"
#include "core/reaper.h"
#include "core/replica_sync.h"
#include "core/session_directory.h"
#include "core/session_manager.h"
#include "core/user_keys.h"
#include "gateway/ssh_gateway.h"
#include "gpu/nvml_backend.h"
#include "policy/idle_policy.h"
#include "policy/quota_banner_policy.h"
#include "runtime/docker_runtime.h"
#include "runtime/kubernetes_runtime.h"
#include "runtime/pod_cache.h"
#include "runtime/lease_elector.h"
#include "runtime/session_network.h"
#include "ssh/kexinit_probe.h"
#include "store/metrics_history.h"
#include "store/mig_layout_store.h"
#include "store/node_meta_store.h"
#include "store/sqlite_store.h"
#include "telemetry/cluster_telemetry.h"
#include "telemetry/disk_readings.h"
#include "telemetry/metrics_exporter.h"
#include "telemetry/sampler.h"
#include "workspace/disk_space.h"
#include "workspace/project_quota.h"
#include "workspace/quota_notice.h"

namespace sandman {
namespace {

// FNV-1a of the absolute store path: stable across restarts, distinct per daemon.
std::string instanceId(const std::string& db_path) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(db_path, ec).lexically_normal().string();
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : abs) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// --image and the --allowed-images list: what core checks before reserving
// and the runtime again at create.
std::vector<std::string> allowedImages(const ServeConfig& c) {
  std::vector<std::string> out = {c.image};
  std::stringstream list(c.allowed_images);
  for (std::string image; std::getline(list, image, ',');) {
    image.erase(0, image.find_first_not_of(" \t"));
    image.erase(image.find_last_not_of(" \t") + 1);
    if (!image.empty() && image != c.image) out.push_back(image);
  }
  return out;
}

SessionSettings sessionSettings(const ServeConfig& c) {
  SessionSettings s;
  s.default_image = c.image;
  s.ssh_bind = c.ssh_bind;
  s.ports = {c.ssh_port_start, c.ssh_port_end};
  s.ttl_default = std::chrono::minutes(c.ttl_default_min);
  s.ttl_max = std::chrono::minutes(c.ttl_max_min);
  s.memory_bytes = parseByteSize(c.memory).value();
  s.nano_cpus = static_cast<int64_t>(c.cpus * 1e9);
  s.pids_limit = c.pids_limit;
  s.allow_agent_forwarding = c.allow_agent_forwarding;
  s.allow_remote_forwarding = c.allow_remote_forwarding;
  s.allowed_images = allowedImages(c);
  return s;
}

// --gpu-backend: nvml must load; auto falls back to CPU-only sessions with
// one warning; none never tries.
Result<GpuBackendPtr> openGpuBackend(const ServeConfig& c) {
  if (c.gpu_backend == "none") return GpuBackendPtr();
  auto nvml = NvmlBackend::load(c.nvml_library);
  if (nvml.ok()) {
    logInfo("GPU backend ready", {{"backend", nvml.value()->description()}, {"mig_mode", c.mig_mode}});
    return GpuBackendPtr(std::move(nvml).value());
  }
  if (c.gpu_backend == "nvml") return nvml.error();
  logWarn("no GPU backend: NVML did not load; sessions are CPU-only (--gpu-backend none silences this)",
          {{"reason", nvml.error().message}});
  return GpuBackendPtr();
}

// The image list, log rotation, init and disk limit every session container gets.
Result<DockerOptions> dockerOptions(const ServeConfig& c) {
  DockerOptions o;
  o.log_max_size = c.container_log_max_size;
  o.log_max_files = c.container_log_max_files;
  o.writable_layer_bytes = parseByteSize(c.container_disk).value();
  o.allowed_images = allowedImages(c);
  o.instance = c.instance.empty() ? instanceId(c.db) : c.instance;
  o.network = c.network;
  o.publish_ip = c.ssh_bind;
  std::error_code ec;
  std::filesystem::path init = c.session_init;
  if (init.empty()) init = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path() / "sandman-init";
  init = std::filesystem::absolute(init, ec);
  if (!std::filesystem::is_regular_file(init, ec)) {
    return invalid("sandman-init not found at " + init.string() +
                   ": build it (cmake --build build --target sandman-init) or point --session-init at it");
  }
  o.init_path = init.string();
  return o;
}

// Docker refuses a writable layer limit its storage driver cannot enforce:
// say so once and create containers without it. GPUs go through
// DeviceRequests only where Docker has the nvidia runtime.
Result<DockerRuntimePtr> openDocker(const ServeConfig& c) {
  auto options = dockerOptions(c);
  if (!options.ok()) return options.error();
  auto runtime = DockerRuntime::open(c.docker_host, options.value());
  if (!runtime.ok()) return runtime.error();
  if (auto st = runtime.value()->ping(); !st.ok()) return st.error();
  auto nvidia = runtime.value()->hasNvidiaRuntime();
  options->gpu_device_requests = nvidia.ok() && nvidia.value();
  if (options->writable_layer_bytes > 0) {
    Status probe = runtime.value()->probeWritableLayerLimit(c.image);
    if (probe.ok()) {
      logInfo("session writable layers limited", {{"size", c.container_disk}});
    } else {
      logWarn("session writable layers are NOT size-limited: Docker's storage driver cannot enforce "
              "--container-disk (overlay2 needs xfs mounted with pquota); a session can fill Docker's disk "
              "(--container-disk 0 silences this)",
              {{"reason", probe.error().message}});
      options->writable_layer_bytes = 0;
    }
  }
  return DockerRuntime::open(c.docker_host, std::move(options).value());
}

// --workspace-quota: enforced through project quotas where the workspace
// root's file system has them on; elsewhere one warning line now, and the
// banner, alert and API say it later.
bool setUpWorkspaceQuota(const ServeConfig& c, WorkspaceManager& workspaces, std::string* note) {
  if (c.workspace_quota_bytes == 0) return false;
  const QuotaSupport support = ProjectQuota::probe(c.workspace_root);
  if (support.enforced) {
    workspaces.enforceQuota(c.workspace_quota_bytes);
    logInfo("workspace quota enforced by project quotas",
            {{"quota", formatBytes(c.workspace_quota_bytes)}, {"fs", support.fs_type}, {"root", c.workspace_root}});
    return true;
  }
  *note = "not enforced: " + support.reason;
  logWarn("--workspace-quota " + c.workspace_quota + " is NOT enforced (usage is still measured, warned and "
          "alerted): " + support.reason);
  return false;
}

// The API server and credentials from flags, or in-cluster.
Result<KubeConfig> kubeConfig(const ServeConfig& c) {
  KubeConfig kc;
  if (c.kube_api.empty()) {
    auto in_cluster = inClusterConfig();
    if (!in_cluster.ok()) {
      return invalid("not in a cluster (" + in_cluster.error().message + "): give --kube-api and credentials");
    }
    kc = in_cluster.value();
  } else {
    kc.server = c.kube_api;
  }
  if (!c.kube_token_file.empty()) kc.token_file = c.kube_token_file;
  if (!c.kube_ca_file.empty()) kc.ca_file = c.kube_ca_file;
  if (!c.kube_client_cert.empty()) {
    kc.client_cert_file = c.kube_client_cert;
    kc.client_key_file = c.kube_client_key;
    kc.token_file.clear();
  }
  return kc;
}

// --backend kubernetes: the pod watch cache, listed before anything is served.
Result<std::unique_ptr<KubernetesRuntime>> openKubernetes(const ServeConfig& c) {
  auto config = kubeConfig(c);
  if (!config.ok()) return config.error();
  const KubeConfig& kc = config.value();
  KubernetesOptions o;
  o.ns = c.kube_namespace;
  o.instance = c.instance.empty() ? instanceId(c.db) : c.instance;
  o.service_account = c.kube_service_account;
  o.workspace_size = c.kube_workspace_size;
  o.storage_class = c.kube_storage_class;
  o.allowed_images = allowedImages(c);
  o.deadline_backstop = std::chrono::minutes(c.ttl_max_min) + std::chrono::minutes(60);
  auto runtime = std::make_unique<KubernetesRuntime>(std::make_unique<KubeClient>(kc), o);
  if (auto st = runtime->ping(); !st.ok()) return st.error();
  if (auto st = runtime->start(std::chrono::seconds(60)); !st.ok()) return st.error();
  logInfo("Kubernetes backend ready", {{"api", kc.server}, {"namespace", o.ns},
                                       {"pods", std::to_string(runtime->cache().stats().pods)}});
  return runtime;
}

// GPU telemetry on a cluster: the node agents' pods, found through the API
// server with a client of its own (its watch must not queue behind the
// session cache's). The agents not being listable yet is no reason to stop:
// telemetry says so until they are.
Result<std::unique_ptr<ClusterTelemetry>> openClusterTelemetry(const ServeConfig& c, const KubernetesRuntime& kube,
                                                               const Clock& clock, std::unique_ptr<KubeClient>* client) {
  auto config = kubeConfig(c);
  if (!config.ok()) return config.error();
  ClusterTelemetryOptions o;
  o.agent_namespace = c.kube_agent_namespace;
  o.agent_selector = c.kube_agent_selector;
  o.default_port = c.kube_agent_port;
  // A poll never outlives its cycle: one dead node must not delay the rest.
  o.poll_timeout = std::min<Millis>(Millis(2000), std::max<Millis>(Millis(200), c.telemetry_interval_ms / 2));
  o.fleet.stale_after = std::max<Millis>(std::chrono::seconds(15), c.telemetry_interval_ms * 3);
  if (!c.kube_agent_token_file.empty()) {
    auto token = readToken(c.kube_agent_token_file);
    if (!token.ok()) return token.error();
    o.token = token.value();
  }
  *client = std::make_unique<KubeClient>(config.value());
  auto cluster = std::make_unique<ClusterTelemetry>(o, **client, kube.cache(), clock);
  if (auto st = cluster->start(std::chrono::seconds(10)); !st.ok()) {
    logWarn("GPU telemetry waits for the node agents", {{"error", st.error().message}});
  } else {
    logInfo("node agents found", {{"namespace", o.agent_namespace}, {"selector", o.agent_selector},
                                  {"pods", std::to_string(cluster->agents().stats().pods)}});
  }
  return cluster;
}

// Where followers send writers: this pod's address (the Deployment passes
// POD_IP), else the API's bind address, else this host's name.
std::string advertisedApi(const ServeConfig& c, const std::string& host_name) {
  std::string host = c.bind;
  if (const char* ip = std::getenv("POD_IP"); ip != nullptr && *ip != '\0') host = ip;
  else if (host == "0.0.0.0" || host == "::" || host.empty()) host = host_name;
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return (c.tls_cert.empty() ? "http://" : "https://") + host + ":" + std::to_string(c.port);
}

// Two replicas on Kubernetes: the elector on the Lease, and the sync that
// opens mutations once this replica leads and has adopted the cluster's
// sessions. Built before anything that mutates can run.
struct Replication {
  std::unique_ptr<KubeClient> client;  // its own: short timeouts, never queued behind pod calls
  std::unique_ptr<LeaseElector> elector;
  std::unique_ptr<ReplicaSync> sync;

  bool leads() const { return !sync || sync->mayMutate(); }
  // What a write on a follower is told (503 not_leader, Retry-After 2).
  std::string refusal() const {
    const LeaderView v = elector->leader();
    if (v.self) {
      return "this replica has just become the leader and is adopting the sessions in the cluster; retry in a "
             "few seconds";
    }
    if (v.holder.empty()) return "no replica leads right now (election in progress); retry in a few seconds";
    auto api = v.annotations.find("sandman.io/api");
    return "this replica (" + elector->identity() + ") is not the leader; the leader is " + v.holder +
           (api == v.annotations.end() ? "" : " at " + api->second) + "; retry there, or here in a few seconds";
  }
};
// --gpu-catalog, or the catalog shipped beside the binary.
Result<std::shared_ptr<const GpuCatalog>> loadCatalog(const std::string& flag) {
  std::string path = flag;
  if (path.empty()) {
    std::error_code ec;
    const std::string exe_dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
    std::string tried;
    for (const auto& candidate : GpuCatalog::defaultPaths(exe_dir)) {
      if (std::filesystem::exists(candidate, ec)) {
        path = candidate;
        break;
      }
      tried += (tried.empty() ? "" : ", ") + candidate;
    }
    if (path.empty()) {
      return invalid("no GPU catalog found (looked at " + tried +
                     "); install data/gpu-catalog.json beside the binary or give --gpu-catalog FILE");
    }
  }
  auto c = GpuCatalog::load(path);
  if (!c.ok()) return c.error();
  return std::shared_ptr<const GpuCatalog>(std::make_shared<GpuCatalog>(std::move(c).value()));
}

int fatal(const std::string& what, const Error& e) {
  logError(what, {{"error", e.message}});
  std::fprintf(stderr, "sandman serve: %s: %s\n", what.c_str(), e.message.c_str());
  return 1;
}

}  // namespace

int runServe(int argc, char** argv) {
  CLI::App app{"sandman serve: the Sandman daemon (REST API, session lifecycle, TTL reaper)", "serve"};
  ServeConfig cfg;
  addServeFlags(app, cfg);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto st = finalizeServeConfig(app, cfg); !st.ok()) {
    std::fprintf(stderr, "sandman serve: %s\n", st.error().message.c_str());
    return 2;
  }
  initLogging(cfg.log_format == "json" ? LogFormat::kJson : LogFormat::kText);
  // Every API and gateway connection is a descriptor (a relayed one two), as
  // are SQLite, Docker and libcurl: the default soft limit of 1024 is below
  // the connection caps.
  if (long fds = raiseOpenFileLimit(); fds < 4096) {
    logWarn("open-file limit is low: the API's and gateway's connection caps cannot all be reached; raise "
            "LimitNOFILE / ulimit -Hn", {{"limit", std::to_string(fds)}});
  }
  auto egress = parseEgressPolicy(cfg.session_egress);
  if (!egress.ok()) {
    std::fprintf(stderr, "sandman serve: %s\n", egress.error().message.c_str());
    return 2;
  }

  // Files and lists the operator wrote are checked before anything starts:
  // a typo in the rule file stops start-up, naming file, rule and field.
  auto alert_rules = loadAlertRules(cfg.alert_rules);
  if (!alert_rules.ok()) return fatal("bad --alert-rules", alert_rules.error());
  for (const auto* url : {&cfg.alert_webhook, &cfg.alertmanager}) {
    if (!url->empty() && url->rfind("http://", 0) != 0 && url->rfind("https://", 0) != 0) {
      return fatal("bad alert receiver URL", invalid("--alert-webhook and --alertmanager URLs must start with http:// or https://"));
    }
  }
  auto catalog = loadCatalog(cfg.gpu_catalog);
  if (!catalog.ok()) return fatal("cannot load the GPU catalog", catalog.error());
  auto cost_rates = CostRates::parse(cfg.gpu_hourly_rates, catalog.value(),
                                     parseSliceBasis(cfg.slice_price_basis).value_or(SliceBasis::kCompute));
  if (!cost_rates.ok()) return fatal("cannot price GPUs", cost_rates.error());
  char host_name[256] = {};
  gethostname(host_name, sizeof host_name - 1);  // the Hostname label (dcgm-exporter's) and the alerts' host

  // Block termination signals before any thread starts; one thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto store = SqliteStore::open(cfg.db);
  if (!store.ok()) return fatal("cannot open the store", store.error());
  RuntimePtr runtime;
  DockerRuntime* docker = nullptr;           // the Docker backend's own nouns (networks, nvidia runtime)
  KubernetesRuntime* kubernetes = nullptr;   // its watch cache's state, for /metrics
  std::optional<SessionNetwork> session_network;
  if (cfg.backend == "kubernetes") {
    auto kube = openKubernetes(cfg);
    if (!kube.ok()) return fatal("cannot use Kubernetes", kube.error());
    kubernetes = kube.value().get();
    runtime = std::move(kube).value();
  } else {
    auto opened = openDocker(cfg);
    if (!opened.ok()) return fatal("cannot use Docker", opened.error());
    docker = opened.value().get();
    runtime = std::move(opened).value();
    session_network.emplace(*docker, cfg.network, FirewallPlan{cfg.isolate_host, egress.value()});
    if (auto st = session_network->setUp(); !st.ok()) return fatal("cannot set up network " + cfg.network, st.error());
    if (auto img = docker->imageExists(cfg.image); img.ok() && !img.value()) {
      logWarn("default image missing; creates will fail until it is built (images/workspace/build.sh)",
              {{"image", cfg.image}});
    }
  }
  std::string token;
  if (cfg.auth == "token") {
    bool created = false;
    auto t = loadOrCreateToken(cfg.token_file, &created);
    if (!t.ok()) return fatal("cannot set up API auth", t.error());
    token = t.value();
    logInfo(created ? "API token generated" : "API token loaded", {{"file", cfg.token_file}});
  } else if (!isLoopbackAddress(cfg.bind)) {
    return fatal("cannot set up API auth",
                 invalid("--auth none is only allowed with a loopback --bind (127.0.0.1 or ::1), not " + cfg.bind +
                         ": anyone who reaches the API could create sessions"));
  } else {
    logWarn("API authentication is off (--auth none): any local user and any page in a local browser's "
            "reach can call the API");
  }
  // Roles: a read-only viewer token beside the admin's.
  std::string viewer_token;
  if (!cfg.viewer_token_file.empty()) {
    if (cfg.auth != "token") {
      return fatal("cannot set up API auth", invalid("--viewer-token-file needs --auth token (with --auth none "
                                                     "every caller is an admin)"));
    }
    bool created = false;
    auto t = loadOrCreateToken(cfg.viewer_token_file, &created);
    if (!t.ok()) return fatal("cannot set up the viewer token", t.error());
    if (t.value() == token) {
      return fatal("cannot set up the viewer token",
                   invalid("--viewer-token-file holds the admin token; give the viewer a token of its own"));
    }
    viewer_token = t.value();
    logInfo(created ? "viewer token generated" : "viewer token loaded", {{"file", cfg.viewer_token_file}});
  }

  // On Kubernetes the device plugin owns the GPUs and the scheduler hands them
  // out: the daemon's own host has none to drive.
  auto gpu_backend = cfg.backend == "kubernetes" ? Result<GpuBackendPtr>(GpuBackendPtr()) : openGpuBackend(cfg);
  if (!gpu_backend.ok()) return fatal("cannot load NVML (--gpu-backend nvml)", gpu_backend.error());
  GpuSettings gpu_settings;
  gpu_settings.mig_mode = cfg.mig_mode == "static" ? MigMode::kStatic : MigMode::kDynamic;
  gpu_settings.default_profile = cfg.default_mig_profile;
  if (gpu_backend.value()) {
    gpu_settings.device_requests = docker != nullptr && docker->options().gpu_device_requests;
    if (!gpu_settings.device_requests) {
      logWarn("Docker has no nvidia runtime: containers get NVIDIA_VISIBLE_DEVICES only (gpu_attach env-only)");
    }
  }
  GpuLeases gpus(gpu_backend.value().get(), gpu_settings);

  SystemClock clock;
  const std::string state_dir = std::filesystem::path(cfg.db).parent_path().string();
  if (cfg.backend == "kubernetes") {
    // Workspaces are claims in the cluster: nothing of theirs lives on this
    // host, whose disk checks and usage monitor then watch an empty directory.
    cfg.workspace_root = (state_dir.empty() ? "." : state_dir) + "/host-workspaces";
    std::error_code ec;
    std::filesystem::create_directories(cfg.workspace_root, ec);
  }
  WorkspaceManager workspaces(cfg.workspace_root);
  SshdFiles sshd_files((state_dir.empty() ? "." : state_dir) + "/session-files");
  GatewayKeyring keyring((state_dir.empty() ? "." : state_dir) + "/gateway-keys");
  SessionManager sessions(sessionSettings(cfg), *store.value(), *runtime, workspaces, sshd_files, keyring,
                          gpus, clock, probeSshKexInit);
  Replication replication;
  if (cfg.backend == "kubernetes" && cfg.leader_elect) {
    auto kc = kubeConfig(cfg);
    if (!kc.ok()) return fatal("cannot use Kubernetes", kc.error());
    // A renewal must fail fast: the renew deadline is 10 s.
    kc.value().request_timeout = std::chrono::seconds(4);
    kc.value().connect_timeout = std::chrono::seconds(2);
    replication.client = std::make_unique<KubeClient>(kc.value());
    LeaseElectorOptions lease;
    lease.ns = cfg.kube_lease_namespace;
    lease.identity = leaseIdentity(host_name);
    lease.annotations = {{"sandman.io/api", advertisedApi(cfg, host_name)}};
    replication.elector = std::make_unique<LeaseElector>(LeaseApi::over(*replication.client), lease, clock);
    replication.sync = std::make_unique<ReplicaSync>(
        sessions, [&replication] { return replication.elector->isLeader(); },
        [&replication] { return replication.elector->term(); }, clock);
    replication.elector->setListener([&replication](bool) { replication.sync->wake(); });
    sessions.setMutationGate([&replication]() -> Status {
      if (replication.sync->mayMutate()) return {};
      return unavailable(replication.refusal());
    });
    logInfo("leader election on", {{"lease", lease.ns + "/" + lease.name}, {"identity", lease.identity},
                                   {"api", lease.annotations["sandman.io/api"]}});
  }
  // Disk: no new session below --min-free-disk; usage measured in the background.
  const std::string state_path = state_dir.empty() ? "." : state_dir;
  DiskPolicyView disk_policy{cfg.workspace_quota_bytes, false, "", ""};
  disk_policy.quota_enforced = setUpWorkspaceQuota(cfg, workspaces, &disk_policy.quota_note);
  const FreeSpaceGuard space_guard(state_path, cfg.workspace_root, {cfg.min_free_disk_bytes, cfg.min_free_disk_percent});
  disk_policy.min_free_disk = space_guard.min().off() ? "off" : space_guard.min().describe();
  sessions.setSpaceCheck([&space_guard] { return space_guard.check(); });
  WorkspaceUsageMonitor workspace_usage({cfg.workspace_root, cfg.workspace_usage_interval_ms, 20000,
                                         cfg.workspace_quota_bytes, disk_policy.quota_enforced},
                                        clock);
  sessions.setLoginBanner([&workspace_usage, &disk_policy](const std::string& user) {
    return quotaBanner(disk_policy.quota_bytes, disk_policy.quota_enforced, workspace_usage.get(user));
  });
  DiskReader disk_reader(state_path, workspace_usage);
  // Cost: who pays is fixed at create; ended sessions are booked as they end.
  auto cost_store = CostStore::open(cfg.db);
  if (!cost_store.ok()) return fatal("cannot open the cost tables", cost_store.error());
  CostLedger ledger({cfg.idle_utilization}, *cost_store.value(), cost_rates.value(), clock);
  if (auto changed = ledger.syncPrices(); !changed.ok()) {
    return fatal("cannot record GPU prices", changed.error());
  } else if (changed.value() > 0) {
    logInfo("GPU prices recorded", {{"models", std::to_string(changed.value())}, {"catalog", catalog.value()->origin()}});
  }
  BudgetMonitor budgets(ledger, cfg.budget_enforcement == "block");
  sessions.setPayerCheck([&ledger, &budgets](const CreateRequest& r) -> Result<SessionPayer> {
    auto p = ledger.payerFor(r.user_id, r.project);
    if (!p.ok()) return p.error();
    if (Status st = budgets.admit(r.user_id, p->team, p->project, "create"); !st.ok()) return st.error();
    return SessionPayer{p->team, p->project};
  });
  // Allocation by need prices devices as the ledger would book them now.
  gpus.setPricer([&ledger](const std::string& model, const std::string& profile, int compute) {
    auto p = ledger.slotPriceNow(model, profile, compute);
    return p.ok() ? p.value() : ledger.rates().slotPerHour(model, profile, compute);
  });
  // Demand: every create that asked for capacity, kept as long as sessions are.
  auto demand_store = DemandStore::open(cfg.db);
  if (!demand_store.ok()) return fatal("cannot open the demand table", demand_store.error());
  sessions.setDemandListener([&demand = *demand_store.value(), &ledger](const DemandEvent& e) {
    DemandRecord r = demandRecordOf(e);
    if (r.team.empty() && r.project.empty()) {
      if (auto p = ledger.payerFor(e.user_id, e.project); p.ok()) {
        r.team = p->team;
        r.project = p->project;
      }
    }
    if (Status st = demand.record(r); !st.ok()) {
      logWarn("demand not recorded", {{"user", e.user_id}, {"error", st.error().message}});
    }
  });
  sessions.setExtendCheck([&budgets](const Session& s) { return budgets.admit(s.user_id, s.team, s.project, "extend"); });
  sessions.setEndedListener([&ledger](const Session& s) {
    if (auto b = ledger.bookEnded(); !b.ok()) {
      logWarn("cost not booked yet; retried at the next end or query", {{"session", s.id}, {"error", b.error().message}});
    }
  });
  Reaper reaper(sessions, clock);
  sessions.setScheduleListener([&reaper] { reaper.wake(); });

  // The gateway reaches sessions where their direct ports answer.
  SessionDirectory directory(*store.value(), keyring, *runtime);
  GatewayOptions gateway_options;
  gateway_options.bind = cfg.gateway_bind;
  gateway_options.port = cfg.gateway_port;
  gateway_options.host_key_path = cfg.gateway_host_key.empty()
                                      ? (state_dir.empty() ? "." : state_dir) + "/gateway_host_ed25519_key"
                                      : cfg.gateway_host_key;
  gateway_options.expiry_warning = std::chrono::minutes(cfg.expiry_warning_min);
  gateway_options.allow_agent_forwarding = cfg.allow_agent_forwarding;
  gateway_options.allow_remote_forwarding = cfg.allow_remote_forwarding;
  gateway_options.connection_retention = cfg.connection_retention_ms;
  gateway_options.max_connections = cfg.gateway_max_connections;
  gateway_options.max_connections_per_source = cfg.gateway_max_per_source;
  gateway_options.max_connections_per_user = cfg.gateway_max_per_user;
  SshGateway gateway(gateway_options, directory, clock);
  if (cfg.gateway) {
    if (auto st = gateway.start(); !st.ok()) return fatal("cannot start the SSH gateway", st.error());
    sessions.setEndListener([&gateway](const std::string& id, const std::string& reason) {
      gateway.endSession(id, reason);
    });
    logInfo("SSH gateway listening", {{"address", cfg.gateway_bind + ":" + std::to_string(gateway.boundPort())},
                                      {"host_key", gateway.hostPublicKey()}});
  }
  // A replica reconciles once it leads and has synced (ReplicaSync); here the
  // gate makes this a no-op for it.
  if (auto st = sessions.reconcile(); !st.ok()) return fatal("start-up reconciliation failed", st.error());
  if (replication.elector) {
    // One round of each before serving: a lone daemon leads (and a follower
    // has mirrored the cluster) by the time the API answers.
    replication.elector->tick();
    replication.sync->round();
    replication.elector->start();
    replication.sync->start();
  }
  // Sessions that ended while the daemon was down (or before the ledger existed).
  if (auto booked = ledger.bookEnded(); !booked.ok()) {
    logWarn("cannot book ended sessions yet", {{"error", booked.error().message}});
  } else if (booked.value() > 0) {
    logInfo("ended sessions booked", {{"sessions", std::to_string(booked.value())}});
  }
  reaper.start();
  RetentionOptions retention_options;
  retention_options.sessions = cfg.session_retention_ms;
  retention_options.events = cfg.event_retention_ms;
  retention_options.demand = cfg.session_retention_ms;
  HistoryRetention retention(retention_options, *store.value(), clock);
  retention.start();

  // Telemetry: the sampler, and its history.
  // History gets its own connections to the file the store just migrated.
  MetricsHistoryOptions history_options;
  history_options.raw_retention = cfg.metrics_raw_retention_ms;
  history_options.retention = cfg.metrics_retention_ms;
  auto history = MetricsHistory::open(cfg.db, history_options, clock);
  if (!history.ok()) return fatal("cannot open the telemetry history", history.error());
  SamplerOptions sampler_options;
  sampler_options.interval = cfg.telemetry_interval_ms;
  // On a cluster the device plugin owns the MIG layout: unheld instances are its pool, not leaks.
  sampler_options.mig_dynamic = gpu_settings.mig_mode == MigMode::kDynamic && kubernetes == nullptr;
  TelemetrySampler sampler(sampler_options, gpu_backend.value().get(), *store.value(), clock,
                           history.value().get());
  std::unique_ptr<KubeClient> agent_client;
  std::unique_ptr<ClusterTelemetry> cluster_telemetry;
  if (kubernetes != nullptr) {
    auto cluster = openClusterTelemetry(cfg, *kubernetes, clock, &agent_client);
    if (!cluster.ok()) return fatal("cannot set up cluster telemetry", cluster.error());
    cluster_telemetry = std::move(cluster).value();
    sampler.setSource([&cluster_telemetry] { return cluster_telemetry->collect(); });
  }
  // Alerts: the engine listens to the sampler; deliveries leave from the notifier's thread.
  auto alert_store = AlertStore::open(cfg.db);
  if (!alert_store.ok()) return fatal("cannot open the alert store", alert_store.error());
  NotifierOptions notifier_options;
  notifier_options.webhook_url = cfg.alert_webhook;
  notifier_options.alertmanager_url = cfg.alertmanager;
  AlertNotifier notifier(notifier_options, clock);
  AlertEngineOptions alert_options;
  alert_options.host = host_name;
  const bool deliver_alerts = !cfg.alert_webhook.empty() || !cfg.alertmanager.empty();
  AlertEngine alerts(std::move(alert_rules).value(), *alert_store.value(), clock,
                     deliver_alerts ? &notifier : nullptr, alert_options);
  // Open alerts of the previous run continue (no duplicates after a restart).
  if (auto st = alerts.restore(); !st.ok()) return fatal("cannot load open alerts", st.error());
  if (deliver_alerts) notifier.start();
  sampler.setDiskSource([&disk_reader] { return disk_reader.read(); });
  sampler.setBudgetSource([&budgets] { return budgets.readings(); });
  // Alerts are raised and delivered by the leader alone (no duplicate pages).
  sampler.addListener([&alerts, &replication](const TelemetrySnapshot& snap) {
    if (replication.leads()) alerts.evaluate(snap);
  });
  QuotaBannerPolicy quota_banners(*store.value(), sshd_files, workspace_usage, disk_policy.quota_bytes,
                                  disk_policy.quota_enforced);
  sampler.addListener([&quota_banners](const TelemetrySnapshot& snap) { quota_banners.onSample(snap); });
  logInfo("alert engine ready", {{"rules", std::to_string(alerts.rules().size())},
                                 {"rule_file", cfg.alert_rules.empty() ? "built-in" : cfg.alert_rules},
                                 {"webhook", cfg.alert_webhook}, {"alertmanager", cfg.alertmanager}});
  // Idle policy (off unless --idle-stop-after or --auto-extend).
  IdlePolicyOptions idle_options;
  idle_options.stop_after = cfg.idle_stop_after_ms;
  idle_options.warning = cfg.idle_warning_ms;
  idle_options.utilization_threshold = cfg.idle_utilization;
  idle_options.traffic_window = cfg.idle_traffic_window_ms;
  idle_options.auto_extend = cfg.auto_extend;
  idle_options.extend_step = cfg.auto_extend_step_ms;
  idle_options.extend_before = cfg.auto_extend_before_ms;
  idle_options.ttl_max = std::chrono::minutes(cfg.ttl_max_min);
  IdlePolicy idle(idle_options, sessions, *store.value(), cfg.gateway ? &gateway : nullptr, clock);
  if (idle_options.enabled()) {
    sampler.addListener([&idle, &replication](const TelemetrySnapshot& snap) {
      if (replication.leads()) idle.onSample(snap);
    });
    idle.start();
    logInfo("idle policy on", {{"idle_stop_after", cfg.idle_stop_after.empty() ? "off" : cfg.idle_stop_after},
                               {"auto_extend", cfg.auto_extend ? "on" : "off"}});
  }

  // The cluster's GPU nodes (Kubernetes): a node watch cache behind /gpu-nodes
  // and the cluster-wide /gpus, and MIG layout changes through the GPU operator.
  // Sandman's records of GPU nodes and their changes (both backends).
  auto node_meta = NodeMetaStore::open(cfg.db);
  if (!node_meta.ok()) return fatal("cannot open the GPU node records", node_meta.error());
  std::unique_ptr<NodeCache> node_cache;
  std::unique_ptr<MigLayoutStore> mig_store;
  std::unique_ptr<MigLayouts> mig_layouts;
  std::unique_ptr<GpuNodeRoutes> gpu_node_routes;
  if (auto* kube = dynamic_cast<KubernetesRuntime*>(runtime.get())) {
    auto opened = MigLayoutStore::open(cfg.db);
    if (!opened.ok()) return fatal("cannot open the MIG layout proposals", opened.error());
    mig_store = std::move(opened).value();
    node_cache = std::make_unique<NodeCache>(kube->client(), cfg.kube_node_selector);
    MigLayoutOptions mig_options;
    mig_options.operator_timeout = cfg.kube_mig_timeout_ms;
    mig_layouts = std::make_unique<MigLayouts>(kube->client(), *node_cache, kube->cache(), *mig_store, clock,
                                               mig_options);
    node_cache->setListener([layouts = mig_layouts.get()](const std::string& name,
                                                          const std::optional<NodeView>& node) {
      layouts->onNode(name, node);
    });
    if (auto st = mig_layouts->start(); !st.ok()) return fatal("cannot load MIG layout proposals", st.error());
    node_cache->start();
    // Without the nodes ClusterRole sessions still run; only the inventory is missing.
    if (!node_cache->waitSynced(std::chrono::seconds(30))) {
      logWarn("cannot list nodes yet: /gpu-nodes and the cluster-wide /gpus stay empty until it works "
              "(the ClusterRole sandman-nodes grants it)", {{"error", node_cache->stats().last_error}});
    } else {
      logInfo("node cache synced", {{"nodes", std::to_string(node_cache->stats().objects)},
                                    {"held_for_mig", std::to_string(mig_layouts->heldNodes().size())}});
    }
    gpu_node_routes = std::make_unique<GpuNodeRoutes>(*node_cache, kube->cache(), mig_layouts.get(), &kube->client(),
                                                      node_meta.value().get(), &clock);
    // MIG layout holds and nodes an admin put in maintenance (sandman.io/status).
    kube->setNodeRefusals([routes = gpu_node_routes.get()] { return routes->refusedNodes(); });
    kube->setNodeModels([nodes = node_cache.get()](const std::string& node) {
      auto view = nodes->get(node);
      return view ? view->product : std::string();
    });
  }

  // Nodes and dashboard (issue 15): the local host as a node on Docker (its
  // status in the store; maintenance refuses creates), the documents'
  // /gpu/* and /dashboard/* resources.
  std::unique_ptr<LocalNodeRoutes> local_node_routes;
  if (kubernetes == nullptr) {
    local_node_routes = std::make_unique<LocalNodeRoutes>(host_name, *node_meta.value(), *store.value(), sampler, clock);
    sessions.setHostCheck([routes = local_node_routes.get()] { return routes->takesSessions(); });
  }
  GpuDeviceRoutes gpu_device_routes(sampler, *store.value(), kubernetes ? nullptr : &gpus,
                                    kubernetes ? std::string() : std::string(host_name), node_meta.value().get(),
                                    clock, kubernetes != nullptr);
  DashboardSources dashboard_sources{store.value().get(), &sampler, history.value().get(), &alerts, &ledger, &budgets,
                                     node_meta.value().get(), {}, kubernetes ? "kubernetes" : "docker"};
  if (local_node_routes) {
    dashboard_sources.nodes = [routes = local_node_routes.get()] { return routes->nodes(); };
  } else if (gpu_node_routes) {
    dashboard_sources.nodes = [routes = gpu_node_routes.get()] { return routes->nodesJson(); };
  }
  DashboardRoutes dashboard_routes(std::move(dashboard_sources), clock);

  UserKeys user_keys(*store.value(), clock);
  ApiOptions api_options;
  api_options.token = token;
  api_options.viewer_token = viewer_token;
  api_options.view = {cfg.ssh_host, cfg.workspace_root, cfg.gateway ? cfg.gateway_port : 0, {}};
  if (!runtime->hostWorkspaces()) {
    api_options.view.workspace_of = [ns = cfg.kube_namespace](const std::string& user) {
      return "persistentvolumeclaim/" + workspaceClaimName(user) + " (namespace " + ns + ")";
    };
  }
  api_options.metrics_auth = cfg.metrics_auth;
  if (gpu_node_routes) {
    api_options.cluster_gpus = [routes = gpu_node_routes.get()](const std::string& view) { return routes->gpus(view); };
  }
  if (replication.sync) {
    api_options.not_leader = [&replication]() -> std::optional<std::string> {
      if (replication.leads()) return std::nullopt;
      return replication.refusal();
    };
    api_options.role = [&replication] { return std::string(replication.leads() ? "leader" : "follower"); };
  }
  // The web dashboard: its static files, without the token (the page logs in itself).
  WebMount web_mount(cfg.web_root);
  logInfo("web", {{"status", web_mount.description()}});
  api_options.is_public = WebMount::isPublic;
  ApiServer api(api_options, sessions, user_keys, *runtime, *store.value());
  api.addRoutes(web_mount);
  if (gpu_node_routes) api.addRoutes(*gpu_node_routes);
  TelemetryRoutes telemetry_routes(sampler, history.value().get(), clock);
  api.addRoutes(telemetry_routes);
  AlertRoutes alert_routes(alerts);
  api.addRoutes(alert_routes);
  WorkspaceRoutes workspace_routes(workspace_usage, disk_reader, disk_policy);
  api.addRoutes(workspace_routes);
  CostRoutes cost_routes(ledger, budgets);
  api.addRoutes(cost_routes);
  // Advice: right-sizing and the cost forecast.
  AdviceRoutes advice_routes(ledger);
  api.addRoutes(advice_routes);
  DemandRoutesOptions demand_options;
  if (cfg.backend == "kubernetes") {
    demand_options.advice_unsupported =
        "layout advice replays demand through this host's allocator; on --backend kubernetes MIG layouts are set per "
        "node (GET /api/v1/gpu-nodes)";
  } else if (gpus.enabled()) {
    demand_options.gpus = [&gpus] { return gpus.snapshot(); };
  }
  demand_options.mig_mode = gpu_settings.mig_mode;
  demand_options.default_profile = gpu_settings.default_profile;
  demand_options.pricer = [&ledger](const std::string& model, const std::string& profile, int compute) {
    auto p = ledger.slotPriceNow(model, profile, compute);
    return p.ok() ? p.value() : ledger.rates().slotPerHour(model, profile, compute);
  };
  DemandRoutes demand_routes(*demand_store.value(), demand_options, clock);
  api.addRoutes(demand_routes);
  // The event stream (GET /events/stream): ids continue across restarts.
  // Shared with the listeners that feed it, so a session change on another
  // thread during an early exit never finds it gone.
  EventHubOptions hub_options;
  hub_options.first_id = static_cast<uint64_t>(toUnixMillis(clock.now())) * 1000;
  auto event_hub = std::make_shared<EventHub>(hub_options);
  auto event_routes = std::make_shared<EventRoutes>(
      *event_hub, api_options.view, [&api, &ledger, &clock]() -> Result<nlohmann::json> {
        return costEventJson([&api](const std::string& target) { return api.internalGet(target); }, ledger,
                             clock.now());
      });
  api.addRoutes(*event_routes);
  sessions.setChangeListener([event_hub, event_routes](const Session& s, bool created) {
    event_routes->onSession(s, created);
  });
  sampler.addListener([event_hub, event_routes](const TelemetrySnapshot& snap) { event_routes->onSample(snap); });
  alerts.setListener([event_hub, event_routes](const std::string& action, const Alert& a) {
    event_routes->onAlert(action, a);
  });
  const NodeChangeListener on_node = [event_hub, event_routes](const std::string& action, const nlohmann::json& n) {
    event_routes->onNode(action, n);
  };
  if (local_node_routes) local_node_routes->setChangeListener(on_node);
  if (gpu_node_routes) gpu_node_routes->setChangeListener(on_node);
  if (local_node_routes) api.addRoutes(*local_node_routes);
  api.addRoutes(gpu_device_routes);
  api.addRoutes(dashboard_routes);
  // /metrics renders from the live sources on each scrape.
  MetricsSources metrics_sources;
  metrics_sources.snapshot = [&sampler] { return sampler.latest(); };
  metrics_sources.sessions_by_status = [&store] { return store.value()->countSessionsByStatus(); };
  metrics_sources.create_seconds = [&sessions] { return sessions.createSeconds().snapshot(); };
  metrics_sources.request_seconds = [&api] { return api.requestSeconds().snapshot(); };
  metrics_sources.api_connections = [&api] {
    const HttpListenerStats l = api.listenerStats();
    return ApiConnectionStats{l.open_connections, l.refused_connections, l.rejected_requests,
                              l.timed_out_connections};
  };
  if (cfg.gateway) metrics_sources.gateway = [&gateway] { return gateway.stats(); };  // off: zeros
  metrics_sources.reconcile_repairs = [&sessions] { return sessions.reconcileRepairs(); };
  if (idle_options.enabled()) metrics_sources.idle_decisions = [&idle] { return idle.decisions(); };
  metrics_sources.open_alerts = [&alerts] { return alerts.openCounts(); };
  if (kubernetes != nullptr) {
    metrics_sources.kube_watch = [kubernetes] {
      const PodCache::Stats c = kubernetes->cache().stats();
      return KubeWatchStats{c.pods, c.synced, c.lists, c.watches, c.gone, c.errors, c.bytes};
    };
  }
  if (replication.elector) {
    metrics_sources.leadership = [&replication] {
      return MetricsInputs::Leadership{replication.leads(), replication.elector->leader().transitions};
    };
  }
  metrics_sources.budgets = [&budgets] {
    std::vector<BudgetRatio> out;
    for (const auto& b : budgets.readings()) out.push_back({b.budget, b.limit_usd > 0 ? b.used_usd / b.limit_usd : 0});
    return out;
  };
  metrics_sources.cost = [&ledger]() -> Result<std::vector<CostSeries>> {
    auto counters = ledger.counters();
    if (!counters.ok()) return counters.error();
    std::vector<CostSeries> out;
    for (const auto& c : counters.value()) {
      out.push_back({c.user_id, c.team, c.project, c.gpu_model, static_cast<double>(c.cost_micros) / 1e6,
                     static_cast<double>(c.idle_cost_micros) / 1e6});
    }
    return out;
  };
  MetricsExporter metrics({host_name, std::move(cost_rates).value()}, std::move(metrics_sources));
  MetricsRoutes metrics_routes(metrics, isLoopbackAddress(cfg.bind));
  api.addRoutes(metrics_routes);
  if (cfg.tls_cert.empty() != cfg.tls_key.empty()) {
    return fatal("cannot start the API", invalid("--tls-cert and --tls-key go together: give both, or neither"));
  }
  if (!cfg.tls_cert.empty()) {
    if (auto st = api.enableTls(cfg.tls_cert, cfg.tls_key); !st.ok()) return fatal("cannot start the API", st.error());
  } else if (!isLoopbackAddress(cfg.bind)) {
    logWarn("the API is served over plain HTTP beyond loopback: the token and one-time private keys cross the "
            "network in clear; use --tls-cert/--tls-key", {{"bind", cfg.bind}});
  }
  if (auto st = api.bind(cfg.bind, cfg.port); !st.ok()) return fatal("cannot start the API", st.error());
  workspace_usage.start();
  event_hub->start();
  event_routes->start();
  sampler.start();
  logInfo("telemetry sampler started", {{"interval_ms", std::to_string(cfg.telemetry_interval_ms.count())}});
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    logInfo("shutting down; session containers keep running", {{"signal", std::to_string(sig)}});
    api.stop();
  });
  logInfo("sandman serving", {{"api", cfg.bind + ":" + std::to_string(cfg.port)},
                              {"ssh_ports", std::to_string(cfg.ssh_port_start) + "-" + std::to_string(cfg.ssh_port_end)},
                              {"db", cfg.db}, {"workspaces", cfg.workspace_root}});
  api.serve();
  pthread_kill(waiter.native_handle(), SIGTERM);  // wakes the waiter if serve() ended otherwise
  waiter.join();
  if (replication.elector) {
    // First: mutations end, and the lease goes back so the other replica
    // takes over now rather than after 15 s.
    replication.sync->stop();
    replication.elector->stop(true);
  }
  sampler.stop();
  event_routes->stop();
  event_hub->stop();
  if (node_cache) node_cache->stop();  // before the layouts its listener feeds
  if (mig_layouts) mig_layouts->stop();
  if (cluster_telemetry) cluster_telemetry->stop();
  workspace_usage.stop();
  idle.stop();
  notifier.stop();  // after the sampler: nothing queues behind it
  reaper.stop();
  gateway.stop();
  if (session_network) {
    auto torn_down = session_network->tearDownIfUnused();
    if (!torn_down.ok()) logWarn("session network left in place", {{"error", torn_down.error().message}});
    else if (torn_down.value()) logInfo("session network and its firewall removed (no session left on it)");
  }
  return 0;
}

}  // namespace sandman
