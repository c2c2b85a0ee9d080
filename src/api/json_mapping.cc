#include "api/json_mapping.h"

#include <cmath>
#include <set>

#include "api/json_writer.h"
#include "common/time_format.h"
#include "common/utf8.h"

namespace sandman {
namespace {

using nlohmann::json;

Result<json> parseObject(const std::string& body, const std::set<std::string>& allowed) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("request body is not valid JSON");
  if (!j.is_object()) return invalid("request body must be a JSON object");
  for (const auto& [key, _] : j.items()) {
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return invalid("unknown field '" + printableExcerpt(key, 64) + "'; allowed fields: " + list);
    }
  }
  return j;
}

Result<std::optional<std::string>> optionalString(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::optional<std::string>{};
  if (!j[key].is_string()) return invalid(std::string(key) + " must be a string");
  return std::optional<std::string>{j[key].get<std::string>()};
}

// ttl_minutes or ttl_seconds (not both): a positive integer.
Result<std::optional<Millis>> parseTtl(const json& j) {
  bool has_min = j.contains("ttl_minutes") && !j["ttl_minutes"].is_null();
  bool has_sec = j.contains("ttl_seconds") && !j["ttl_seconds"].is_null();
  if (has_min && has_sec) return invalid("give ttl_minutes or ttl_seconds, not both");
  if (!has_min && !has_sec) return std::optional<Millis>{};
  const char* key = has_min ? "ttl_minutes" : "ttl_seconds";
  const json& v = j[key];
  if (!v.is_number_integer()) return invalid(std::string(key) + " must be a whole number");
  int64_t n = v.get<int64_t>();
  if (n <= 0) return invalid(std::string(key) + " must be positive");
  if (n > 10'000'000) return invalid(std::string(key) + " is too large");
  return std::optional<Millis>{has_min ? Millis(std::chrono::minutes(n)) : Millis(std::chrono::seconds(n))};
}

}  // namespace

Result<CreateRequest> parseCreateRequest(const std::string& body) {
  auto parsed = parseObject(body, {"user_id", "ttl_minutes", "ttl_seconds", "image", "ssh_public_key",
                                   "mig_profile", "mig_instance_uuid", "gpu_product", "project", "gpu_memory_gb",
                                   "workload"});
  if (!parsed.ok()) return parsed.error();
  const json& j = parsed.value();
  CreateRequest req;
  auto user = optionalString(j, "user_id");
  if (!user.ok()) return user.error();
  if (!user.value()) return invalid("user_id is required");
  req.user_id = *user.value();
  auto ttl = parseTtl(j);
  if (!ttl.ok()) return ttl.error();
  req.ttl = ttl.value();
  auto image = optionalString(j, "image");
  if (!image.ok()) return image.error();
  req.image = image.value();
  auto key = optionalString(j, "ssh_public_key");
  if (!key.ok()) return key.error();
  req.ssh_public_key = key.value();
  auto profile = optionalString(j, "mig_profile");
  if (!profile.ok()) return profile.error();
  auto instance = optionalString(j, "mig_instance_uuid");
  if (!instance.ok()) return instance.error();
  if (profile.value() && instance.value()) return invalid("give mig_profile or mig_instance_uuid, not both");
  req.gpu.mig_profile = profile.value();
  req.gpu.mig_instance_uuid = instance.value();
  auto product = optionalString(j, "gpu_product");
  if (!product.ok()) return product.error();
  req.gpu.gpu_product = product.value();
  auto project = optionalString(j, "project");
  if (!project.ok()) return project.error();
  req.project = project.value();
  // Allocation by need: checked here so that bad input never reaches the store.
  if (j.contains("gpu_memory_gb") && !j["gpu_memory_gb"].is_null()) {
    const json& m = j["gpu_memory_gb"];
    if (!m.is_number() || !std::isfinite(m.get<double>()) || m.get<double>() <= 0 || m.get<double>() > 1e6) {
      return invalid("gpu_memory_gb must be a number of GB greater than 0 (such as 10 or 22.5)");
    }
    if (req.gpu.mig_profile || req.gpu.mig_instance_uuid) {
      return invalid("give gpu_memory_gb or mig_profile / mig_instance_uuid, not both");
    }
    req.gpu.gpu_memory_gb = m.get<double>();
  }
  auto workload = optionalString(j, "workload");
  if (!workload.ok()) return workload.error();
  if (workload.value()) {
    if (!req.gpu.gpu_memory_gb) return invalid("workload goes with gpu_memory_gb (allocation by need)");
    if (*workload.value() != "inference" && *workload.value() != "training") {
      return invalid("workload must be inference or training (got '" + printableExcerpt(*workload.value(), 32) + "')");
    }
    req.gpu.workload = workload.value();
  }
  return req;
}

Result<Millis> parseTtlPatch(const std::string& body) {
  auto parsed = parseObject(body, {"ttl_minutes", "ttl_seconds"});
  if (!parsed.ok()) return parsed.error();
  auto ttl = parseTtl(parsed.value());
  if (!ttl.ok()) return ttl.error();
  if (!ttl.value()) return invalid("ttl_minutes is required");
  return *ttl.value();
}

