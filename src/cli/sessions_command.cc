// `sandman sessions ...`: the admin CLI over the daemon's REST API (/api/v1).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>

#include "cli/api_client.h"
#include "core/session_manager.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

void printTable(const json& sessions) {
  std::printf("%-20s %-16s %-9s %-6s %-25s %s\n", "SESSION", "USER", "STATUS", "PORT", "EXPIRES", "SSH");
  for (const auto& s : sessions) {
    std::printf("%-20s %-16s %-9s %-6s %-25s %s\n", str(s, "session_id").c_str(), str(s, "user_id").c_str(),
                str(s, "status").c_str(), str(s, "ssh_port").c_str(), str(s, "expires_at").c_str(),
                str(s, "ssh_command").c_str());
  }
}

void printSession(const json& s, const ClientOptions& o) {
  if (o.output == "json") {
    std::printf("%s\n", s.dump(2).c_str());
    return;
  }
  for (auto key : {"session_id", "user_id", "team", "project", "status", "ssh_command", "ssh_host_key", "container_id", "image",
                   "workspace", "gpu_uuid", "mig_profile", "gpu_index", "gpu_attach", "created_at", "expires_at",
                   "ended_at", "end_reason"}) {
    std::printf("%-13s %s\n", key, str(s, key).c_str());
  }
}

// Writes the one-time private key to a new 0600 file; never overwrites.
bool writeKeyFile(const std::string& path, const std::string& key) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(("sandman: cannot create key file " + path).c_str());
    return false;
  }
  bool ok = ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size());
  ::close(fd);
  return ok;
}

int create(const ClientOptions& o, const std::string& user, int ttl, const std::string& image,
           const std::string& pubkey_file, std::string key_out, const std::string& project, double gpu_memory_gb,
           const std::string& workload) {
  json body = {{"user_id", user}};
  if (gpu_memory_gb > 0) body["gpu_memory_gb"] = gpu_memory_gb;
  if (!workload.empty()) body["workload"] = workload;
  if (!project.empty()) body["project"] = project;
  if (ttl > 0) body["ttl_minutes"] = ttl;
  if (!image.empty()) body["image"] = image;
  if (!pubkey_file.empty()) {
    std::FILE* f = std::fopen(pubkey_file.c_str(), "r");
    if (!f) {
      std::perror(("sandman: " + pubkey_file).c_str());
      return 1;
    }
    char line[8192] = {};
    if (!std::fgets(line, sizeof line, f)) line[0] = 0;
    std::fclose(f);
    std::string key = line;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    body["ssh_public_key"] = key;
  }
  auto s = call(o, "POST", "/sessions", body.dump());
  if (!s) return 1;
  std::string ssh = str(*s, "ssh_command");
  if (s->contains("ssh_private_key")) {
    if (key_out.empty()) key_out = "sandman-" + str(*s, "session_id") + ".key";
    if (!writeKeyFile(key_out, (*s)["ssh_private_key"].get<std::string>())) return 1;
    ssh = "ssh -i " + key_out + ssh.substr(3);
    s->erase("ssh_private_key");  // shown once: it lives in the file now
    (*s)["ssh_private_key_file"] = key_out;
  }
  if (o.output == "json") {
    std::printf("%s\n", s->dump(2).c_str());
    return 0;
  }
  printSession(*s, o);
  if (s->contains("allocation")) {
    const json& a = (*s)["allocation"];
    std::printf("\nAllocated %s at $%.4f/h: %s\n", str(a, "device").c_str(), a.value("usd_per_hour", 0.0),
                str(a, "why").c_str());
  }
  std::printf("\nConnect with:\n  %s\n", ssh.c_str());
  return 0;
}

}  // namespace

