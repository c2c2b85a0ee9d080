// The CLI's side of the REST API: where the daemon is, its token, and one
// call that prints the daemon's error message on failure. Thread-compatible.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace sandman {

struct ClientOptions {
  std::string server = "http://127.0.0.1:8080";
  std::string token_file = "/var/lib/sandman/api-token";
  std::string output = "table";
  std::string ca_file;  // --cacert: the CA (or self-signed certificate) of an https daemon
};

// --server, --token-file, --cacert, -o/--output.
void addClientOptions(CLI::App& app, ClientOptions& o);

// Sends one call to /api/v1<path>; prints the daemon's error and returns
// nullopt on failure.
std::optional<nlohmann::json> call(const ClientOptions& o, const std::string& method, const std::string& path,
                                   const std::string& body = "");

// Paging of a listing: --limit N shows one page of N rows (and prints the
// next page's cursor on stderr); without it every page is fetched.
struct PageOptions {
  int limit = 0;
  std::string cursor;
};
void addPageOptions(CLI::App* cmd, PageOptions& p);

// GET of a listing (path may carry a query already): the rows of one page or
// of every page, following the daemon's X-Next-Cursor; nullopt on failure
// (the daemon's error printed).
std::optional<nlohmann::json> listRows(const ClientOptions& o, const std::string& path, const PageOptions& p);

// Appends name=value to a path's query, percent-encoding the value.
std::string withParam(const std::string& path, const std::string& name, const std::string& value);

// A JSON field as text for tables ("-" when absent or null).
std::string str(const nlohmann::json& j, const char* key);

}  // namespace sandman
