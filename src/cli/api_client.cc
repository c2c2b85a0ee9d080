#include "cli/api_client.h"

#include <unistd.h>

#include <cctype>
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

namespace {

// One call; the response with its body parsed, or nullopt with the error printed.
std::optional<std::pair<HttpResponse, json>> send(const ClientOptions& o, const std::string& method,
                                                  const std::string& path, const std::string& body) {
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
  return std::make_pair(std::move(res).value(), std::move(j));
}

constexpr int kFollowPageRows = 1000;  // the daemon's largest page

}  // namespace

std::optional<json> call(const ClientOptions& o, const std::string& method, const std::string& path,
                         const std::string& body) {
  auto r = send(o, method, path, body);
  if (!r) return std::nullopt;
  return std::move(r->second);
}

void addPageOptions(CLI::App* cmd, PageOptions& p) {
  cmd->add_option("--limit", p.limit, "Show one page of this many rows (1-1000) and print the next page's cursor")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--cursor", p.cursor, "Continue from the cursor a previous --limit printed");
}

std::string withParam(const std::string& path, const std::string& name, const std::string& value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string enc;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      enc += static_cast<char>(c);
    } else {
      enc += '%';
      enc += kHex[c >> 4];
      enc += kHex[c & 15];
    }
  }
  return path + (path.find('?') == std::string::npos ? "?" : "&") + name + "=" + enc;
}

std::optional<json> listRows(const ClientOptions& o, const std::string& path, const PageOptions& p) {
  json rows = json::array();
  std::string cursor = p.cursor;
  for (;;) {
    std::string page = withParam(path, "limit", std::to_string(p.limit > 0 ? p.limit : kFollowPageRows));
    if (!cursor.empty()) page = withParam(page, "cursor", cursor);
    auto r = send(o, "GET", page, "");
    if (!r) return std::nullopt;
    if (!r->second.is_array()) {
      std::fprintf(stderr, "sandman: GET %s did not answer a JSON array\n", page.c_str());
      return std::nullopt;
    }
    for (auto& row : r->second) rows.push_back(std::move(row));
    cursor = r->first.header("x-next-cursor");
    if (cursor.empty()) return rows;
    if (p.limit > 0) {
      // On stderr, so that stdout stays the rows alone (-o json parses as it is).
      std::fprintf(stderr, "more rows: repeat with --cursor %s\n", cursor.c_str());
      return rows;
    }
  }
}

std::string str(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  return j[key].is_string() ? j[key].get<std::string>() : j[key].dump();
}

}  // namespace sandman