int runSessions(int argc, char** argv) {
  CLI::App app{"sandman sessions: manage sessions through the daemon's REST API", "sessions"};
  app.require_subcommand(1);
  app.fallthrough();  // --server / --token-file / -o also after the subcommand
  ClientOptions o;
  addClientOptions(app, o);

  std::string user, image, pubkey, key_out, id, status;
  int ttl = 0;
  auto* c = app.add_subcommand("create", "create a session and print how to connect");
  c->add_option("--user", user, "User id (POSIX user name)")->required();
  c->add_option("--ttl", ttl, "TTL in minutes (default: the daemon's --ttl-default)");
  c->add_option("--image", image, "Session image");
  std::string project;
  c->add_option("--project", project, "Project that pays (one of the user's; default: the user's first)");
  c->add_option("--ssh-public-key", pubkey, "Authorize this public key file instead of generating a key pair (safer)");
  c->add_option("--key-out", key_out, "Where to write the generated private key (default ./sandman-<session>.key)");
  double gpu_memory_gb = 0;
  std::string workload;
  c->add_option("--gpu-memory-gb", gpu_memory_gb,
                "Allocation by need: the cheapest free GPU or MIG slice with this much memory (decimal GB)")
      ->check(CLI::PositiveNumber);
  c->add_option("--workload", workload, "With --gpu-memory-gb: inference (smallest fit) or training (most compute on a price tie)")
      ->check(CLI::IsMember({"inference", "training"}));
  bool all = false;
  std::string from, to;
  PageOptions page;
  auto* ls = app.add_subcommand("ls", "list active sessions, newest first (--all: ended and failed ones too)");
  ls->add_option("--user", user, "Only this user's sessions");
  ls->add_option("--status", status, "Only sessions in this status (pending ... failed, or active)");
  ls->add_flag("-a,--all", all, "History too: ended and failed sessions, like docker ps -a");
  ls->add_option("--from", from, "Only sessions created at or after this time (RFC 3339 or unix seconds)");
  ls->add_option("--to", to, "Only sessions created before this time (RFC 3339 or unix seconds)");
  addPageOptions(ls, page);
  // Ids become URL paths: checked here, so "../x" never reaches another route.
  const CLI::Validator session_id(
      [](const std::string& v) { return isSessionId(v) ? "" : "not a session id (s- and 16 hex digits): " + v; },
      "SESSION_ID");
  auto* show = app.add_subcommand("show", "show one session");
  show->add_option("id", id)->required()->check(session_id);
  auto* rm = app.add_subcommand("rm", "stop a session (its workspace is kept)");
  rm->add_option("id", id)->required()->check(session_id);
  auto* conns = app.add_subcommand("connections", "gateway logins, refusals and disconnects of a session");
  conns->add_option("id", id)->required()->check(session_id);
  addPageOptions(conns, page);
  auto* events = app.add_subcommand("events", "idle-policy decisions about a session (warnings, stops, extensions)");
  events->add_option("id", id)->required()->check(session_id);
  addPageOptions(events, page);
  auto* ext = app.add_subcommand("extend", "set a session's time left");
  ext->add_option("id", id)->required()->check(session_id);
  ext->add_option("--ttl", ttl, "Minutes left from now")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  if (c->parsed()) return create(o, user, ttl, image, pubkey, key_out, project, gpu_memory_gb, workload);
  if (ls->parsed()) {
    std::string path = "/sessions";
    if (!user.empty()) path = withParam(path, "user_id", user);
    // Active sessions unless asked for history (an explicit --status wins).
    if (!status.empty()) path = withParam(path, "status", status);
    else if (!all) path = withParam(path, "status", "active");
    if (!from.empty()) path = withParam(path, "from", from);
    if (!to.empty()) path = withParam(path, "to", to);
    auto list = listRows(o, path, page);
    if (!list) return 1;
    if (o.output == "json") std::printf("%s\n", list->dump(2).c_str());
    else printTable(*list);
    return 0;
  }
  if (conns->parsed()) {
    auto list = listRows(o, "/sessions/" + id + "/connections", page);
    if (!list) return 1;
    if (o.output == "json") {
      std::printf("%s\n", list->dump(2).c_str());
      return 0;
    }
    std::printf("%-25s %-8s %-22s %-10s %-10s %s\n", "STARTED", "OUTCOME", "FROM", "IN", "OUT", "REASON");
    for (const auto& c : *list) {
      std::printf("%-25s %-8s %-22s %-10s %-10s %s\n", str(c, "started_at").c_str(), str(c, "outcome").c_str(),
                  str(c, "source").c_str(), str(c, "bytes_in").c_str(), str(c, "bytes_out").c_str(),
                  str(c, "reason").c_str());
    }
    return 0;
  }
  if (events->parsed()) {
    auto list = listRows(o, "/sessions/" + id + "/events", page);
    if (!list) return 1;
    if (o.output == "json") {
      std::printf("%s\n", list->dump(2).c_str());
      return 0;
    }
    std::printf("%-25s %-18s %s\n", "AT", "KIND", "DETAIL");
    for (const auto& e : *list) {
      std::printf("%-25s %-18s %s\n", str(e, "at").c_str(), str(e, "kind").c_str(), str(e, "detail").c_str());
    }
    return 0;
  }
  std::optional<json> s;
  if (show->parsed()) s = call(o, "GET", "/sessions/" + id);
  if (rm->parsed()) s = call(o, "DELETE", "/sessions/" + id);
  if (ext->parsed()) s = call(o, "PATCH", "/sessions/" + id, json{{"ttl_minutes", ttl}}.dump());
  if (!s) return 1;
  printSession(*s, o);
  return 0;
}

}  // namespace sandman
