// `sandman alerts ...`: the built-in alert engine's alerts, from the daemon's
// REST API: list them (active by default) and acknowledge one.
#include <cstdint>
#include <cstdio>

#include "cli/api_client.h"
#include "cli/commands.h"

namespace sandman {
namespace {

using nlohmann::json;

void printAlerts(const json& body) {
  std::printf("%-6s %-20s %-9s %-9s %-24s %-20s %s\n", "ID", "RULE", "SEVERITY", "STATE", "SINCE", "SESSION",
              "SUMMARY");
  for (const auto& a : body["alerts"]) {
    const json& labels = a.contains("labels") ? a["labels"] : json::object();
    std::string since = a["state"] == "firing" ? str(a, "fired_at") : a["state"] == "resolved"
                                                                           ? str(a, "resolved_at")
                                                                           : str(a, "pending_at");
    std::string state = str(a, "state") + (a["acked_at"].is_null() ? "" : "*");
    std::printf("%-6s %-20s %-9s %-9s %-24s %-20s %s\n", str(a, "id").c_str(), str(a, "rule").c_str(),
                str(a, "severity").c_str(), state.c_str(), since.c_str(), str(labels, "session_id").c_str(),
                str(a, "summary").c_str());
  }
}

}  // namespace

int runAlerts(int argc, char** argv) {
  CLI::App app{"sandman alerts: GPU alerts of the built-in engine (talks to the daemon)", "alerts"};
  app.require_subcommand(1);
  app.fallthrough();
  ClientOptions o;
  addClientOptions(app, o);
  std::string state = "active";
  int limit = 100;
  auto* ls = app.add_subcommand("ls", "alerts (* after the state: acknowledged)");
  ls->add_option("--state", state, "active, pending, firing, resolved or all")
      ->capture_default_str()
      ->check(CLI::IsMember({"active", "pending", "firing", "resolved", "all"}));
  ls->add_option("--limit", limit, "at most this many, newest first")->capture_default_str()->check(CLI::Range(1, 1000));
  int64_t id = 0;
  std::string by = "cli";
  auto* ack = app.add_subcommand("ack", "acknowledge an alert (it still resolves and is still delivered)");
  ack->add_option("id", id, "alert id")->required()->check(CLI::Range(int64_t{1}, INT64_MAX));
  ack->add_option("--by", by, "who acknowledges it")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::optional<json> body;
  if (ls->parsed()) {
    body = call(o, "GET", "/alerts?state=" + state + "&limit=" + std::to_string(limit));
  } else {
    body = call(o, "POST", "/alerts/" + std::to_string(id) + "/ack", json{{"by", by}}.dump());
  }
  if (!body) return 1;
  if (o.output == "json" || ack->parsed()) {
    std::printf("%s\n", body->dump(2).c_str());
  } else {
    printAlerts(*body);
  }
  return 0;
}

}  // namespace sandman
