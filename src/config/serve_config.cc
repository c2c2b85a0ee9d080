#include "config/serve_config.h"

#include <unistd.h>

#include <cstdlib>

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
  flag("--docker-host", c.docker_host, "SANDMAN_DOCKER_HOST", "Docker Engine API endpoint (unix:// only)");
  app.add_option("--auth", c.auth, "API authentication: token or none")
      ->envname("SANDMAN_AUTH")->capture_default_str()->check(CLI::IsMember({"token", "none"}));
  flag("--token-file", c.token_file, "SANDMAN_TOKEN_FILE", "API token file, generated (mode 0600) on first start");
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
  app.add_option("--gpu-backend", c.gpu_backend, "GPUs: auto (NVML if it loads, else CPU-only), nvml (required), none")
      ->envname("SANDMAN_GPU_BACKEND")->capture_default_str()->check(CLI::IsMember({"auto", "nvml", "none"}));
  flag("--nvml-library", c.nvml_library, "SANDMAN_NVML_LIBRARY", "NVML library to dlopen (a path, or a name the loader finds)");
  app.add_option("--mig-mode", c.mig_mode, "static: hand out MIG instances that exist; dynamic: create one per session")
      ->envname("SANDMAN_MIG_MODE")->capture_default_str()->check(CLI::IsMember({"static", "dynamic"}));
  flag("--default-mig-profile", c.default_mig_profile, "SANDMAN_DEFAULT_MIG_PROFILE",
       "Slice for requests that name none: a class (3g = 3g.20gb on A100-40GB, 3g.40gb on 80 GB GPUs) or a profile name");
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
  if (c.ssh_port_start < 1 || c.ssh_port_end > 65535 || c.ssh_port_start > c.ssh_port_end) {
    return invalid("--ssh-port-start/--ssh-port-end must be a range within 1-65535");
  }
  if (c.ttl_default_min < 1 || c.ttl_max_min < 1 || c.ttl_default_min > c.ttl_max_min) {
    return invalid("--ttl-default must be between 1 and --ttl-max minutes");
  }
  if (auto m = parseByteSize(c.memory); !m.ok()) return invalid("--memory: " + m.error().message);
  if (c.cpus < 0 || c.pids_limit < 0) return invalid("--cpus and --pids-limit must not be negative");
  if (c.docker_host.rfind("unix://", 0) != 0) {
    return invalid("--docker-host must be a unix:// socket (got '" + c.docker_host + "')");
  }
  return {};
}

}  // namespace sandman