std::string sshCommand(const Session& s, const std::string& host, int port) {
  return "ssh -p " + std::to_string(port) + " " + s.user_id + "@" + host;
}

std::string knownHostsLine(const Session& s, const std::string& host) {
  // Drop the key's comment: known_hosts wants "host type base64".
  std::string key = s.host_public_key;
  if (auto sp = key.find(' '); sp != std::string::npos) {
    if (auto sp2 = key.find(' ', sp + 1); sp2 != std::string::npos) key.resize(sp2);
  }
  return "[" + host + "]:" + std::to_string(s.ssh_port) + " " + key;
}

void appendSessionJson(std::string& out, const Session& s, const SessionView& view) {
  JsonWriter w(out);
  w.beginObject();
  w.field("session_id", s.id);
  w.field("id", s.id);  // seed 002's GET uses "id"
  w.field("user_id", s.user_id);
  w.nullableField("team", s.team.empty() ? std::nullopt : std::optional<std::string>(s.team));
  w.nullableField("project", s.project.empty() ? std::nullopt : std::optional<std::string>(s.project));
  w.field("status", toString(s.status));
  w.nullableField("container_id", s.container_id.empty() ? std::nullopt : std::optional<std::string>(s.container_id));
  w.field("image", s.image);
  w.field("ssh_user", s.user_id);
  w.field("ssh_host", view.ssh_host);
  if (s.ssh_port > 0) {
    w.field("ssh_port", s.ssh_port);
    w.field("ssh_command", sshCommand(s, view.ssh_host, s.ssh_port));
    w.field("ssh_host_key", knownHostsLine(s, view.ssh_host));
  } else {
    // No direct port (Kubernetes): the gateway is the way in, with its own host key.
    w.field("ssh_port", view.gateway_port);
    w.field("ssh_command", sshCommand(s, view.ssh_host, view.gateway_port));
    w.nullField("ssh_host_key");
  }
  w.nullableField("gpu_uuid", s.gpu_uuid);
  w.nullableField("mig_profile", s.gpu && !s.gpu->whole ? std::optional<std::string>(s.gpu->profile) : std::nullopt);
  if (s.gpu) {
    w.field("gpu_index", s.gpu->gpu_index);
    w.field("gpu_attach", s.gpu->attach);
  } else {
    w.nullField("gpu_index");
    w.nullField("gpu_attach");
  }
  w.field("workspace", view.workspace_of ? view.workspace_of(s.user_id) : view.workspace_root + "/" + s.user_id);
  w.field("created_at", formatRfc3339(s.created_at));
  w.field("expires_at", formatRfc3339(s.expires_at));
  w.nullableField("ended_at", s.ended_at ? std::optional<std::string>(formatRfc3339(*s.ended_at)) : std::nullopt);
  w.nullableField("end_reason", s.end_reason.empty() ? std::nullopt : std::optional<std::string>(s.end_reason));
  w.endObject();
}

nlohmann::json sessionToJson(const Session& s, const SessionView& view) {
  std::string text;
  appendSessionJson(text, s, view);
  return json::parse(text);  // one definition of the shape; the writer's output is always valid JSON
}

Result<std::string> parseUserKeyRequest(const std::string& body) {
  auto parsed = parseObject(body, {"public_key"});
  if (!parsed.ok()) return parsed.error();
  auto key = optionalString(parsed.value(), "public_key");
  if (!key.ok()) return key.error();
  if (!key.value()) return invalid("public_key is required: one OpenSSH public key line");
  return *key.value();
}

nlohmann::json userKeyJson(const UserKey& k) {
  return {{"id", k.id}, {"user_id", k.user_id}, {"public_key", k.public_key},
          {"fingerprint", k.fingerprint}, {"created_at", formatRfc3339(k.created_at)}};
}

nlohmann::json sessionEventJson(const SessionEvent& e) {
  return {{"at", formatRfc3339(e.at)}, {"kind", e.kind}, {"detail", e.detail}};
}

nlohmann::json connectionJson(const ConnectionRecord& c) {
  return {{"id", c.id},
          {"user_id", c.user_id},
          {"session_id", c.session_id.empty() ? json(nullptr) : json(c.session_id)},
          {"source", c.source},
          {"outcome", c.outcome},
          {"reason", c.reason.empty() ? json(nullptr) : json(c.reason)},
          {"started_at", formatRfc3339(c.started_at)},
          {"ended_at", c.ended_at ? json(formatRfc3339(*c.ended_at)) : json(nullptr)},
          {"duration_seconds", c.ended_at ? json(std::chrono::duration<double>(*c.ended_at - c.started_at).count())
                                          : json(nullptr)},
          {"bytes_in", c.bytes_in},
          {"bytes_out", c.bytes_out}};
}

nlohmann::json errorJson(const Error& e) {
  json j = {{"error", e.message}, {"code", errorCode(e.kind)}};
  if (!e.details.empty()) {
    json extra = json::parse(e.details, nullptr, false);
    if (extra.is_object()) {
      for (const auto& [k, v] : extra.items()) {
        if (k != "error" && k != "code") j[k] = v;
      }
    }
  }
  return j;
}

}  // namespace sandman
