#include "config/serve_config.h"

#include <unistd.h>

#include <cstdlib>
#include <regex>

#include "common/duration.h"

namespace sandman {

void addServeFlags(CLI::App& app, ServeConfig& c) {
  auto flag = [&](const char* name, auto& var, const char* env, const char* help) {
    app.add_option(name, var, help)->envname(env)->capture_default_str();
  };
  flag("--bind", c.bind, "SANDMAN_BIND", "Address the REST API listens on");
  flag("--port", c.port, "SANDMAN_PORT", "REST API port");
  flag("--db", c.db, "SANDMAN_DB", "SQLite database file (also DB_PATH); per-session sshd files live beside it");
  flag("--workspace-root", c.workspace_root, "SANDMAN_WORKSPACE_ROOT", "Directory holding each user's persistent workspace (also WORKSPACE_ROOT)");
  flag("--image", c.image, "SANDMAN_IMAGE", "Default session image");
  flag("--ssh-port-start", c.ssh_port_start, "SANDMAN_SSH_PORT_START", "First port of the direct SSH range");
  flag("--ssh-port-end", c.ssh_port_end, "SANDMAN_SSH_PORT_END", "Last port of the direct SSH range (inclusive)");
  flag("--ssh-bind", c.ssh_bind, "SANDMAN_SSH_BIND", "Address the direct SSH ports listen on");
  flag("--ssh-host", c.ssh_host, "SANDMAN_SSH_HOST", "Host name given to users in ssh commands (default: this machine's name)");
  flag("--ttl-default", c.ttl_default_min, "SANDMAN_TTL_DEFAULT", "Session TTL in minutes when a request gives none");
  flag("--ttl-max", c.ttl_max_min, "SANDMAN_TTL_MAX", "Longest TTL in minutes a session may have");
  flag("--memory", c.memory, "SANDMAN_MEMORY", "Memory limit per session container (e.g. 512m, 4g; 0 = none)");
  flag("--cpus", c.cpus, "SANDMAN_CPUS", "CPU limit per session container (0 = none)");
  flag("--pids-limit", c.pids_limit, "SANDMAN_PIDS_LIMIT", "Process limit per session container (0 = none)");
  flag("--network", c.network, "SANDMAN_NETWORK", "Docker bridge network for sessions (created, inter-container traffic off)");
  app.add_option("--isolate-host", c.isolate_host,
                 "Firewall the session network off the host's own services (iptables INPUT rules)")
      ->envname("SANDMAN_ISOLATE_HOST")->capture_default_str();
  flag("--session-egress", c.session_egress, "SANDMAN_SESSION_EGRESS",
       "Where sessions may connect: empty drops private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7); "
       "CIDR[:port] entries are let through (e.g. 10.1.2.3/32:3142,192.168.5.0/24); 'none' drops everything "
       "but the entries; 'off' adds no rules. Link-local / cloud metadata (169.254.0.0/16, fd00:ec2::254) is always dropped");
  flag("--container-log-max-size", c.container_log_max_size, "SANDMAN_CONTAINER_LOG_MAX_SIZE",
       "Size at which a session container's log file is rotated (json-file max-size, e.g. 10m)");
  flag("--container-log-max-files", c.container_log_max_files, "SANDMAN_CONTAINER_LOG_MAX_FILES",
       "Rotated log files kept per session container (json-file max-file)");
  flag("--container-disk", c.container_disk, "SANDMAN_CONTAINER_DISK",
       "Size limit of a session container's writable layer (e.g. 20g; 0 = none); needs a storage driver that "
       "supports it (overlay2 on xfs with pquota), else a warning at start-up");
  flag("--allowed-images", c.allowed_images, "SANDMAN_ALLOWED_IMAGES",
       "Comma-separated images sessions may use (empty: --image alone)");
  flag("--session-init", c.session_init, "SANDMAN_SESSION_INIT",
       "The sandman-init binary run as PID 1 of every session (empty: sandman-init beside this executable)");
  flag("--docker-host", c.docker_host, "SANDMAN_DOCKER_HOST", "Docker Engine API endpoint (unix:// only)");
  app.add_option("--backend", c.backend,
                 "Where sessions run: docker (containers on this host) or kubernetes (pods, scheduled by the cluster)")
      ->envname("SANDMAN_BACKEND")->capture_default_str()->check(CLI::IsMember({"docker", "kubernetes"}));
  flag("--kube-namespace", c.kube_namespace, "SANDMAN_KUBE_NAMESPACE",
       "Namespace of session pods, secrets and workspace claims (Pod Security restricted; deploy/kubernetes)");
  flag("--kube-api", c.kube_api, "SANDMAN_KUBE_API",
       "Kubernetes API server URL (https://...; empty: in-cluster, from KUBERNETES_SERVICE_HOST/PORT)");
  flag("--kube-token-file", c.kube_token_file, "SANDMAN_KUBE_TOKEN_FILE",
       "Bearer token file, re-read when it rotates (empty: the pod's service-account token)");
  flag("--kube-ca-file", c.kube_ca_file, "SANDMAN_KUBE_CA_FILE",
       "CA bundle that signs the API server (empty: the pod's service-account ca.crt)");
  flag("--kube-client-cert", c.kube_client_cert, "SANDMAN_KUBE_CLIENT_CERT",
       "Client certificate for the API server instead of a token (with --kube-client-key)");
  flag("--kube-client-key", c.kube_client_key, "SANDMAN_KUBE_CLIENT_KEY", "Private key of --kube-client-cert");
  flag("--kube-workspace-size", c.kube_workspace_size, "SANDMAN_KUBE_WORKSPACE_SIZE",
       "Storage request of a user's new workspace claim ws-<user> (ReadWriteOnce)");
  flag("--kube-storage-class", c.kube_storage_class, "SANDMAN_KUBE_STORAGE_CLASS",
       "Storage class of workspace claims (empty: the cluster's default)");
  flag("--kube-service-account", c.kube_service_account, "SANDMAN_KUBE_SERVICE_ACCOUNT",
       "Service account session pods run as (no RBAC, no token mounted)");
  flag("--kube-node-selector", c.kube_node_selector, "SANDMAN_KUBE_NODE_SELECTOR",
       "Label selector of the nodes /gpu-nodes watches (empty: every node; GPU nodes are those with nvidia.com/ "
       "capacity or labels)");
  flag("--kube-mig-timeout", c.kube_mig_timeout, "SANDMAN_KUBE_MIG_TIMEOUT",
       "How long an approved MIG layout (nvidia.com/mig.config) may take the GPU operator before it counts as "
       "failed (the node stays held)");
  app.add_option("--leader-elect", c.leader_elect,
                 "Kubernetes: elect a leader on the Lease sandman-leader (--kube-lease-namespace) so that two "
                 "replicas are safe: only the leader creates, ends and reaps sessions, followers serve reads and "
                 "answer writes with 503 not_leader (ignored on --backend docker)")
      ->envname("SANDMAN_LEADER_ELECT")->capture_default_str();
  flag("--kube-lease-namespace", c.kube_lease_namespace, "SANDMAN_KUBE_LEASE_NAMESPACE",
       "Namespace of the leader-election Lease sandman-leader (the daemon's own)");
  flag("--instance", c.instance, "SANDMAN_INSTANCE",
       "The sandman.io/instance label on this daemon's session objects (empty: derived from --db's path); "
       "replicas that share sessions give the same value");
  flag("--kube-agent-namespace", c.kube_agent_namespace, "SANDMAN_KUBE_AGENT_NAMESPACE",
       "Namespace of the node agents' pods (the sandman-agent DaemonSet), polled for GPU telemetry");
  flag("--kube-agent-selector", c.kube_agent_selector, "SANDMAN_KUBE_AGENT_SELECTOR",
       "Label selector of the node agents' pods (one per GPU node)");
  app.add_option("--kube-agent-port", c.kube_agent_port,
                 "Port of a node agent whose pod has no sandman.io/agent-port annotation")
      ->envname("SANDMAN_KUBE_AGENT_PORT")->capture_default_str()->check(CLI::Range(1, 65535));
  flag("--kube-agent-token-file", c.kube_agent_token_file, "SANDMAN_KUBE_AGENT_TOKEN_FILE",
       "The node agents' shared token (their --token-file), sent with every poll (empty: none)");
  app.add_option("--auth", c.auth, "API authentication: token or none")
      ->envname("SANDMAN_AUTH")->capture_default_str()->check(CLI::IsMember({"token", "none"}));
  flag("--token-file", c.token_file, "SANDMAN_TOKEN_FILE", "API token file, generated (mode 0600) on first start");
  flag("--viewer-token-file", c.viewer_token_file, "SANDMAN_VIEWER_TOKEN_FILE",
       "A second, read-only API token (GET only; writes answer 403), generated (mode 0600) on first start "
       "like --token-file; also accepted by the browser login (POST /api/v1/login)");
  flag("--tls-cert", c.tls_cert, "SANDMAN_TLS_CERT",
       "PEM certificate chain: serve the API over HTTPS (with --tls-key); clients verify it (sandman --cacert)");
  flag("--tls-key", c.tls_key, "SANDMAN_TLS_KEY", "PEM private key of --tls-cert (mode 0600)");
  app.add_option("--log-format", c.log_format, "Log format: text or json")
      ->envname("SANDMAN_LOG_FORMAT")->capture_default_str()->check(CLI::IsMember({"text", "json"}));
  app.add_option("--gateway", c.gateway, "Run the built-in SSH gateway (ssh <user>@<host> -p <gateway-port>)")
      ->envname("SANDMAN_GATEWAY")->capture_default_str();
  flag("--gateway-bind", c.gateway_bind, "SANDMAN_GATEWAY_BIND", "Address the SSH gateway listens on");
  flag("--gateway-port", c.gateway_port, "SANDMAN_GATEWAY_PORT", "SSH gateway port (22 in the packaged service)");
  flag("--gateway-host-key", c.gateway_host_key, "SANDMAN_GATEWAY_HOST_KEY",
       "Gateway host key, generated once (mode 0600) and kept across restarts (default: beside --db)");
  flag("--expiry-warning", c.expiry_warning_min, "SANDMAN_EXPIRY_WARNING",
       "Minutes before expiry when open gateway shells get a warning");
  flag("--connection-retention", c.connection_retention, "SANDMAN_CONNECTION_RETENTION",
       "How long gateway connection records are kept in the store (pruned in small batches)");
  flag("--gateway-max-connections", c.gateway_max_connections, "SANDMAN_GATEWAY_MAX_CONNECTIONS",
       "Most gateway connections open at once, before and after login");
  flag("--gateway-max-per-source", c.gateway_max_per_source, "SANDMAN_GATEWAY_MAX_PER_SOURCE",
       "Most gateway connections open at once from one source address");
  flag("--gateway-max-per-user", c.gateway_max_per_user, "SANDMAN_GATEWAY_MAX_PER_USER",
       "Most logged-in gateway connections per user");
  app.add_flag("--allow-agent-forwarding", c.allow_agent_forwarding,
               "Let users forward their SSH agent (ssh -A) into sessions, through the gateway and direct ports")
      ->envname("SANDMAN_ALLOW_AGENT_FORWARDING");
  app.add_flag("--allow-remote-forwarding", c.allow_remote_forwarding,
               "Let users open remote port forwards (ssh -R) from sessions, through the gateway and direct ports")
      ->envname("SANDMAN_ALLOW_REMOTE_FORWARDING");
  app.add_option("--gpu-backend", c.gpu_backend, "GPUs: auto (NVML if it loads, else CPU-only), nvml (required), none")
      ->envname("SANDMAN_GPU_BACKEND")->capture_default_str()->check(CLI::IsMember({"auto", "nvml", "none"}));
  flag("--nvml-library", c.nvml_library, "SANDMAN_NVML_LIBRARY", "NVML library to dlopen (a path, or a name the loader finds)");
  app.add_option("--mig-mode", c.mig_mode, "static: hand out MIG instances that exist (GET /api/v1/advice/layout proposes a layout from "
                 "recorded demand); dynamic: create one per session")
      ->envname("SANDMAN_MIG_MODE")->capture_default_str()->check(CLI::IsMember({"static", "dynamic"}));
  flag("--default-mig-profile", c.default_mig_profile, "SANDMAN_DEFAULT_MIG_PROFILE",
       "Slice for requests that name none: a class (3g = 3g.20gb on A100-40GB, 3g.40gb on 80 GB GPUs) or a profile name");

  flag("--workspace-quota", c.workspace_quota, "SANDMAN_WORKSPACE_QUOTA",
       "Size limit of each workspace (e.g. 20g): enforced where the workspace root's file system has project "
       "quotas (XFS prjquota, ext4 project+quota), else warned about (log, login banner, alert, API); empty: none");
  flag("--min-free-disk", c.min_free_disk, "SANDMAN_MIN_FREE_DISK",
       "Refuse new sessions (507) while the state or workspace file system has less free: a size (1g) or a "
       "share (5%); 0: never");
  flag("--workspace-usage-interval", c.workspace_usage_interval, "SANDMAN_WORKSPACE_USAGE_INTERVAL",
       "How often workspace usage is measured (quota counters, or a walk of at most 20000 files per round)");
  flag("--telemetry-interval", c.telemetry_interval, "SANDMAN_TELEMETRY_INTERVAL",
       "How often every GPU and MIG instance is sampled (e.g. 5s, 1s)");
  flag("--metrics-raw-retention", c.metrics_raw_retention, "SANDMAN_METRICS_RAW_RETENTION",
       "How long raw telemetry samples are kept in the store");
  flag("--metrics-retention", c.metrics_retention, "SANDMAN_METRICS_RETENTION",
       "How long per-minute min/avg/max telemetry is kept in the store");
  flag("--session-retention", c.session_retention, "SANDMAN_SESSION_RETENTION",
       "How long ended and failed sessions (and their events, and recorded demand: GET /api/v1/demand) stay "
       "in the history, pruned in small batches; 0s: for ever");
  flag("--event-retention", c.event_retention, "SANDMAN_EVENT_RETENTION",
       "How long session events (idle warnings, stops, extensions) are kept; 0s: for ever");
  app.add_flag("--metrics-auth", c.metrics_auth, "GET /metrics requires the API token too")
      ->envname("SANDMAN_METRICS_AUTH")->capture_default_str();
  flag("--gpu-hourly-rates", c.gpu_hourly_rates, "SANDMAN_GPU_HOURLY_RATES",
       "Price of a whole GPU per hour by model, e.g. A100=2.50,H100=4.00 (a slice costs its share), over "
       "the catalog's list prices; empty: the catalog's");
  flag("--gpu-catalog", c.gpu_catalog, "SANDMAN_GPU_CATALOG",
       "GPU model catalog (JSON: models, MIG profiles, list prices); empty: gpu-catalog.json shipped beside "
       "the binary");
  flag("--web-root", c.web_root, "SANDMAN_WEB_ROOT",
       "The built web dashboard served at / (index.html and assets/); empty: web/ beside the binary, then "
       "../share/sandman/web");
  app.add_option("--slice-price-basis", c.slice_price_basis,
                 "What share of its GPU's price a MIG slice costs: its compute slices, its memory slices, or "
                 "the larger of the two")
      ->envname("SANDMAN_SLICE_PRICE_BASIS")->capture_default_str()->check(CLI::IsMember({"compute", "memory", "max"}));
  app.add_option("--budget-enforcement", c.budget_enforcement,
                 "warn: a spent budget raises alerts only; block: also refuses creates and extensions (402) "
                 "for its user, team or project; running sessions are never stopped for money")
      ->envname("SANDMAN_BUDGET_ENFORCEMENT")->capture_default_str()->check(CLI::IsMember({"warn", "block"}));
  flag("--alert-rules", c.alert_rules, "SANDMAN_ALERT_RULES",
       "Alert rule file (JSON, see deploy/alert-rules.json); empty: the built-in rules");
  flag("--alert-webhook", c.alert_webhook, "SANDMAN_ALERT_WEBHOOK",
       "URL that receives a JSON POST on every alert state change (retried with back-off)");
  flag("--alertmanager", c.alertmanager, "SANDMAN_ALERTMANAGER",
       "Alertmanager base URL (e.g. http://127.0.0.1:9093); firing and resolved alerts are posted to its v2 API");
  flag("--idle-stop-after", c.idle_stop_after, "SANDMAN_IDLE_STOP_AFTER",
       "Stop a session idle for this long (no GPU work, no recent SSH traffic); empty: never");
  flag("--idle-warning", c.idle_warning, "SANDMAN_IDLE_WARNING",
       "Warn a session's open shells this long before an idle stop");
  flag("--idle-utilization", c.idle_utilization, "SANDMAN_IDLE_UTILIZATION",
       "GPU utilisation (%) at or below which a slice with no compute processes counts as idle");
  flag("--idle-traffic-window", c.idle_traffic_window, "SANDMAN_IDLE_TRAFFIC_WINDOW",
       "SSH traffic through the gateway this recent keeps a session busy");
  app.add_flag("--auto-extend", c.auto_extend,
               "Extend busy sessions nearing expiry, in steps, never past created_at + --ttl-max")
      ->envname("SANDMAN_AUTO_EXTEND")->capture_default_str();
  flag("--auto-extend-step", c.auto_extend_step, "SANDMAN_AUTO_EXTEND_STEP", "Time added by each automatic extension");
  flag("--auto-extend-before", c.auto_extend_before, "SANDMAN_AUTO_EXTEND_BEFORE",
       "Extend a busy session once it has less than this left");
}

Result<int64_t> parseByteSize(const std::string& s) {
  if (s.empty()) return invalid("empty size");
  size_t pos = 0;
  int64_t n = 0;
  try {
    n = std::stoll(s, &pos);
  } catch (...) {
    return invalid("'" + s + "' is not a size (e.g. 512m, 4g)");
  }
  std::string unit = s.substr(pos);
  int64_t mult = 1;
  if (unit == "" || unit == "b") mult = 1;
  else if (unit == "k" || unit == "K") mult = int64_t{1} << 10;
  else if (unit == "m" || unit == "M") mult = int64_t{1} << 20;
  else if (unit == "g" || unit == "G") mult = int64_t{1} << 30;
  else return invalid("'" + s + "': unknown unit '" + unit + "' (use k, m or g)");
  if (n < 0) return invalid("'" + s + "' is negative");
  return n * mult;
}

// --workspace-quota, --min-free-disk, --workspace-usage-interval.
static Status parseDiskFlags(ServeConfig& c) {
  if (!c.workspace_quota.empty()) {
    auto q = parseByteSize(c.workspace_quota);
    if (!q.ok()) return invalid("--workspace-quota: " + q.error().message);
    c.workspace_quota_bytes = static_cast<uint64_t>(q.value());
  }
  const std::string& m = c.min_free_disk;
  if (!m.empty() && m.back() == '%') {
    size_t pos = 0;
    double pct = -1;
    try {
      pct = std::stod(m.substr(0, m.size() - 1), &pos);
    } catch (...) {
      pos = 0;
    }
    if (pos != m.size() - 1 || pct < 0 || pct >= 100) {
      return invalid("--min-free-disk: '" + m + "' must be a size (1g) or a share below 100% (5%)");
    }
    c.min_free_disk_percent = pct;
  } else {
    auto b = parseByteSize(m);
    if (!b.ok()) return invalid("--min-free-disk: " + b.error().message);
    c.min_free_disk_bytes = static_cast<uint64_t>(b.value());
  }
  auto v = parseDuration(c.workspace_usage_interval);
  if (!v.ok()) return invalid("--workspace-usage-interval: " + v.error().message);
  if (v.value() < Millis(100)) return invalid("--workspace-usage-interval must be at least 100ms");
  c.workspace_usage_interval_ms = v.value();
  return {};
}

static bool givenByFlagOrEnv(CLI::App& app, const char* flag, const char* env) {
  return app.count(flag) > 0 || std::getenv(env) != nullptr;
}

Status finalizeServeConfig(CLI::App& app, ServeConfig& c) {
  if (!givenByFlagOrEnv(app, "--db", "SANDMAN_DB")) {
    if (const char* v = std::getenv("DB_PATH")) c.db = v;
  }
  if (!givenByFlagOrEnv(app, "--workspace-root", "SANDMAN_WORKSPACE_ROOT")) {
    if (const char* v = std::getenv("WORKSPACE_ROOT")) c.workspace_root = v;
  }
  if (c.ssh_host.empty()) {
    char host[256] = {};
    c.ssh_host = ::gethostname(host, sizeof host - 1) == 0 ? host : "localhost";
  }
  if (c.port < 1 || c.port > 65535) return invalid("--port must be 1-65535");
  if (c.gateway_port < 0 || c.gateway_port > 65535) return invalid("--gateway-port must be 0-65535 (0: any free port)");
  if (c.expiry_warning_min < 0) return invalid("--expiry-warning must not be negative");
  if (c.gateway_max_connections < 1 || c.gateway_max_per_source < 1 || c.gateway_max_per_user < 1) {
    return invalid("--gateway-max-connections, --gateway-max-per-source and --gateway-max-per-user must be at least 1");
  }
  if (c.ssh_port_start < 1 || c.ssh_port_end > 65535 || c.ssh_port_start > c.ssh_port_end) {
    return invalid("--ssh-port-start/--ssh-port-end must be a range within 1-65535");
  }
  if (c.ttl_default_min < 1 || c.ttl_max_min < 1 || c.ttl_default_min > c.ttl_max_min) {
    return invalid("--ttl-default must be between 1 and --ttl-max minutes");
  }
  if (auto m = parseByteSize(c.memory); !m.ok()) return invalid("--memory: " + m.error().message);
  if (c.cpus < 0 || c.pids_limit < 0) return invalid("--cpus and --pids-limit must not be negative");
  if (auto m = parseByteSize(c.container_log_max_size); !m.ok() || m.value() == 0) {
    return invalid("--container-log-max-size must be a size such as 10m");
  }
  if (c.container_log_max_files < 1) return invalid("--container-log-max-files must be at least 1");
  if (auto m = parseByteSize(c.container_disk); !m.ok()) return invalid("--container-disk: " + m.error().message);
  struct DurationFlag {
    const char* flag;
    const std::string& text;
    Millis& out;
    Millis min;
  };
  const DurationFlag durations[] = {
      {"--telemetry-interval", c.telemetry_interval, c.telemetry_interval_ms, Millis(100)},
      {"--metrics-raw-retention", c.metrics_raw_retention, c.metrics_raw_retention_ms, std::chrono::minutes(1)},
      {"--metrics-retention", c.metrics_retention, c.metrics_retention_ms, std::chrono::minutes(1)},
      {"--connection-retention", c.connection_retention, c.connection_retention_ms, std::chrono::minutes(1)},
      {"--session-retention", c.session_retention, c.session_retention_ms, Millis(0)},
      {"--event-retention", c.event_retention, c.event_retention_ms, Millis(0)},
      {"--idle-warning", c.idle_warning, c.idle_warning_ms, Millis(0)},
      {"--idle-traffic-window", c.idle_traffic_window, c.idle_traffic_window_ms, Millis(0)},
      {"--auto-extend-step", c.auto_extend_step, c.auto_extend_step_ms, Millis(1000)},
      {"--auto-extend-before", c.auto_extend_before, c.auto_extend_before_ms, Millis(0)},
      {"--kube-mig-timeout", c.kube_mig_timeout, c.kube_mig_timeout_ms, Millis(1000)},
  };
  for (const auto& d : durations) {
    auto v = parseDuration(d.text);
    if (!v.ok()) return invalid(std::string(d.flag) + ": " + v.error().message);
    if (v.value() < d.min) return invalid(std::string(d.flag) + " must be at least " + formatDuration(d.min));
    d.out = v.value();
  }
  if (!c.idle_stop_after.empty()) {
    auto v = parseDuration(c.idle_stop_after);
    if (!v.ok()) return invalid("--idle-stop-after: " + v.error().message);
    if (v.value() < Millis(1000)) return invalid("--idle-stop-after must be at least 1s");
    c.idle_stop_after_ms = v.value();
  }
  if (c.idle_utilization < 0 || c.idle_utilization > 100) return invalid("--idle-utilization must be 0-100");
  if (auto st = parseDiskFlags(c); !st.ok()) return st;
  if (c.backend == "kubernetes") {
    if (!c.kube_api.empty() && c.kube_api.rfind("https://", 0) != 0) {
      return invalid("--kube-api must be an https:// URL (got '" + c.kube_api + "')");
    }
    if (c.kube_client_cert.empty() != c.kube_client_key.empty()) {
      return invalid("--kube-client-cert and --kube-client-key go together");
    }
  }
  if (!c.instance.empty() && !std::regex_match(c.instance, std::regex("^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$"))) {
    return invalid("--instance must be a label value (letters, digits, '.', '_', '-'; at most 63; got '" + c.instance +
                   "')");
  }
  if (c.docker_host.rfind("unix://", 0) != 0) {
    return invalid("--docker-host must be a unix:// socket (got '" + c.docker_host + "')");
  }
  return {};
}

}  // namespace sandman
