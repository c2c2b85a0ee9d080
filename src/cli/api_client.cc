#include "cli/api_client.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "api/token_auth.h"
#include "common/http_client.h"

namespace sandman {

using nlohmann::json;

void addClientOptions(CLI::App& app, ClientOptions& o) {
  app.add_option("--server", o.server, "Daemon URL")->envname("SANDMAN_SERVER")->capture_default_str();
  app.add_option("--token-file", o.token_file, "API token file (or set SANDMAN_TOKEN)")
      ->envname("SANDMAN_TOKEN_FILE")->capture_default_str();
  app.add_option("--cacert", o.ca_file,
                 "PEM file with the CA or self-signed certificate of an https --server (the daemon's --tls-cert)")
      ->envname("SANDMAN_CACERT");
  app.add_option("-o,--output", o.output, "Output: table or json")->check(CLI::IsMember({"table", "json"}));
}

std::optional<json> call(const ClientOptions& o, const std::string& method, const std::string& path,
                         const std::string& body) {
  HttpRequest req{method, o.server + "/api/v1" + path, body, {"Content-Type: application/json"}, 120000, o.ca_file};
  if (const char* env = std::getenv("SANDMAN_TOKEN"); env && *env) {
    req.headers.push_back(std::string("Authorization: Bearer ") + env);
  } else if (::access(o.token_file.c_str(), F_OK) == 0) {
    auto token = readToken(o.token_file);
    if (!token.ok()) {
      std::fprintf(stderr, "sandman: %s\n", token.error().message.c_str());
      return std::nullopt;
    }
    req.headers.push_back("Authorization: Bearer " + token.value());
  }
  auto res = HttpClient().send(req);
  if (!res.ok()) {
    std::fprintf(stderr, "sandman: cannot reach the daemon at %s: %s\n", o.server.c_str(),
                 res.error().message.c_str());
    return std::nullopt;
  }
  json j = json::parse(res->body, nullptr, false);
  if (res->status >= 300) {
    std::string msg = j.is_object() && j.contains("error") && j["error"].is_string()
                          ? j["error"].get<std::string>()
                          : res->body;
    std::fprintf(stderr, "sandman: %s (HTTP %ld)\n", msg.c_str(), res->status);
    return std::nullopt;
  }
  return j;
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

}  // namespace sandman
