// ServeConfig: every `sandman serve` setting, from flags, then SANDMAN_<NAME>
// environment variables (and seed 000's DB_PATH / WORKSPACE_ROOT), then
// defaults. Plain value type.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>

#include "common/clock.h"
#include "common/result.h"

namespace sandman {

struct ServeConfig {
  std::string bind = "127.0.0.1";
  int port = 8080;
  std::string db = "/var/lib/sandman/sandman.db";
  std::string workspace_root = "/srv/workspaces";
  std::string image = "sandman-workspace:latest";
  int ssh_port_start = 10000;
  int ssh_port_end = 20000;
  std::string ssh_bind = "0.0.0.0";
  std::string ssh_host;  // default: this machine's name
  int ttl_default_min = 60;
  int ttl_max_min = 1440;
  std::string memory = "4g";
  double cpus = 2.0;
  int64_t pids_limit = 1024;
  std::string network = "sandman-sessions";
  std::string docker_host = "unix:///var/run/docker.sock";
  // Where sessions run: "docker" (this host) or "kubernetes" (pods).
  std::string backend = "docker";
  std::string kube_namespace = "sandman-sessions";
  std::string kube_api;         // empty: in-cluster (KUBERNETES_SERVICE_HOST/PORT)
  std::string kube_token_file;  // empty: the service account's
  std::string kube_ca_file;     // empty: the service account's
  std::string kube_client_cert;  // a client certificate instead of a token (e.g. an admin kubeconfig's)
  std::string kube_client_key;
  std::string kube_workspace_size = "50Gi";
  std::string kube_storage_class;
  std::string kube_service_account = "sandman-session";
  std::string kube_node_selector;             // empty: every node (GPU nodes are picked out by their nvidia.com/ keys)
  std::string kube_mig_timeout = "15m";       // an approved MIG layout the GPU operator has not applied by then fails
  Millis kube_mig_timeout_ms{std::chrono::minutes(15)};
  // Two replicas: leader election on the Lease sandman-leader in this
  // namespace (the daemon's own); only the leader mutates. Kubernetes only.
  bool leader_elect = true;
  std::string kube_lease_namespace = "sandman";
  // The sandman.io/instance label of this daemon's objects; empty: derived
  // from --db's path. Replicas sharing sessions must give the same one.
  std::string instance;
  // The node agents (sandman agent, a DaemonSet): found as pods, polled for telemetry.
  std::string kube_agent_namespace = "sandman-agents";
  std::string kube_agent_selector = "app.kubernetes.io/name=sandman,app.kubernetes.io/component=agent";
  int kube_agent_port = 9410;          // when an agent pod has no sandman.io/agent-port annotation
  std::string kube_agent_token_file;   // the agents' shared token, if they ask for one
  std::string auth = "token";
  std::string token_file = "/var/lib/sandman/api-token";
  std::string viewer_token_file;  // a read-only token (roles, issue 15); empty: none
  std::string tls_cert;  // PEM chain; with tls_key, the API is served over HTTPS
  std::string tls_key;
  std::string log_format = "text";
  bool isolate_host = true;
  std::string session_egress;  // "" (private ranges dropped), CIDR[:port] allow-list, "none", "off"
  std::string container_log_max_size = "10m";
  int container_log_max_files = 3;
  std::string container_disk = "20g";  // writable layer per container; "0": no limit
  std::string allowed_images;          // comma-separated; empty: --image alone
  std::string session_init;            // sandman-init binary; empty: beside this executable
  bool gateway = true;
  std::string gateway_bind = "0.0.0.0";
  int gateway_port = 2222;
  std::string gateway_host_key;  // default: <db dir>/gateway_host_ed25519_key
  int expiry_warning_min = 5;
  std::string connection_retention = "30d";  // gateway connection records kept this long
  int gateway_max_connections = 1024;        // open gateway connections in all
  int gateway_max_per_source = 64;           // open gateway connections per source address
  int gateway_max_per_user = 32;             // logged-in gateway connections per user
  bool allow_agent_forwarding = false;   // ssh -A, through the gateway and on direct ports
  bool allow_remote_forwarding = false;  // ssh -R, through the gateway and on direct ports
  std::string gpu_backend = "auto";  // auto | nvml | none
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string mig_mode = "dynamic";  // static | dynamic
  std::string default_mig_profile = "3g";

  // Telemetry, history, /metrics (durations as "5s", "24h", "30d"; parsed into *_ms below).
  std::string telemetry_interval = "5s";
  std::string metrics_raw_retention = "24h";
  std::string metrics_retention = "30d";
  std::string session_retention = "90d";  // ended sessions (with their events); 0s: kept for ever
  std::string event_retention = "30d";    // session events; 0s: kept for ever
  bool metrics_auth = false;
  std::string gpu_hourly_rates;  // "A100=2.50,H100=4.00": price of a whole GPU per hour, by model substring
  std::string gpu_catalog;        // JSON catalog; empty: the shipped one beside the binary
  std::string web_root;           // built dashboard (index.html, assets/); empty: beside the binary
  std::string slice_price_basis = "compute";  // compute | memory | max
  std::string budget_enforcement = "warn";    // warn | block

  // Alerts.
  std::string alert_rules;   // rule file; empty: the built-in defaults
  std::string alert_webhook;  // URL receiving JSON on every state change
  std::string alertmanager;   // Alertmanager base URL (its /api/v2/alerts is posted to)

  // Idle policy (both off by default).
  std::string idle_stop_after;          // empty: never stop idle sessions
  std::string idle_warning = "10m";     // warn open shells this long before an idle stop
  double idle_utilization = 5;          // % at or below which a slice without processes is idle
  std::string idle_traffic_window = "10m";  // SSH traffic this recent counts as busy
  bool auto_extend = false;
  std::string auto_extend_step = "30m";  // each automatic extension
  std::string auto_extend_before = "10m";  // extend a busy session this long before it expires

  // Disk: workspace quota, free-space floor for new sessions, usage scans.
  std::string workspace_quota;           // e.g. "20g"; empty: none
  std::string min_free_disk = "1g";      // a size or "5%"; "0": off
  std::string workspace_usage_interval = "30s";

  // Parsed by finalizeServeConfig.
  uint64_t workspace_quota_bytes = 0;
  uint64_t min_free_disk_bytes = 0;
  double min_free_disk_percent = 0;  // > 0 when given as "N%"
  Millis workspace_usage_interval_ms{30000};
  Millis telemetry_interval_ms{5000};
  Millis metrics_raw_retention_ms{};
  Millis metrics_retention_ms{};
  Millis connection_retention_ms{};
  Millis session_retention_ms{};
  Millis event_retention_ms{};
  Millis idle_stop_after_ms{0};  // 0: off
  Millis idle_warning_ms{};
  Millis idle_traffic_window_ms{};
  Millis auto_extend_step_ms{};
  Millis auto_extend_before_ms{};
};

// Registers the flags on `app` (each with its SANDMAN_ env name).
void addServeFlags(CLI::App& app, ServeConfig& cfg);
// Applies DB_PATH / WORKSPACE_ROOT where neither flag nor SANDMAN_ var was given,
// fills derived defaults, and checks ranges. kInvalid with the offending flag.
Status finalizeServeConfig(CLI::App& app, ServeConfig& cfg);

// "512m", "4g", "1073741824" -> bytes.
Result<int64_t> parseByteSize(const std::string& s);

}  // namespace sandman
